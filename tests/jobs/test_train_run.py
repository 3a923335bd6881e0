"""`train_run`: a job on digits already loaded, saving a run folder a report can be drawn from; it prints nothing."""

from __future__ import annotations

import torch

from digitlab.artifacts.metrics import accuracy_report
from digitlab.artifacts.serialization import (
    IDEALS,
    META,
    TOP_LOSSES,
    WEIGHTS,
    load_ideal_digits,
    load_model,
    load_top_losses,
)
from digitlab.baseline import PixelSimilarity
from digitlab.data.digits import Digits
from digitlab.jobs.train_run import DataSource, RunResult, train_run
from digitlab.predict.mahalanobis import STATS
from digitlab.train.config import TrainConfig
from digitlab.train.recipe import TrainJob


def _digits(digits_factory, n: int, seed: int) -> Digits:
    images, labels = digits_factory(n, (3, 7), seed=seed)
    return Digits(torch.from_numpy(images), torch.tensor([0 if v == 3 else 1 for v in labels]), ("3", "7"))


def test_train_run_saves_what_the_report_needs_and_prints_nothing(capfd, tmp_path, digits_factory):
    train, valid = _digits(digits_factory, 10, 0), _digits(digits_factory, 4, 1)
    source = DataSource("my digits", {"source": "test", "note": "synthetic"}, "valid split")
    result = train_run(
        TrainJob(TrainConfig(model="linear", epochs=2), train, valid, progress=False), tmp_path / "run", source
    )
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the caller speaks (the CLI formats and logs)
    assert isinstance(result, RunResult) and result.is_main and result.run_dir == tmp_path / "run"
    assert result.config.is_resolved and result.config.epochs == 2 and result.config.lr == 1.0
    assert len(result.history) == 2 and result.rank == 0 and result.world_size == 1
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted([WEIGHTS, META, IDEALS, TOP_LOSSES, STATS])

    card = load_model(tmp_path / "run").card
    assert card == result.card
    assert result.evaluation is not None and card.metrics is not None
    assert card.metrics.accuracy == result.evaluation["accuracy"]
    assert card.metrics.confusion == result.evaluation["confusion"] and card.metrics.n_valid == 8
    assert card.data is not None and card.data.spec == "my digits" and card.data.provenance["note"] == "synthetic"
    assert card.data.n_train == 20 and card.data.train_counts == {"3": 10, "7": 10}
    assert card.data.valid_counts == {"3": 4, "7": 4} and card.data.valid == "valid split"
    # the baseline's scores are those of the ideal digits saved beside the model
    ideals = load_ideal_digits(tmp_path / "run", 2)
    assert ideals is not None
    expected = accuracy_report(PixelSimilarity(ideals, ("3", "7")).predict(valid.images), valid.labels, valid.classes)
    assert card.baseline is not None and card.baseline.metric == "l1"
    assert card.baseline.accuracy == expected["accuracy"] and card.baseline.confusion == expected["confusion"]
    top = load_top_losses(tmp_path / "run", 2)
    assert top is not None and len(top) == 8  # at most 9: the validation set has 8
    assert torch.equal(top.images, valid.images[top.index]) and top.loss_name == "mnist_loss"


def test_a_resolved_config_is_used_as_it_is(digits_factory, tmp_path, monkeypatch):
    """The CLI resolves once (to say what will run); build_learner does not resolve again."""
    from digitlab.train import recipe

    train, valid = _digits(digits_factory, 6, 0), _digits(digits_factory, 2, 1)
    config = TrainConfig(model="simple_net", epochs=1).resolved(len(train))
    assert config.is_resolved and config.resolved(len(train)) is config
    calls = []
    real = recipe.TrainConfig.resolved
    monkeypatch.setattr(recipe.TrainConfig, "resolved", lambda self, n: calls.append(n) or real(self, n))
    result = train_run(TrainJob(config, train, valid, progress=False), tmp_path / "run")
    assert calls == [] and result.config.lr == config.lr == 0.1
    assert not TrainConfig(model="cnn").is_resolved
