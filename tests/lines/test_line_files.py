"""A saved line reader: round trip, and every way a folder can fail to be one, each in one line."""

from __future__ import annotations

import json

import pytest
import torch

from digitlab.artifacts.line_files import load_line_reader, read_line_card, save_line_reader
from digitlab.artifacts.serialization import LINE_META, LINE_WEIGHTS
from digitlab.errors import DigitlabError
from digitlab.line_reader import LineReader


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = LineReader(width=4, hidden=8)
    save_line_reader(model, tmp_path / "lines", {"scores": {"spaced": 0.5, "touching": 0.25}, "config": {}})
    return model, tmp_path / "lines"


def test_a_saved_reader_loads_with_the_same_weights_and_reads_the_same(saved):
    model, folder = saved
    loaded, card = load_line_reader(folder)
    assert card["architecture"] == {"name": "line-reader", "width": 4, "hidden": 8}
    assert card["scores"] == {"spaced": 0.5, "touching": 0.25}
    x = torch.rand(2, 1, 32, 64)
    model.eval()
    assert torch.equal(model(x), loaded(x)) and not loaded.training


def test_a_digit_model_folder_is_named_as_such(tmp_path):
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(DigitlabError, match="a digit model, not a line reader"):
        read_line_card(tmp_path)
    with pytest.raises(DigitlabError, match="no such folder"):
        read_line_card(tmp_path / "missing")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "digitlab-model"}, "format"),
        ({"format_version": 2}, "version"),
        ({"architecture": {"name": "line-reader", "width": 10**6, "hidden": 8}}, "width"),
        ({"architecture": {"name": "cnn", "width": 4, "hidden": 8}}, "architecture"),
        ({"scores": {"spaced": 7}}, "scores"),
        ({"weights_sha256": None}, "sha256"),
    ],
)
def test_a_bad_card_is_refused_before_anything_is_built(saved, change, message):
    _, folder = saved
    card = json.loads((folder / LINE_META).read_text())
    (folder / LINE_META).write_text(json.dumps({**card, **change}))
    with pytest.raises(DigitlabError, match=message):
        load_line_reader(folder)


def test_weights_that_are_not_the_cards_are_refused(saved, tmp_path):
    _, folder = saved
    other = LineReader(width=4, hidden=8)
    save_line_reader(other, tmp_path / "other", {})
    (folder / LINE_WEIGHTS).write_bytes((tmp_path / "other" / LINE_WEIGHTS).read_bytes())
    with pytest.raises(DigitlabError, match="sha256 differs"):
        load_line_reader(folder)
    (folder / LINE_WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(DigitlabError, match="corrupt weights"):
        load_line_reader(folder)


def test_weights_of_another_shape_are_refused_by_their_header(saved, tmp_path):
    _, folder = saved
    save_line_reader(LineReader(width=8, hidden=8), tmp_path / "wide", {})
    (folder / LINE_WEIGHTS).write_bytes((tmp_path / "wide" / LINE_WEIGHTS).read_bytes())
    with pytest.raises(DigitlabError, match="do not fit the architecture"):
        load_line_reader(folder)
