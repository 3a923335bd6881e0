"""The model card: what model.json may say, checked once when it is read.

Every hostile or damaged card is refused with one line that names the file and the field,
before any weights are read or any model is built."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from digitlab.artifacts.card import (
    FORMAT,
    Architecture,
    BaselineScores,
    CardError,
    DataInfo,
    Metrics,
    ModelCard,
    Normalization,
)
from digitlab.artifacts.card_sections import card_from_json
from digitlab.artifacts.card_values import MAX_DEPTH
from digitlab.artifacts.serialization import META, load_model, save_model, state_sha256
from digitlab.cli import main
from digitlab.errors import DigitlabError
from digitlab.models import build_model

PLAIN = {"scale": 1 / 255, "mean": 0.0, "std": 1.0}
CARD = {
    "format": FORMAT,
    "format_version": 1,
    "architecture": {"name": "linear", "n_out": 1},
    "classes": ["3", "7"],
    "binary": True,
    "normalization": PLAIN,
}


@pytest.fixture
def run(tmp_path):
    """A saved linear 3-vs-7 model whose model.json the tests replace."""
    save_model(build_model("linear", 1), tmp_path / "run", {k: CARD[k] for k in ("classes", "binary", "normalization")})
    return tmp_path / "run"


def refused(run, card: object, *fragments: str, raw: str | None = None) -> str:
    """Write `card` (or raw text) as model.json: loading, `evaluate` and `predict` refuse it in one line."""
    (run / META).write_text(raw if raw is not None else json.dumps(card))
    with pytest.raises(DigitlabError) as info:
        load_model(run)
    message = str(info.value)
    assert message.startswith(str(run / META)) and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def with_(**changes) -> dict:
    return {**CARD, **changes}


def test_the_minimal_card_loads(run):
    (run / META).write_text(json.dumps(CARD))
    card = load_model(run).card
    assert card == ModelCard(Architecture("linear", 1), ("3", "7"), True, Normalization(**PLAIN))
    assert card.loss_name == "mnist_loss" and card.label_smoothing == 0.0


@pytest.mark.parametrize("n_out", [-1, 0, 1001, 1.0, "1", True, None])
def test_a_bad_number_of_outputs(run, n_out):
    refused(run, with_(architecture={"name": "linear", "n_out": n_out}), "architecture.n_out")


def test_classes_that_do_not_fit_the_outputs(run):
    refused(run, with_(classes=["3", "7", "1"]), "1 output and 2 classes", "3 classes")
    refused(run, with_(binary=False), "2 classes do not fit a model of 1 output")
    refused(run, with_(architecture={"name": "linear", "n_out": 3}, binary=False), "2 classes do not fit", "3 output")


@pytest.mark.parametrize("key", ["binary", "classes", "normalization", "architecture"])
def test_a_missing_required_field(run, key):
    refused(run, {k: v for k, v in CARD.items() if k != key}, "incomplete model description", f'"{key}"')


@pytest.mark.parametrize("binary", [1, "true", None, [True]])
def test_binary_must_be_true_or_false(run, binary):
    refused(run, with_(binary=binary), "binary must be true or false")


def test_deeply_nested_json(run):
    # deeper than Python's recursion limit: json.loads itself gives up
    deep = "[" * 100_000 + "]" * 100_000
    refused(run, None, "nested too deeply", raw='{"format": "digitlab-model", "x": ' + deep + "}")
    # deep but parseable: refused before any field is read
    nested: object = 1
    for _ in range(MAX_DEPTH + 5):
        nested = [nested]
    refused(run, with_(config={"note": nested}), f"nested deeper than {MAX_DEPTH} levels")
    refused(run, with_(data={"spec": "x", "provenance": {"a": [[[["deep"]]]]}, "n_train": 1, "n_valid": 1}), "nested")


@pytest.mark.parametrize(
    "where, card",
    [
        ("normalization.std", with_(normalization={**PLAIN, "std": math.nan})),
        ("normalization.mean", with_(normalization={**PLAIN, "mean": math.inf})),
        ("normalization.scale", with_(normalization={**PLAIN, "scale": -math.inf})),
        ("fit_seconds", with_(fit_seconds=math.nan)),
        ("metrics.accuracy", with_(metrics={"accuracy": math.nan, "per_class": {}})),
        ("lr_schedule[1]", with_(lr_schedule=[0.1, math.nan])),
        ("config.lr", with_(config={"lr": math.nan})),
    ],
)
def test_nan_where_a_number_is_expected(run, where, card):
    refused(run, card, where, "finite number")  # json.dumps writes NaN and Infinity; Python's json reads them


def test_nan_in_the_history_is_a_loss_that_was_nan(run):
    """The divergence guard lets a run with a NaN validation loss finish: its card keeps the NaN."""
    (run / META).write_text(json.dumps(with_(history=[{"epoch": 1, "valid_loss": math.nan}])))
    assert math.isnan(load_model(run).card.history[0]["valid_loss"])


@pytest.mark.parametrize("version", [2, 99, 0, -1, "1", 1.5, None])
def test_an_unknown_schema_version(run, version):
    words = "newer digitlab" if isinstance(version, int) and version > 1 else "not a digitlab model file"
    refused(run, with_(format_version=version), words)


def test_an_absurd_cnn_width_is_refused_before_anything_is_built(run, monkeypatch):
    import digitlab.artifacts.card

    monkeypatch.setattr(digitlab.artifacts.card, "build_model", lambda *a, **k: pytest.fail("a model was built"))
    refused(run, with_(architecture={"name": "cnn", "n_out": 2, "width": 10**9}, binary=False), "architecture.width")
    refused(run, with_(architecture={"name": "simple_net", "n_out": 1, "n_hidden": 10**7}), "architecture.n_hidden")
    refused(run, with_(architecture={"name": "linear", "n_out": 1, "depth": 3}), "takes no option 'depth'")


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"classes": ["3", "3"]}, "names repeat"),
        ({"classes": ["3", 7]}, "classes[1] must be a string"),
        ({"classes": "37"}, "classes must be a list"),
        ({"classes": ["3", ""]}, "empty"),
        ({"normalization": {**PLAIN, "std": 0}}, "normalization.std must be above 0"),
        ({"normalization": [1, 0, 1]}, "normalization must be an object"),
        ({"architecture": {"name": "linear"}}, "architecture.n_out"),
        ({"architecture": "linear"}, "architecture must be an object"),
        ({"metrics": {"accuracy": 1.5, "per_class": {}}}, "metrics.accuracy must lie in [0, 1]"),
        ({"metrics": {"accuracy": 1.0, "per_class": {"9": 1.0}}}, "classes the model does not have"),
        ({"metrics": {"accuracy": 1.0, "per_class": {}, "confusion": [[1, 2]]}}, "2 rows of 2 counts"),
        ({"metrics": {"accuracy": 1, "per_class": {}, "n_valid": 4, "confusion": [[1, 0], [0, 1]]}}, "not n_valid"),
        ({"baseline": {"accuracy": 1.0, "per_class": {}, "metric": "l7"}}, "baseline.metric"),
        ({"weights_sha256": "x" * 64}, "64 hexadecimal digits"),
        ({"world_size": 0}, "world_size"),
        ({"seed": "42"}, "seed must be a whole number"),
        ({"epoch": -1}, "epoch"),
        ({"history": [{"epoch": "one"}]}, "history[0].epoch must be a number"),
        ({"versions": {"torch": 2}}, "versions.torch must be a string"),
        ({"data": {"spec": "x", "n_train": -5}}, "data.n_train"),
        ({"data": {"spec": "x", "train_counts": {"3": -1}}}, "data.train_counts.3"),
        ({"config": {"lr": [1, 2]}}, "config.lr must be a string, number"),
        ({"architecture": {"name": "linear", "n_out": 10**400}}, "architecture.n_out"),
        ({"fit_seconds": 10**400}, "fit_seconds must be a finite number"),
    ],
)
def test_hostile_fields(run, changes, words):
    refused(run, with_(**changes), words)


def test_a_huge_string_is_refused(run):
    refused(run, with_(data={"spec": "x" * 100_000, "n_train": 1, "n_valid": 1}), "data.spec is 100,000 characters")


def test_the_cli_refuses_a_hostile_card_in_one_line(capsys, run, tmp_path):
    (run / META).write_text(json.dumps(with_(architecture={"name": "linear", "n_out": -1})))
    commands = (["evaluate", str(run)], ["predict", str(run), str(tmp_path)], ["serve", str(run)], ["report", str(run)])
    for argv in commands:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("digitlab: error: ") and err.count("\n") == 1 and "architecture.n_out" in err, err


def test_a_full_card_round_trips(tmp_path):
    card = ModelCard(
        architecture=Architecture("cnn", 3, {"width": 4}),
        classes=("a", "b", "c"),
        binary=False,
        normalization=Normalization(scale=1 / 255, mean=0.13, std=0.31),
        config={
            "model": "cnn",
            "lr": 0.4,
            "width": 4,
            "one_cycle": True,
            "threads": None,
            "label_smoothing": 0.1,
            "seed": 3,
        },
        data=DataInfo("sample", {"source": "folder", "files": ["x"]}, "holdout", 30, 9, {"a": 10, "b": 10, "c": 10}),
        history=[{"epoch": 1, "train_loss": 1.25, "valid_loss": 1.5}],
        lr_schedule=[0.1, 0.4],
        fit_seconds=1.5,
        weights_sha256="ab" * 32,
        world_size=2,
        versions={"digitlab": "0.1.0"},
        metrics=Metrics(0.5, {"a": 1.0, "b": 0.5, "c": None}, 3, [[1, 0, 0], [1, 1, 0], [0, 0, 0]], tta=True),
        baseline=BaselineScores(0.25, {"a": 0.5, "b": 0.0, "c": None}, metric="rmse"),
    )
    assert card_from_json(json.loads(json.dumps(card.to_json()))) == card
    assert card.seed == 3 and "seed" not in card.to_json()  # once: in the config
    assert card.loss_name == "cross_entropy (label smoothing 0.1)"
    torch.manual_seed(0)
    model = build_model("cnn", 3, width=4)
    save_model(model, tmp_path / "run", card)
    # save_model records the sha256 of the weights it writes, whatever the card said
    assert load_model(tmp_path / "run").card == replace(card, weights_sha256=state_sha256(model.state_dict()))


def test_card_errors_are_digitlab_errors():
    with pytest.raises(CardError):
        card_from_json({"format": "something else"})
    assert issubclass(CardError, DigitlabError)


def test_a_seed_beside_the_config_joins_it():
    """Cards that wrote the seed both in and beside the config read as one seed, in the config."""
    base = CARD
    both = card_from_json({**base, "config": {"model": "linear", "seed": 5}, "seed": 5})
    assert both.config == {"model": "linear", "seed": 5} and both.seed == 5
    beside = card_from_json({**base, "config": {"model": "linear"}, "seed": 6})
    assert beside.config == {"model": "linear", "seed": 6} and beside.seed == 6
    alone = card_from_json({**base, "seed": 7})
    assert alone.config == {"seed": 7} and alone.seed == 7
    assert card_from_json(base).seed is None
