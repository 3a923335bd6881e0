"""One self-contained HTML page per training run: open it from disk, share it, no network.

`write_report(run_dir)` reloads the saved model and the data it was trained on (from the
cache), draws the figures into RUN_DIR/report/*.png and embeds them into RUN_DIR/report.html
as data URIs: data summary, baseline against the model, curves, confusion matrix, top losses,
weight maps for a linear model, hyperparameters, seed, timings and versions.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from ..baseline import PixelSimilarity
from ..config import Settings
from ..data.loading import train_and_valid
from ..plots import evaluation
from ..plots import training as training_plots
from ..plots.chapter import plot_ideal_digits
from ..progress import Log
from ..run.metrics import accuracy_report
from ..run.serialization import load_model
from ..run.train_run import evaluate

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #eee}
.big{font-size:1.4em;font-weight:bold}.note{color:#666;font-size:.9em}"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def _table(rows: Sequence[tuple[object, ...]], header: tuple[str, ...] | None = None) -> str:
    head = "<tr>" + "".join(f'<th class="l">{html.escape(str(h))}</th>' for h in header) + "</tr>" if header else ""
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i == 0 else ""}">{html.escape(str(v))}</td>' for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"


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
    return _img(figures / "lr_schedule.png", "learning-rate schedule")


def write_report(run_dir: Path, settings: Settings, log: Log) -> Path:
    """Write RUN_DIR/report.html (and the PNGs beside it in RUN_DIR/report/); return the page's path."""
    saved = load_model(run_dir)
    meta = saved.meta
    data = meta["data"]
    valid_spec = data["valid"] if data.get("valid") not in (None, "holdout", "valid split") else None
    dataset, valid, facts = train_and_valid(data["spec"], valid_spec, settings, log)
    valid = valid.with_classes(saved.classes)
    figures = Path(run_dir) / "report"
    figures.mkdir(parents=True, exist_ok=True)
    classes = saved.classes

    model_report = evaluate(saved, valid)
    baseline = PixelSimilarity.fit(dataset.train)
    baseline_report = accuracy_report(baseline.predict(valid.images), valid.labels, valid.classes)
    parts: list[str] = []
    name = meta["architecture"]["name"]
    parts.append(f"<h1>digitlab run: {html.escape(name)} on {html.escape(str(data['spec']))}</h1>")
    parts.append(
        f'<p class="big">accuracy {model_report["accuracy"]:.4f} on {model_report["n_valid"]:,} '
        f"validation images (pixel-similarity baseline: {baseline_report['accuracy']:.4f})</p>"
    )

    parts.append("<h2>Data</h2>")
    provenance = data.get("provenance", {})
    parts.append(
        _table(
            [
                ("training images", f"{len(dataset.train):,}"),
                ("validation images", f"{len(valid):,}"),
                ("validated on", facts.get("valid")),
                ("classes", ", ".join(classes)),
                *[(f"source: {k}", v) for k, v in provenance.items()],
            ]
        )
    )
    counts = [(c, f"{dataset.train.counts()[c]:,}", f"{valid.counts()[c]:,}") for c in classes]
    parts.append(_table(counts, ("class", "train", "valid")))
    plot_ideal_digits(baseline.ideals, classes, path=figures / "ideal_digits.png")
    parts.append(_img(figures / "ideal_digits.png", "ideal digits"))

    parts.append("<h2>Baseline against the model</h2>")
    rows = [(c, _fmt(baseline_report["per_class"][c]), _fmt(model_report["per_class"][c])) for c in classes]
    rows.append(("all", _fmt(baseline_report["accuracy"]), _fmt(model_report["accuracy"])))
    parts.append(_table(rows, ("class", "pixel similarity (L1)", name)))

    parts.append("<h2>Training</h2>")
    loss_name = evaluation.training_loss_name(meta, bool(meta.get("binary")))
    if meta.get("history"):
        training_plots.plot_loss_curves(meta["history"], path=figures / "loss_curves.png")
        parts.append(f'<p class="note">Losses are {html.escape(loss_name)}, the loss the model trained with.</p>')
        parts.append(_img(figures / "loss_curves.png", "loss curves"))
    parts.append(_schedule(meta.get("lr_schedule") or [], figures))

    parts.append("<h2>Errors</h2>")
    training_plots.plot_confusion_matrix(model_report["confusion"], classes, path=figures / "confusion_matrix.png")
    parts.append(_img(figures / "confusion_matrix.png", "confusion matrix"))
    items = training_plots.top_losses(saved.model, valid.images, valid.labels, meta, k=9)
    training_plots.plot_top_losses(items, valid.images, classes, path=figures / "top_losses.png")
    parts.append(
        f'<p class="note">The validation digits with the highest {html.escape(loss_name)} (the loss '
        "the model trained with, as in the curves above); each titled predicted/actual/loss/probability."
        "</p>"
    )
    parts.append(_img(figures / "top_losses.png", "top losses"))
    if name == "linear":
        parts.append("<h2>What the linear model looks for</h2>")
        training_plots.plot_linear_weights(saved.model, classes, path=figures / "weights.png")
        parts.append(_img(figures / "weights.png", "weight maps"))

    parts.append("<h2>Run</h2>")
    config = meta.get("config", {})
    parts.append(_table([(k, _fmt(v)) for k, v in config.items()], ("hyperparameter", "value")))
    versions = meta.get("versions", {})
    parts.append(
        _table(
            [
                ("seed", meta.get("seed")),
                ("fit seconds (validation included)", meta.get("fit_seconds")),
                ("processes", meta.get("world_size", 1)),
                ("weights sha256", meta.get("weights_sha256")),
                *[(f"{k} version", v) for k, v in versions.items()],
            ]
        )
    )
    parts.append(
        '<p class="note">Made by digitlab from the run folder; all images are embedded, the page needs no network.</p>'
    )
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>digitlab: {html.escape(name)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    out = Path(run_dir) / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
