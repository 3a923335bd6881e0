"""`train()` end to end on tiny synthetic digits: binary and multi-class paths, seeds, defaults."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from digitlab.core.defaults import DEVICE_RECIPES, MODEL_DEFAULTS
from digitlab.errors import DigitlabError
from digitlab.models import CNN, Linear, SimpleNet
from digitlab.train.config import BOOK_TRAIN_IMAGES, TrainConfig, default_epochs
from digitlab.train.recipe import is_binary, targets_for, train

TEN = tuple(range(10))


def history_without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in history]


def test_targets_for_binary_and_multiclass():
    labels = torch.tensor([0, 1, 1, 0])
    binary = targets_for(labels, binary=True)
    assert binary.dtype == torch.float32 and binary.shape == (4, 1)
    assert binary.flatten().tolist() == [1.0, 0.0, 0.0, 1.0]  # 1. for the first class (the book's 3s)
    assert targets_for(labels, binary=False) is labels


def test_is_binary_only_for_the_books_models_on_two_classes():
    assert is_binary("linear", 2) and is_binary("simple_net", 2)
    assert not is_binary("cnn", 2) and not is_binary("linear", 10) and not is_binary("simple_net", 3)


def test_linear_on_two_classes_learns_the_books_binary_form(make_digits):
    result = train(
        TrainConfig(model="linear", epochs=4, bs=32), make_digits(40), make_digits(15, seed=1), progress=False
    )
    assert result.binary
    model = result.learner.model
    assert isinstance(model, Linear) and model.linear.out_features == 1
    assert result.learner.dls.train.dataset[1].shape == (80, 1)  # (N, 1) float targets
    assert result.learner.loss_func.__name__ == "mnist_loss"
    assert result.config.lr == 1.0 and result.config.epochs == 4  # the default lr, the explicit epochs
    assert len(result.history) == 4
    assert result.history[-1]["batch_accuracy"] >= 0.95
    assert result.history[-1]["valid_loss"] < result.history[0]["valid_loss"]
    assert result.normalization == {"scale": 1 / 255, "mean": 0.0, "std": 1.0}
    assert result.fit_seconds > 0


def test_simple_net_on_ten_classes_uses_cross_entropy(make_digits):
    result = train(
        TrainConfig(model="simple_net", epochs=6, lr=0.5, bs=64),
        make_digits(20, TEN),
        make_digits(8, TEN, seed=1),
        progress=False,
    )
    assert not result.binary
    model = result.learner.model
    assert isinstance(model, SimpleNet) and model[2].out_features == 10
    assert result.learner.dls.train.dataset[1].dtype == torch.int64
    assert result.history[-1]["batch_accuracy"] >= 0.9
    assert result.history[-1]["valid_loss"] < result.history[0]["valid_loss"]


def test_same_seed_same_run_different_seed_different_run(make_digits):
    train_digits, valid_digits = make_digits(20, TEN), make_digits(5, TEN, seed=1)

    def run(seed: int):
        result = train(
            TrainConfig(model="simple_net", epochs=3, lr=0.3, bs=32, seed=seed),
            train_digits,
            valid_digits,
            progress=False,
        )
        return history_without_time(result.history), result.learner.model.state_dict()

    history_a, weights_a = run(3)
    history_b, weights_b = run(3)
    history_c, weights_c = run(4)
    assert history_a == history_b
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert history_a != history_c
    assert not all(torch.equal(weights_a[k], weights_c[k]) for k in weights_a)


def test_resolved_fills_the_model_defaults():
    # on MNIST_SAMPLE's 12,396 training images the defaults are the book's runs: 20 and 40 epochs
    linear = TrainConfig(model="linear").resolved(BOOK_TRAIN_IMAGES)
    assert (linear.lr, linear.epochs, linear.mom, linear.wd) == (1.0, 20, 0.0, 0.0)
    assert linear.one_cycle is False and linear.augment is False
    simple = TrainConfig(model="simple_net").resolved(BOOK_TRAIN_IMAGES)
    assert (simple.lr, simple.epochs) == (0.1, 40)
    cnn = TrainConfig(model="cnn").resolved(8_000)
    assert cnn.width == MODEL_DEFAULTS["cnn"]["width"] and cnn.one_cycle is True and cnn.augment is True
    assert cnn.epochs == MODEL_DEFAULTS["cnn"]["epochs"]  # tuned on the mirror's 8,000 digits
    assert linear.width is None  # not a linear setting: stays unset


def test_default_epochs_keep_the_books_number_of_steps_on_smaller_data():
    small = TrainConfig(model="linear").resolved(BOOK_TRAIN_IMAGES // 4)
    assert small.epochs > 20
    assert small.epochs == default_epochs("linear", BOOK_TRAIN_IMAGES // 4, 256)
    assert TrainConfig(model="simple_net").resolved(BOOK_TRAIN_IMAGES // 4).epochs > 40
    assert TrainConfig(model="cnn").resolved(10).epochs == MODEL_DEFAULTS["cnn"]["epochs"]  # never more than 8


def test_the_cnn_takes_fewer_epochs_on_more_data_on_the_cpu():
    epochs = [TrainConfig(model="cnn", device="cpu").resolved(n).epochs for n in (10_000, 12_396, 60_000)]
    assert epochs[0] == MODEL_DEFAULTS["cnn"]["epochs"] and epochs[0] > epochs[1] > epochs[2] >= 1
    assert 60_000 * epochs[2] >= 10_000 * epochs[0]  # as many images seen as the measured budget, at least
    assert TrainConfig(model="cnn", device="cpu", epochs=8).resolved(60_000).epochs == 8  # --epochs wins


def test_resolved_keeps_explicit_values_and_does_not_mutate():
    config = TrainConfig(model="simple_net", lr=0.7, epochs=3, mom=0.5, bs=16, seed=9)
    resolved = config.resolved(100)
    assert (resolved.lr, resolved.epochs, resolved.mom, resolved.bs, resolved.seed) == (0.7, 3, 0.5, 16, 9)
    assert resolved.wd == 0.0
    assert config.wd is None and config.one_cycle is None  # the original is untouched
    assert TrainConfig(model="linear", one_cycle=True).resolved(100).one_cycle is True
    assert TrainConfig(model="cnn", wd=0.0).resolved(100).wd == 0.0  # 0 is a value, not "unset"


def test_cnn_path_runs_on_a_hundred_images(make_digits):
    result = train(
        TrainConfig(model="cnn", epochs=1, width=8, bs=32),
        make_digits(10, TEN),
        make_digits(3, TEN, seed=1),
        progress=False,
    )
    assert not result.binary
    model = result.learner.model
    assert isinstance(model, CNN) and model.init_kwargs == {"n_out": 10, "width": 8}
    assert len(result.history) == 1 and all(map(torch.isfinite, map(torch.tensor, result.history[0].values())))
    assert result.normalization["std"] != 1.0 and result.normalization["mean"] != 0.0  # standardised
    names = {type(cb).__name__ for cb in result.learner.cbs}
    assert {"OneCycleCB", "RandomAffineCB", "RecorderCB", "DivergenceGuardCB", "DeviceCB"} <= names


def test_train_prints_progress_and_checkpoints_each_epoch(make_digits, capsys, monkeypatch, tmp_path):
    import digitlab.train.recipe

    saved = []
    monkeypatch.setattr(
        digitlab.train.recipe,
        "save_model",
        lambda model, path, card: saved.append((path, card.epoch, card.classes)),
    )
    train(TrainConfig(model="linear", epochs=2), make_digits(10), make_digits(5, seed=1), checkpoint_dir=tmp_path)
    assert [epoch for _, epoch, _ in saved] == [1, 2] and all(path == tmp_path for path, _, _ in saved)
    err = capsys.readouterr().err
    assert "train_loss" in err and len(err.strip().splitlines()) == 3


def test_the_cpu_recipe_is_the_cnns_defaults_as_they_were():
    """The CPU's defaults did not move when the CUDA recipe came: the values measured on the 2-core CPU."""
    cnn = TrainConfig(model="cnn").resolved(10_000)
    assert cnn.recipe == "cpu" and DEVICE_RECIPES["cpu"] == {}
    assert (cnn.epochs, cnn.lr, cnn.bs, cnn.mom, cnn.wd, cnn.one_cycle, cnn.augment, cnn.label_smoothing) == (
        8,
        0.4,
        64,
        0.9,
        5e-4,
        True,
        True,
        0.1,
    )
    assert cnn.width == 16 and cnn.cuda_graphs == "auto"
    linear = TrainConfig(model="linear").resolved(BOOK_TRAIN_IMAGES)
    assert (linear.recipe, linear.lr, linear.bs, linear.epochs) == ("cpu", 1.0, 256, 20)


