"""One self-contained HTML page per training run: open it from disk, share it, no network.

`write_report(run_dir)` reads the run folder only (`digitlab.jobs.train_run` saved there the
model card with its evaluation and the baseline's scores, the ideal digits and the top-loss
digits), draws the figures into RUN_DIR/report/*.png and embeds them into RUN_DIR/report.html
as data URIs: data summary, baseline against the model, curves, confusion matrix, top losses,
weight maps for a linear model, hyperparameters, seed, timings and versions. The data is not
needed, nor the working directory the run was trained from.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from ..artifacts.card import BaselineScores, DataInfo, Metrics, ModelCard
from ..artifacts.metrics import TopLosses
from ..artifacts.serialization import SavedModel, load_ideal_digits, load_model, load_top_losses
from ..errors import DigitlabError
from ..plots import training as training_plots
from ..plots.chapter import plot_ideal_digits
from .html import embedded_png, page, table

if TYPE_CHECKING:
    import torch

# the provenance's keys as a reader says them (the card keeps the keys; the page shows words)
_PROVENANCE = {"source": "where the data came from", "stands_in_for": "standing in for", "classes_kept": "digits kept"}


def _words(value: object) -> str:
    """A provenance value for a person: lists joined, the sources' names spelled out."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    text = str(value)
    return {"offline-mirror": "the offline mirror", "canonical": "the canonical download",
            "official-files": "the official MNIST files on this machine"}.get(text, text)  # fmt: skip


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-" if value is None else str(value)


def _schedule(lrs: list[float], figures: Path) -> str:
    """The learning-rate schedule: a figure when it changes, a sentence when it is constant (a flat line says less)."""
    if not lrs:
        return ""
    if training_plots.is_constant(lrs):
        return (
            f"<p>constant lr {round(float(lrs[0]), 12)}: every batch trained at the same rate, "
            "so there is no schedule to draw</p>"
        )
    training_plots.plot_lr_schedule(lrs, path=figures / "lr_schedule.png")
    return embedded_png(figures / "lr_schedule.png", "learning-rate schedule")


def _missing(run_dir: Path, what: str) -> DigitlabError:
    return DigitlabError(
        f"{run_dir}: no saved {what} to report (a checkpoint, or a run saved by an older digitlab); "
        "`digitlab evaluate` scores any saved model"
    )


def write_report(run_dir: Path) -> Path:
    """Write RUN_DIR/report.html (and the PNGs beside it in RUN_DIR/report/); return the page's path.

    Reads the run folder only (the card, the weights, the ideal digits, the top losses): no data,
    no cache, and any working directory.
    """
    run_dir = Path(run_dir)
    saved = load_model(run_dir)
    card = saved.card
    classes = card.classes
    metrics, baseline, data = card.metrics, card.baseline, card.data
    if metrics is None or metrics.confusion is None or metrics.n_valid is None or data is None:
        raise _missing(run_dir, "evaluation")
    if baseline is None:
        raise _missing(run_dir, "baseline")
    ideals = load_ideal_digits(run_dir, len(classes))
    if ideals is None:
        raise _missing(run_dir, "ideal digits")
    top = load_top_losses(run_dir, len(classes))
    if top is None:
        raise _missing(run_dir, "top losses")
    figures = run_dir / "report"
    figures.mkdir(parents=True, exist_ok=True)
    name = card.architecture.name
    parts = [
        f"<h1>digitlab run: {html.escape(name)} on {html.escape(data.spec)}</h1>",
        f'<p class="big">accuracy {_fmt(metrics.accuracy)} on {metrics.n_valid:,} '
        f"validation images (pixel-similarity baseline: {_fmt(baseline.accuracy)})</p>",
        *_data_section(card, data, ideals, figures),
        *_baseline_section(card, metrics, baseline),
        *_training_section(card, figures),
        *_errors_section(saved, metrics, top, figures),
        *_run_section(card),
    ]
    return page(run_dir / "report.html", f"digitlab: {name}", "".join(parts))


