"""Saved models: safetensors + JSON round trips, and clean errors for anything else."""

from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch

from digitlab.errors import DigitlabError
from digitlab.models import build_model
from digitlab.run.serialization import FORMAT, META, WEIGHTS, load_model, save_model

META_IN = {
    "classes": ["3", "7"],
    "binary": True,
    "normalization": {"scale": 1 / 255, "mean": 0.0, "std": 1.0},
    "history": [{"epoch": 1, "train_loss": 0.5}],
    "seed": 7,
}

MODELS = {
    "linear": lambda: build_model("linear", 1),
    "simple_net": lambda: build_model("simple_net", 10, n_hidden=12),
    "cnn": lambda: build_model("cnn", 10, width=4),
}


def randomized(name: str) -> torch.nn.Module:
    """A model whose every parameter and buffer (batchnorm statistics too) differs from a fresh one."""
    torch.manual_seed(0)
    model = MODELS[name]()
    with torch.no_grad():
        for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
            t.copy_(torch.rand_like(t) * 0.5 + 0.1)
    return model


@pytest.fixture
def saved_linear(tmp_path):
    save_model(randomized("linear"), tmp_path / "run", META_IN)
    return tmp_path / "run"


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_gives_identical_outputs(tmp_path, name):
    model = randomized(name).eval()
    x = torch.rand(5, 28, 28)
    with torch.no_grad():
        expected = model(x)
    weights = save_model(model, tmp_path / "run", {**META_IN, "classes": [str(i) for i in range(10)]})
    assert weights == tmp_path / "run" / WEIGHTS and weights.exists() and (tmp_path / "run" / META).exists()
    loaded = load_model(tmp_path / "run")
    assert type(loaded.model) is type(model) and not loaded.model.training
    with torch.no_grad():
        assert torch.equal(loaded.model(x), expected)
    state = model.state_dict()
    assert loaded.model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in loaded.model.state_dict().items())


def test_metadata_is_kept(saved_linear):
    loaded = load_model(saved_linear)
    assert loaded.classes == ("3", "7")
    assert loaded.meta["format"] == FORMAT and loaded.meta["format_version"] == 1
    assert loaded.meta["architecture"] == {"name": "linear", "n_out": 1}
    for key, value in META_IN.items():
        assert loaded.meta[key] == value


def test_a_path_prefix_names_a_pair_of_files(tmp_path):
    save_model(randomized("simple_net"), tmp_path / "best.safetensors", META_IN)
    assert (tmp_path / "best.safetensors").exists() and (tmp_path / "best.json").exists()
    for path in ("best.json", "best.safetensors"):
        assert load_model(tmp_path / path).meta["architecture"]["name"] == "simple_net"


def test_saving_twice_overwrites_and_leaves_no_temporary_file(tmp_path):
    save_model(randomized("linear"), tmp_path / "run", META_IN)
    save_model(build_model("linear", 1), tmp_path / "run", {**META_IN, "seed": 8})
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [META, WEIGHTS]
    assert load_model(tmp_path / "run").meta["seed"] == 8


def test_saved_files_are_safetensors_and_json_with_no_pickle(saved_linear, monkeypatch):
    raw = (saved_linear / WEIGHTS).read_bytes()
    # safetensors: an 8-byte little-endian header length, then a JSON header; no pickle, no zip
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert set(header) - {"__metadata__"} == {"linear.weight", "linear.bias"}
    assert not raw.startswith(b"\x80") and not raw.startswith(b"PK")
    from safetensors.torch import load_file

    state = load_file(str(saved_linear / WEIGHTS))
    assert state["linear.weight"].shape == (1, 784)
    json.loads((saved_linear / META).read_text())  # plain JSON

    # loading never unpickles: forbid it outright
    def refuse(*args, **kwargs):
        raise AssertionError("load_model unpickled something")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    assert load_model(saved_linear).classes == ("3", "7")


# ---- what is not a digitlab model ---------------------------------------------------------


def expect_error(path, *fragments: str) -> str:
    with pytest.raises(DigitlabError) as info:
        load_model(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message
    return message


def test_a_folder_without_the_files(tmp_path):
    (tmp_path / "empty").mkdir()
    expect_error(tmp_path / "empty", "not a digitlab model", "missing")
    expect_error(tmp_path / "nowhere", "not a digitlab model")


def test_a_folder_with_only_the_weights(saved_linear):
    (saved_linear / META).unlink()
    expect_error(saved_linear, "model.json is missing")


@pytest.mark.parametrize(
    "content",
    [
        '{"name": "something else"}',
        "[1, 2, 3]",
        "not json at all {",
        '{"format": "digitlab-model", "format_version": "one"}',
    ],
)
def test_a_json_that_is_not_a_digitlab_model(saved_linear, content):
    (saved_linear / META).write_text(content)
    expect_error(saved_linear, str(saved_linear / META), "not a digitlab model")


def test_a_model_from_a_newer_digitlab(saved_linear):
    meta = json.loads((saved_linear / META).read_text())
    (saved_linear / META).write_text(json.dumps({**meta, "format_version": 99}))
    expect_error(saved_linear, "newer digitlab", "upgrade")


def test_an_incomplete_description(saved_linear):
    meta = json.loads((saved_linear / META).read_text())
    (saved_linear / META).write_text(json.dumps({k: v for k, v in meta.items() if k != "architecture"}))
    expect_error(saved_linear, "incomplete model description")
    (saved_linear / META).write_text(json.dumps({**meta, "architecture": {"name": "transformer", "n_out": 1}}))
    expect_error(saved_linear, "unknown model", "transformer")
    (saved_linear / META).write_text(json.dumps({**meta, "classes": []}))
    expect_error(saved_linear, "no classes")


@pytest.mark.parametrize("keep", [0.5, 4, 0])
def test_a_corrupt_weights_file(saved_linear, keep):
    weights = saved_linear / WEIGHTS
    raw = weights.read_bytes()
    weights.write_bytes(raw[: int(len(raw) * keep) if isinstance(keep, float) else keep])
    expect_error(saved_linear, str(weights), "corrupt weights file")


def test_a_pickle_in_place_of_the_weights(saved_linear):
    torch.save(build_model("linear", 1).state_dict(), saved_linear / WEIGHTS)
    expect_error(saved_linear, "corrupt weights file")


def test_weights_of_a_different_width(tmp_path):
    save_model(randomized("cnn"), tmp_path / "run", META_IN)  # width 4
    meta = json.loads((tmp_path / "run" / META).read_text())
    meta["architecture"]["width"] = 8
    (tmp_path / "run" / META).write_text(json.dumps(meta))
    message = expect_error(tmp_path / "run", "weights do not fit the architecture", "'width': 8")
    assert "size mismatch for stem.0.weight" in message  # the first problem, not torch's header line


def test_weights_of_another_model(tmp_path):
    save_model(randomized("linear"), tmp_path / "a", META_IN)
    save_model(randomized("simple_net"), tmp_path / "b", META_IN)
    (tmp_path / "a" / WEIGHTS).write_bytes((tmp_path / "b" / WEIGHTS).read_bytes())
    expect_error(tmp_path / "a", "weights do not fit the architecture")


def test_save_rejects_an_unregistered_model(tmp_path):
    with pytest.raises(DigitlabError, match="not a registered model"):
        save_model(torch.nn.Linear(784, 1), tmp_path / "run", META_IN)
