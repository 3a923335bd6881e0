"""Saved models: safetensors + JSON round trips, and clean errors for anything else.

The card's own checks (every hostile field) are in test_card.py."""

from __future__ import annotations

import dataclasses
import json
import pickle
import struct

import pytest
import torch

from digitlab.artifacts.card_sections import card_from_json
from digitlab.artifacts.serialization import (
    FORMAT,
    IDEALS,
    META,
    WEIGHTS,
    load_ideal_digits,
    load_model,
    read_card,
    save_ideal_digits,
    save_model,
    state_sha256,
)
from digitlab.errors import DigitlabError
from digitlab.models import build_model

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
TEN = {**META_IN, "classes": [str(i) for i in range(10)], "binary": False}  # the card of a 10-output model


def meta_for(name: str) -> dict:
    return META_IN if name == "linear" else TEN


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
    weights = save_model(model, tmp_path / "run", meta_for(name))
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
    written = json.loads((saved_linear / META).read_text())
    assert written["format"] == FORMAT and written["format_version"] == 1
    assert loaded.card.format_version == 1
    assert written["architecture"] == loaded.card.architecture.as_dict() == {"name": "linear", "n_out": 1}
    for key, value in META_IN.items():
        if key != "seed":  # a seed given beside the config is written in it
            assert written[key] == value
            assert loaded.card.to_json()[key] == value
    assert written["config"] == {"seed": 7}
    assert loaded.card.binary is True and loaded.card.seed == 7 and loaded.card.history == META_IN["history"]
    assert read_card(saved_linear) == loaded.card


def test_a_card_without_a_version_is_version_1(saved_linear):
    meta = json.loads((saved_linear / META).read_text())
    del meta["format_version"]
    (saved_linear / META).write_text(json.dumps(meta))
    assert load_model(saved_linear).card.format_version == 1


def test_a_card_written_before_the_typed_card_still_loads(tmp_path):
    """model.json exactly as digitlab wrote it before the card was typed (no confusion, baseline or counts)."""
    save_model(randomized("linear"), tmp_path / "run", META_IN)
    old = {
        "format": "digitlab-model",
        "format_version": 1,
        "architecture": {"name": "linear", "n_out": 1},
        "classes": ["3", "7"],
        "binary": True,
        "normalization": {"scale": 0.00392156862745098, "mean": 0.0, "std": 1.0},
        "config": {"model": "linear", "epochs": 3, "lr": 1.0, "width": None, "tta": False},
        "seed": 42,
        "data": {
            "spec": "mnist_sample",
            "provenance": {"source": "idx", "files": ["a", "b"], "archive": True},
            "valid": "holdout",
            "n_train": 40,
            "n_valid": 16,
        },
        "history": [{"epoch": 1, "train_loss": 0.5, "valid_loss": float("nan"), "batch_accuracy": 1.0}],
        "lr_schedule": [1.0, 1.0],
        "fit_seconds": 0.25,
        "weights_sha256": state_sha256(randomized("linear").state_dict()),  # what train_run recorded
        "world_size": 1,
        "versions": {"digitlab": "0.1.0", "torch": "2.13.0", "python": "3.11.7"},
        "metrics": {"accuracy": 0.9375, "per_class": {"3": 1.0, "7": 0.875}, "tta": False},
    }
    (tmp_path / "run" / META).write_text(json.dumps(old))  # NaN, as json.dumps writes a NaN validation loss
    card = load_model(tmp_path / "run").card
    assert card.metrics is not None and card.metrics.accuracy == 0.9375 and card.metrics.confusion is None
    assert card.data is not None and card.data.spec == "mnist_sample" and card.data.train_counts is None
    assert card.baseline is None and card.history is not None and card.history[0]["epoch"] == 1
    # a checkpoint's card, as CheckpointCB saved it
    checkpoint = {k: old[k] for k in ("format", "format_version", "architecture", "classes", "binary", "normalization")}
    (tmp_path / "run" / META).write_text(json.dumps({**checkpoint, "config": {}, "checkpoint": True, "epoch": 2}))
    card = load_model(tmp_path / "run").card
    assert card.checkpoint is True and card.epoch == 2 and card.metrics is None