def _data_section(card: ModelCard, data: DataInfo, ideals: torch.Tensor, figures: Path) -> list[str]:
    """Where the data came from, the counts per class, the ideal digits."""
    classes = card.classes
    provenance = [(_PROVENANCE.get(k, k.replace("_", " ")), _words(v)) for k, v in data.provenance.items()]
    parts = [
        "<h2>Data</h2>",
        table(
            [
                ("training images", f"{data.n_train:,}"),
                ("validation images", f"{data.n_valid:,}"),
                ("validated on", data.valid),
                ("classes", ", ".join(classes)),
                *provenance,
            ]
        ),
    ]
    if data.train_counts is not None and data.valid_counts is not None:
        train_counts, valid_counts = data.train_counts, data.valid_counts
        counts = [(c, f"{train_counts.get(c, 0):,}", f"{valid_counts.get(c, 0):,}") for c in classes]
        parts.append(table(counts, ("class", "train", "valid")))
    plot_ideal_digits(ideals, classes, path=figures / "ideal_digits.png")
    return [*parts, embedded_png(figures / "ideal_digits.png", "ideal digits")]


def _baseline_section(card: ModelCard, metrics: Metrics, baseline: BaselineScores) -> list[str]:
    """The pixel-similarity baseline beside the model, per class."""
    rows = [(c, _fmt(baseline.per_class.get(c)), _fmt(metrics.per_class.get(c))) for c in card.classes]
    rows.append(("all", _fmt(baseline.accuracy), _fmt(metrics.accuracy)))
    metric = {"l1": "L1", "rmse": "RMSE"}[baseline.metric]
    header = ("class", f"pixel similarity ({metric})", card.architecture.name)
    parts = ["<h2>Baseline against the model</h2>", table(rows, header)]
    if metrics.tta:
        parts.append('<p class="note">The model\'s accuracy is with test-time augmentation (--tta).</p>')
    return parts


def _training_section(card: ModelCard, figures: Path) -> list[str]:
    """The loss curves and the learning-rate schedule."""
    parts = ["<h2>Training</h2>"]
    if card.history:
        training_plots.plot_loss_curves(card.history, path=figures / "loss_curves.png")
        parts.append(f'<p class="note">Losses are {html.escape(card.loss_name)}, the loss the model trained with.</p>')
        parts.append(embedded_png(figures / "loss_curves.png", "loss curves"))
    return [*parts, _schedule(card.lr_schedule or [], figures)]


def _errors_section(saved: SavedModel, metrics: Metrics, top: TopLosses, figures: Path) -> list[str]:
    """The confusion matrix, the top losses and, for the linear model, its weights as 28x28 maps."""
    card, classes = saved.card, saved.card.classes
    assert metrics.confusion is not None  # write_report checked
    training_plots.plot_confusion_matrix(metrics.confusion, classes, path=figures / "confusion_matrix.png")
    parts = ["<h2>Errors</h2>", embedded_png(figures / "confusion_matrix.png", "confusion matrix")]
    if len(top):
        items = [{**item, "index": row} for row, item in enumerate(top.items())]  # rows of the saved images
        training_plots.plot_top_losses(items, top.images, classes, path=figures / "top_losses.png")
        parts.append(
            f'<p class="note">The validation digits with the highest {html.escape(top.loss_name)} (the loss '
            "the model trained with, as in the curves above); each titled predicted/actual/loss/probability."
            "</p>"
        )
        parts.append(embedded_png(figures / "top_losses.png", "top losses"))
    if card.architecture.name == "linear":
        training_plots.plot_linear_weights(saved.model, classes, path=figures / "weights.png")
        parts += ["<h2>What the linear model looks for</h2>", embedded_png(figures / "weights.png", "weight maps")]
    return parts


def _run_section(card: ModelCard) -> list[str]:
    """The hyperparameters (the seed among them), timings, the weights' hash and versions."""
    return [
        "<h2>Run</h2>",
        table([(k, _fmt(v)) for k, v in (card.config or {}).items()], ("hyperparameter", "value")),
        table(
            [
                ("fit seconds (validation included)", card.fit_seconds),
                ("processes", card.world_size or 1),
                ("weights sha256", card.weights_sha256),
                *[(f"{k} version", v) for k, v in (card.versions or {}).items()],
            ]
        ),
        '<p class="note">Made by digitlab from the run folder; all images are embedded, the page needs no network.</p>',
    ]