def test_on_cuda_the_cnn_takes_the_cuda_recipe_and_explicit_values_win(monkeypatch):
    import digitlab.train.device as device

    monkeypatch.setattr(device, "resolve_device", lambda device: "cuda" if device in ("cuda", "auto") else device)
    cnn = TrainConfig(model="cnn", device="auto").resolved(10_000)
    assert (cnn.recipe, cnn.bs, cnn.lr, cnn.epochs) == ("cuda", 512, 1.6, 14)
    assert (cnn.one_cycle, cnn.augment, cnn.mom, cnn.wd) == (True, True, 0.9, 5e-4)  # the rest as on the CPU
    mine = TrainConfig(model="cnn", device="cuda", bs=128, epochs=3).resolved(10_000)
    assert (mine.recipe, mine.bs, mine.lr, mine.epochs) == ("cuda", 128, 1.6, 3)
    linear = TrainConfig(model="linear", device="cuda").resolved(BOOK_TRAIN_IMAGES)
    assert (linear.recipe, linear.lr, linear.bs) == ("cuda", 1.0, 256)  # the book's runs have no CUDA recipe
    assert TrainConfig(model="cnn", device="cpu").resolved(10_000).recipe == "cpu"


def test_a_resolved_config_from_before_recipes_gets_its_recipe_and_keeps_its_values():
    old = dataclasses.replace(TrainConfig(model="cnn").resolved(100), recipe=None)  # a resume.json from before
    again = old.resolved(100)
    assert again.recipe == "cpu" and dataclasses.replace(again, recipe=None) == old


@pytest.mark.parametrize(
    "setting, words",
    [
        ({"precision": "fp16"}, "loss scaling"),
        ({"precision": "fp8"}, "unknown precision"),
        ({"threads": "many"}, "threads must be"),
        ({"threads": True}, "threads must be"),
        ({"cuda_graphs": "sometimes"}, "choose one of"),
        ({"cuda_graphs": "on", "device": "cpu"}, "CUDA graphs are CUDA's"),
    ],
)
def test_a_config_checks_its_settings_when_made_and_when_replaced(setting, words):
    with pytest.raises(DigitlabError, match=words):
        TrainConfig(**setting)
    with pytest.raises(DigitlabError, match=words):
        dataclasses.replace(TrainConfig(), **setting)
    auto = TrainConfig(device="auto", cuda_graphs="on")  # the device is not known yet: checked once resolved
    with pytest.raises(DigitlabError, match="CUDA graphs are CUDA's"):
        dataclasses.replace(auto, device="cpu")