def test_a_path_prefix_names_a_pair_of_files(tmp_path):
    save_model(randomized("simple_net"), tmp_path / "best.safetensors", TEN)
    assert (tmp_path / "best.safetensors").exists() and (tmp_path / "best.json").exists()
    for path in ("best.json", "best.safetensors"):
        assert load_model(tmp_path / path).card.architecture.name == "simple_net"


def test_saving_twice_overwrites_and_leaves_no_temporary_file(tmp_path):
    save_model(randomized("linear"), tmp_path / "run", META_IN)
    save_model(build_model("linear", 1), tmp_path / "run", {**META_IN, "seed": 8})
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [META, WEIGHTS]
    assert load_model(tmp_path / "run").card.seed == 8


def test_the_card_records_the_weights_sha256(saved_linear):
    card = read_card(saved_linear)
    assert card.weights_sha256 == state_sha256(randomized("linear").state_dict())


def test_weights_from_another_save_are_refused(tmp_path):
    """The card and the weights must belong together: a pair from two saves is one line, never a model."""
    save_model(randomized("linear"), tmp_path / "a", META_IN)
    save_model(build_model("linear", 1), tmp_path / "b", META_IN)
    (tmp_path / "b" / WEIGHTS).replace(tmp_path / "a" / WEIGHTS)
    with pytest.raises(DigitlabError, match=r"not the ones model.json describes \(sha256 differs\)"):
        load_model(tmp_path / "a")


def test_a_save_interrupted_between_the_two_files_is_never_loaded(tmp_path, monkeypatch):
    """Fault injection: an error after the new weights became visible and before the new card did."""
    import digitlab.artifacts.serialization as serialization

    save_model(randomized("linear"), tmp_path / "run", META_IN)

    def crash() -> None:
        raise RuntimeError("killed between the two writes")

    monkeypatch.setattr(serialization, "_between_renames", crash)
    with pytest.raises(RuntimeError, match="killed"):
        save_model(build_model("linear", 1), tmp_path / "run", {**META_IN, "seed": 8})
    with pytest.raises(DigitlabError, match="sha256 differs"):
        load_model(tmp_path / "run")
    monkeypatch.setattr(serialization, "_between_renames", None)
    save_model(build_model("linear", 1), tmp_path / "run", {**META_IN, "seed": 8})  # the next save repairs it
    assert load_model(tmp_path / "run").card.seed == 8
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [META, WEIGHTS]


def test_a_process_killed_at_any_point_of_a_save_leaves_no_half_model(tmp_path):
    """kill -9 at each point of save_model (before, between and after the renames): what loads is whole."""
    import subprocess
    import sys

    script = """
import os, signal, sys, torch
import digitlab.artifacts.serialization as s
from digitlab.models import build_model
point, out = sys.argv[1], sys.argv[2]
kill = lambda: os.kill(os.getpid(), signal.SIGKILL)
if point == "between":
    s._between_renames = kill
elif point == "before":
    import safetensors.torch as st
    st.save_file = lambda *a, **k: kill()
torch.manual_seed(1)
s.save_model(build_model("linear", 1), out, {"classes": ["3", "7"], "binary": True,
    "normalization": {"scale": 1 / 255, "mean": 0.0, "std": 1.0}, "seed": 9})
"""
    for point in ("before", "between", "after"):
        out = tmp_path / point
        save_model(randomized("linear"), out, META_IN)
        done = subprocess.run([sys.executable, "-c", script, point, str(out)], check=False)
        assert done.returncode == (0 if point == "after" else -9)
        if point == "between":
            with pytest.raises(DigitlabError, match="sha256 differs"):
                load_model(out)
        else:
            assert load_model(out).card.seed == (9 if point == "after" else 7)


