"""A fit stopped after an epoch and resumed from its checkpoint ends with the same weights, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from digitlab.errors import DigitlabError
from digitlab.train.recipe import TrainConfig, train
from digitlab.train.resume import FIRST_NAMES, HEADER, TRAIN_STATE


class Stop(Exception):
    """Stands for a kill or a Ctrl-C right after a checkpoint."""


CONFIGS = {
    "linear": TrainConfig(model="linear", epochs=4, bs=16),
    "simple_net_momentum": TrainConfig(model="simple_net", epochs=4, bs=16, mom=0.9, wd=1e-3, one_cycle=True),
    "cnn_augmented": TrainConfig(model="cnn", epochs=4, bs=16, width=4, augment=True),
}


def in_first_format(path: Path) -> None:
    """Rewrite a saved state as the first format wrote it: the loader's and callbacks' state under the
    names FIRST_NAMES lists, their JSON values at the header's top level."""
    with safe_open(str(path), "pt") as f:
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118  # not a dict
        header = json.loads(f.metadata()[HEADER])
    old_name = {new: old for old, new in FIRST_NAMES.items()}
    tensors = {old_name.get(name, name): value for name, value in tensors.items()}
    header |= {old_name[name]: value for name, value in header.pop("values").items()}
    assert "rng/train_loader" in tensors and "history" in header  # what the first format had
    save_file(tensors, str(path), metadata={HEADER: json.dumps(header)})


@pytest.mark.parametrize("first_format", [False, True], ids=["", "saved-in-the-first-format"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_resumed_fit_ends_with_the_weights_of_an_uninterrupted_one(
    tmp_path, make_digits, monkeypatch, interrupt_after, name, first_format
):
    classes = (3, 7) if name == "linear" else (1, 3, 7)
    train_digits, valid_digits = make_digits(12, classes, seed=0), make_digits(4, classes, seed=1)
    config = CONFIGS[name]
    straight = train(config, train_digits, valid_digits, progress=False, checkpoint_dir=tmp_path / "a")

    with monkeypatch.context() as patch:
        interrupt_after(patch, 2, Stop())  # a kill or a Ctrl-C right after epoch 2's checkpoint
        with pytest.raises(Stop):
            train(config, train_digits, valid_digits, progress=False, checkpoint_dir=tmp_path / "b")
    if first_format:  # a run interrupted before callbacks saved their own state still resumes
        in_first_format(tmp_path / "b" / TRAIN_STATE)
    torch.manual_seed(12345)  # whatever ran in between: the state saved is what counts
    resumed = train(
        config,
        train_digits,
        valid_digits,
        progress=False,
        checkpoint_dir=tmp_path / "b",
        resume_from=tmp_path / "b" / TRAIN_STATE,
    )
    a, b = straight.learner.model.state_dict(), resumed.learner.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    a_opt, b_opt = straight.learner.opt.state_dict(), resumed.learner.opt.state_dict()
    for index, values in a_opt["state"].items():
        assert all(torch.equal(v, b_opt["state"][index][k]) for k, v in values.items())
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    strip = [{k: v for k, v in row.items() if "seconds" not in k} for row in straight.history]
    assert [{k: v for k, v in row.items() if "seconds" not in k} for row in resumed.history] == strip
    assert resumed.learner.recorder.lrs == straight.learner.recorder.lrs


def test_a_state_that_does_not_fit_is_one_line(tmp_path, make_digits):
    train_digits, valid_digits = make_digits(6), make_digits(2, seed=1)
    config = TrainConfig(model="linear", epochs=1, bs=16)
    train(config, train_digits, valid_digits, progress=False, checkpoint_dir=tmp_path / "a")
    state = tmp_path / "a" / TRAIN_STATE
    with pytest.raises(DigitlabError, match="does not fit this run"):
        train(TrainConfig(model="simple_net", epochs=1, bs=16), train_digits, valid_digits, False, resume_from=state)
    with pytest.raises(DigitlabError, match="no training state to resume from"):
        train(config, train_digits, valid_digits, False, resume_from=tmp_path / "missing")
    state.write_bytes(b"not a safetensors file")
    with pytest.raises(DigitlabError, match="corrupt training state"):
        train(config, train_digits, valid_digits, False, resume_from=state)
