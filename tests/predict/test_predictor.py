"""The Predictor: one way from uint8 digits to labels, probabilities, top k, evaluations and top losses."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import digitlab
from digitlab.artifacts.card import Architecture, ModelCard, Normalization
from digitlab.artifacts.inference import labels_from_outputs, model_outputs
from digitlab.artifacts.metrics import accuracy_report
from digitlab.artifacts.serialization import SavedModel, load_model, save_model
from digitlab.artifacts.shifts import tta_outputs
from digitlab.data.digits import Digits
from digitlab.errors import DigitlabError
from digitlab.models import build_model
from digitlab.predict.predictor import Predictor, evaluate, shown_probability

PLAIN = Normalization(scale=1 / 255, mean=0.0, std=1.0)
CLASSES = ("3", "7", "1")


def card_for(model: torch.nn.Module, classes: tuple[str, ...], binary: bool, **extra) -> ModelCard:
    return ModelCard(Architecture.of(model), classes, binary, PLAIN, **extra)


@pytest.fixture
def digits(digits_factory) -> Digits:
    images, labels = digits_factory(8, (3, 7, 1), seed=0)
    return Digits(torch.from_numpy(images), torch.tensor([CLASSES.index(str(v)) for v in labels]), CLASSES)


@pytest.fixture
def predictor() -> Predictor:
    torch.manual_seed(0)
    model = build_model("simple_net", 3, n_hidden=8)
    return Predictor(model, card_for(model, CLASSES, binary=False))


def test_predict_gives_labels_probabilities_and_top_k(predictor, digits):
    found = predictor.predict(digits.images, k=2)
    outputs = model_outputs(predictor.model, digits.images, PLAIN)
    assert len(found) == len(digits)
    assert torch.equal(found.indices, labels_from_outputs(outputs, False))
    assert found.labels == [CLASSES[int(i)] for i in found.indices]
    assert found.probabilities.dtype == torch.float64 and found.probabilities.shape == (len(digits), 3)
    torch.testing.assert_close(found.probabilities.sum(1), torch.ones(len(digits), dtype=torch.float64))
    torch.testing.assert_close(found.probabilities, torch.softmax(outputs.double(), 1))
    for i, top in enumerate(found.top_k):
        assert len(top) == 2 and top[0][0] == found.labels[i]
        probs = [p for _, p in top]
        assert probs == sorted(probs, reverse=True)
        assert all(p == shown_probability(float(found.probabilities[i, CLASSES.index(c)])) for c, p in top)
    shown = found.shown(0)
    assert list(shown) == list(CLASSES) and sum(shown.values()) <= 1
    assert len(predictor.predict(digits.images, k=10).top_k[0]) == 3  # capped by the classes
    with pytest.raises(DigitlabError, match="k must be at least 1"):
        predictor.predict(digits.images, k=0)


def test_predictions_taken_apart_and_joined_are_those_of_the_images_taken(predictor, digits):
    found = predictor.predict(digits.images, k=2)
    rows = [5, 0, 3]
    taken = found.take(rows)
    alone = predictor.predict(digits.images[rows], k=2)
    assert taken.labels == alone.labels and taken.top_k == alone.top_k and taken.reasons == alone.reasons
    torch.testing.assert_close(taken.probabilities, alone.probabilities)
    rest = [i for i in range(len(digits)) if i not in rows]
    both = type(found).joined([taken, found.take(rest)])
    assert both.labels == [found.labels[i] for i in rows + rest] and both.top_k == [found.top_k[i] for i in rows + rest]
    assert both.reasons == [found.reasons[i] for i in rows + rest]


def test_probabilities_are_rounded_down_to_6_decimals():
    assert shown_probability(0.9999996) == 0.999999  # rounding to nearest would say 1.0
    assert shown_probability(1.0) == 1.0 and shown_probability(0.0) == 0.0
    assert shown_probability(0.1234567) == 0.123456
    # the shown probabilities of an image never add up to more than 1
    torch.manual_seed(1)
    for row in torch.softmax(torch.randn(200, 10, dtype=torch.float64) * 5, 1).tolist():
        assert sum(map(shown_probability, row)) <= 1


def test_a_binary_model_at_a_tie_names_its_label_first():
    model = build_model("linear", 1)
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.zero_()  # logit 0: p = 0.5 for both classes
    predictor = Predictor(model, card_for(model, ("3", "7"), binary=True))
    found = predictor.predict(torch.zeros(2, 28, 28, dtype=torch.uint8))
    assert found.labels == ["7", "7"]  # labels_from_outputs: a logit <= 0 is the second class
    assert found.top_k[0] == [("7", 0.5), ("3", 0.5)]


def test_predictor_reads_uint8_digits_only(predictor):
    with pytest.raises(DigitlabError, match=r"\(N, 28, 28\) uint8"):
        predictor.predict(torch.rand(2, 28, 28))
    with pytest.raises(DigitlabError, match=r"\(N, 28, 28\) uint8"):
        predictor.predict(torch.zeros(28, 28, dtype=torch.uint8))


def test_tta_averages_the_shifted_copies(predictor, digits):
    tta = Predictor(predictor.model, predictor.card, tta=True)
    x = digits.images.float() / 255
    with torch.no_grad():
        torch.testing.assert_close(tta.outputs(digits.images), tta_outputs(predictor.model, x))
    assert not torch.allclose(tta.outputs(digits.images), predictor.outputs(digits.images))


def test_evaluate_is_the_accuracy_report_of_its_labels(predictor, digits):
    report = predictor.evaluate(digits)
    expected = accuracy_report(predictor.predict(digits.images).indices, digits.labels, CLASSES)
    assert report == expected and report["n_valid"] == len(digits) and len(report["confusion"]) == 3
    saved = SavedModel(predictor.model, predictor.card)
    assert evaluate(saved, digits) == report  # the module-level shortcut
    with pytest.raises(DigitlabError, match="with_classes"):
        predictor.evaluate(digits.with_classes(("3", "7")))


def test_top_losses_keep_their_images(predictor, digits):
    top = predictor.top_losses(digits, k=5)
    assert len(top) == 5 and top.loss_name == "cross_entropy"
    assert torch.equal(top.images, digits.images[top.index])
    assert torch.equal(top.actual, digits.labels[top.index])
    losses = top.loss.tolist()
    assert losses == sorted(losses, reverse=True)
    items = top.items()
    assert [it["index"] for it in items] == top.index.tolist() and items[0]["loss"] == losses[0]


def test_load_once_from_a_saved_model(tmp_path, predictor, digits):
    save_model(predictor.model, tmp_path / "run", predictor.card)
    loaded = Predictor.load(tmp_path / "run")
    # the saved card also records the weights' sha256
    assert replace(loaded.card, weights_sha256=None) == predictor.card and loaded.classes == CLASSES
    assert torch.equal(loaded.predict(digits.images).indices, predictor.predict(digits.images).indices)
    assert "simple_net" in repr(loaded)
    with pytest.raises(DigitlabError, match="not a digitlab model"):
        Predictor.load(tmp_path / "nothing")
    assert Predictor.from_saved(load_model(tmp_path / "run")).card == loaded.card


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_predictor_on_cuda_agrees_with_the_cpu(predictor, digits):
    cpu = predictor.predict(digits.images)
    cuda = Predictor(build_model("simple_net", 3, n_hidden=8), predictor.card, device="cuda")
    cuda.model.load_state_dict(predictor.model.state_dict())
    found = cuda.predict(digits.images)
    assert torch.equal(found.indices, cpu.indices) and found.probabilities.device.type == "cpu"
    torch.testing.assert_close(found.probabilities, cpu.probabilities, atol=1e-5, rtol=1e-5)
    assert cuda.evaluate(digits)["confusion"] == predictor.evaluate(digits)["confusion"]


def _imports(module: Path, package: Path) -> set[str]:
    """The digitlab modules a source file imports (absolute dotted names)."""
    found = set()
    parts = module.relative_to(package.parent).with_suffix("").parts
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)  # `from . import x` imports a module
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("digitlab")}


def test_inference_never_imports_the_training_loop():
    """predict.predictor and every module it imports, transitively, stay clear of the Learner and its callbacks.

    (Module by module: `digitlab/__init__.py` itself re-exports the chapter's names, Learner included.)"""
    package = Path(digitlab.__file__).parent
    seen: set[str] = set()
    todo = ["digitlab.predict.predictor"]
    while todo:
        name = todo.pop()
        path = package.parent / Path(*name.split("."))
        source = path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"
        if name in seen or not source.exists():
            continue
        seen.add(name)
        todo.extend(_imports(source, package))
    assert (
        "digitlab.artifacts.inference" in seen
        and "digitlab.artifacts.shifts" in seen
        and "digitlab.artifacts.card" in seen
    )
    assert not {n for n in seen if n.startswith("digitlab.train")}, sorted(seen)


def test_evaluate_names_what_it_takes_when_given_a_tensor(predictor, digits):
    """The README calls both arguments "digits": a tensor of images is one line, not an AttributeError."""
    for method in (predictor.evaluate, predictor.top_losses):
        with pytest.raises(DigitlabError, match=r"take Digits .* not Tensor: for images alone, use predict"):
            method(digits.images)
    assert digitlab.Predictor is Predictor  # `from digitlab import Predictor`


def test_help_on_the_learner_shows_docstrings_not_section_comments():
    import pydoc

    text = pydoc.render_doc(digitlab.Learner)
    assert "# ----" not in text and "reachable by its name" in text