def test_a_full_disk_is_one_line_and_keeps_the_old_model(saved_linear, monkeypatch):
    import errno

    import safetensors.torch

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(DigitlabError, match=r"cannot save the model to .*: No space left on device"):
        save_model(build_model("linear", 1), saved_linear, {**META_IN, "seed": 8})
    assert load_model(saved_linear).card.seed == 7
    assert sorted(p.name for p in saved_linear.iterdir()) == [META, WEIGHTS]


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
    save_model(randomized("cnn"), tmp_path / "run", TEN)  # width 4
    meta = json.loads((tmp_path / "run" / META).read_text())
    meta["architecture"]["width"] = 8
    (tmp_path / "run" / META).write_text(json.dumps(meta))
    message = expect_error(tmp_path / "run", "weights do not fit the architecture", "'width': 8")
    assert "size mismatch for stem.0.weight" in message  # the first problem, not torch's header line


def test_weights_of_another_model(tmp_path):
    save_model(randomized("linear"), tmp_path / "a", META_IN)
    save_model(randomized("simple_net"), tmp_path / "b", TEN)
    (tmp_path / "a" / WEIGHTS).write_bytes((tmp_path / "b" / WEIGHTS).read_bytes())
    expect_error(tmp_path / "a", "weights do not fit the architecture")


def test_save_rejects_an_unregistered_model(tmp_path):
    with pytest.raises(DigitlabError, match="not a registered model"):
        save_model(torch.nn.Linear(784, 1), tmp_path / "run", META_IN)


def test_weights_of_another_model_are_refused_before_the_model_is_built(tmp_path, monkeypatch):
    """A card whose architecture the weights do not fit never gets its model built (it could be huge)."""
    import digitlab.artifacts.card

    save_model(randomized("cnn"), tmp_path / "run", TEN)  # width 4
    meta = json.loads((tmp_path / "run" / META).read_text())
    (tmp_path / "run" / META).write_text(json.dumps({**meta, "architecture": {**meta["architecture"], "width": 256}}))
    built_on = []
    real = digitlab.artifacts.card.build_model

    def spy(*args, **kwargs):
        model = real(*args, **kwargs)
        built_on.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(digitlab.artifacts.card, "build_model", spy)
    expect_error(tmp_path / "run", "do not fit the architecture", "'width': 256", "size mismatch for stem.0.weight")
    assert built_on == ["meta"]  # the shapes came from a model without memory; no real one was built


def test_a_card_that_would_not_load_is_not_saved(tmp_path):
    with pytest.raises(DigitlabError, match="cannot save this model card"):
        save_model(build_model("linear", 1), tmp_path / "run", {**META_IN, "classes": ["3", "7", "1"]})
    assert not (tmp_path / "run").exists()


def test_save_takes_a_card_and_keeps_the_models_own_architecture(tmp_path):
    card = card_from_json({"format": FORMAT, "architecture": {"name": "linear", "n_out": 1}, **META_IN})
    save_model(randomized("linear"), tmp_path / "run", card)
    expected = dataclasses.replace(card, weights_sha256=state_sha256(randomized("linear").state_dict()))
    assert load_model(tmp_path / "run").card == expected
    with pytest.raises(DigitlabError, match="1 output and 2 classes"):  # the model's architecture is what counts
        save_model(randomized("simple_net"), tmp_path / "other", card)


def test_ideal_digits_round_trip_and_are_checked(tmp_path):
    ideals = torch.rand(2, 28, 28)
    save_ideal_digits(tmp_path, ideals)
    assert torch.equal(load_ideal_digits(tmp_path, 2), ideals)
    assert load_ideal_digits(tmp_path / "elsewhere") is None
    with pytest.raises(DigitlabError, match="corrupt ideal digits"):
        load_ideal_digits(tmp_path, 3)  # a model of 3 classes
    save_ideal_digits(tmp_path, torch.rand(2, 14, 14))
    with pytest.raises(DigitlabError, match="corrupt ideal digits"):
        load_ideal_digits(tmp_path)
    (tmp_path / IDEALS).write_bytes(b"garbage")
    with pytest.raises(DigitlabError, match="corrupt ideal digits"):
        load_ideal_digits(tmp_path)
