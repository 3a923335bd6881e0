"""The chapter-named modules a student imports keep working after the code moved into layers."""

from __future__ import annotations

import importlib

import pytest

ALIASES = {
    "digitlab.losses": "digitlab.train.losses",
    "digitlab.dataloader": "digitlab.train.dataloader",
    "digitlab.learner": "digitlab.train.learner",
    "digitlab.optim": "digitlab.train.optim",
    "digitlab.callbacks": "digitlab.train.callbacks digitlab.train.resume",  # checkpoints live with resuming
    "digitlab.loading": "digitlab.data.loading",
}


@pytest.mark.parametrize("alias, home", ALIASES.items())
def test_alias_module_re_exports_the_same_objects(alias, home):
    short, homes = importlib.import_module(alias), [importlib.import_module(h) for h in home.split()]
    assert short.__all__
    for name in short.__all__:
        assert any(getattr(short, name) is getattr(real, name, None) for real in homes), name


def test_the_books_names_come_from_the_package():
    import digitlab

    for name in (
        "mnist_distance",
        "mnist_loss",
        "batch_accuracy",
        "init_params",
        "linear1",
        "DataLoader",
        "DataLoaders",
        "SGD",
        "Learner",
        "simple_net",
        "BasicOptim",
        "calc_grad",
        "train_epoch",
        "validate_epoch",
        "first",
        "tensor",
        "untar_data",
        "show_image",
    ):
        assert name in digitlab.__all__ and getattr(digitlab, name) is not None


def test_every_exported_name_loads_from_the_module_the_lazy_table_names():
    import importlib

    import digitlab

    assert set(digitlab.__all__) - {"__version__"} == set(digitlab._LAZY)
    for name, module in digitlab._LAZY.items():
        assert getattr(digitlab, name) is getattr(importlib.import_module(module), name)
