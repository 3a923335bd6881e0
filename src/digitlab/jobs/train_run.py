"""One training run as a job: train on digits, evaluate, save the run folder; `RunResult` says what happened.

`train_run` takes the digits already loaded (the caller loads them once) and prints nothing:
the CLI (`digitlab train`, `digitlab demo`) says what is going on and formats the result.
The run folder holds everything `digitlab report` shows, so a report needs neither the data
nor the working directory the run was trained from:
  model.safetensors, model.json  the model and its card (evaluation and baseline scores included)
  ideal_digits.safetensors       the baseline's mean digits of the training data (also "not a digit", `predict.abstain`)
  top_losses.safetensors         the validation digits with the highest loss
  abstain.safetensors            the training digits' feature statistics ("not a digit", `predict.abstain`)
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..artifacts.card import Architecture, BaselineScores, DataInfo, Metrics, ModelCard
from ..artifacts.metrics import accuracy_report
from ..artifacts.serialization import save_ideal_digits, save_model, save_top_losses, state_sha256
from ..baseline import PixelSimilarity, ideal_digits
from ..data.digits import Digits
from ..predict.abstain import calibrate_model
from ..predict.predictor import Predictor
from ..train import distributed
from ..train.config import TrainConfig
from ..train.device import resolve_device
from ..train.distributed import DistEnv
from ..train.learner import Learner
from ..train.recipe import TrainJob, TrainResult, fit

TOP_LOSSES_KEPT = 9  # the report's 3x3 grid


@dataclass(frozen=True)
class DataSource:
    """Where a run's digits came from, as the card records it (the digits themselves are passed apart)."""

    spec: str = ""  # the data as the user named it: a dataset name or a path, as typed
    provenance: dict[str, Any] = field(default_factory=dict)  # DigitDataset.provenance
    valid: str | None = None  # "holdout", "valid split", or the validation set as named


@dataclass
class RunResult:
    """What one training run did. On a torchrun rank other than 0 only training facts are set."""

    config: TrainConfig  # resolved, with the device trained on
    history: list[dict[str, float]]  # RecorderCB.history, one row per epoch
    fit_seconds: float  # training and validation inside learn.fit
    weights_sha256: str  # equal on every rank after distributed training
    rank: int
    world_size: int
    threads: int  # torch's CPU threads (at the end)
    compile_seconds: float | None  # with --compile: seconds of the batches that compiled
    learner: Learner
    startup: dict[str, float] = field(default_factory=dict)  # seconds inside the run before fit, by phase
    threads_why: str | None = None  # --threads auto: each choice and its reading
    cuda_graphs: str = "eager: --cuda-graphs off"  # CudaGraphCB.status: "graphed..." or "eager: <why>"
    card: ModelCard | None = None  # rank 0: the saved model's card
    model_path: Path | None = None  # rank 0: the weights' path
    evaluation: dict[str, Any] | None = None  # rank 0: metrics.accuracy_report on the validation digits

    @property
    def is_main(self) -> bool:
        return self.card is not None

    @property
    def run_dir(self) -> Path | None:
        return self.model_path.parent if self.model_path is not None else None


def default_out_dir(data: str, model: str) -> Path:
    stem = Path(data).name or "data"
    return Path("runs") / f"{stem}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def _subsample(values: list[float], at_most: int) -> list[float]:
    """Every k-th value so that at most `at_most` remain (a schedule for a plot, not a log)."""
    step = max(1, -(-len(values) // at_most))
    return [float(v) for v in values[::step]]


def weights_sha256(model: torch.nn.Module) -> str:
    """A fingerprint of the weights: equal on every rank after distributed training."""
    return state_sha256(model.state_dict())


def train_run(job: TrainJob, out: Path, source: DataSource | None = None) -> RunResult:
    """Train, evaluate and save one run to `out` (rank 0 only); everything `digitlab train` does but talk.

    job: the fit (`digitlab.train.recipe.TrainJob`: the config, resolved or not, the digits, progress,
    checkpoints to OUT/checkpoint (overwritten each epoch, loadable by `digitlab evaluate` while training
    goes on or after it was interrupted), the torchrun rank, a state to resume, a model to start from).
    source: where the digits came from, for the card and the report.
    """
    try:
        distributed.init(job.dist_env, resolve_device(job.config.device))
        return _train_run(job, out, source or DataSource())
    finally:
        distributed.shutdown()


def _train_run(job: TrainJob, out: Path, source: DataSource) -> RunResult:
    trained = fit(job)
    result = _result(trained, job.dist_env)
    if job.dist_env.is_main:  # the other processes of a distributed fit save nothing
        card = _card(trained, result, job.train.classes)
        _evaluate_and_save(result, trained, card, job.train, job.valid, source, out)
    return result


def _result(trained: TrainResult, dist_env: DistEnv) -> RunResult:
    """What the fit gave, before anything is saved: the history, timings, the threads and CUDA graphs used."""
    model, config = trained.learner.model, trained.config
    result = RunResult(
        config=config,
        history=trained.history,
        fit_seconds=round(trained.fit_seconds, 4),
        weights_sha256=weights_sha256(model),
        rank=dist_env.rank,
        world_size=dist_env.world_size,
        threads=torch.get_num_threads(),
        compile_seconds=_compile_seconds(trained.learner),
        learner=trained.learner,
        startup=trained.startup,
    )
    policy = getattr(trained.learner, "thread_policy", None)
    if policy is not None:
        result.threads_why = policy.why
    graph = getattr(trained.learner, "cuda_graph", None)
    if graph is not None:
        result.cuda_graphs = graph.status
    return result


def _card(trained: TrainResult, result: RunResult, classes: tuple[str, ...]) -> ModelCard:
    """The model's card as trained (the evaluation, the data and the abstention are added after)."""
    config = trained.config
    return ModelCard(
        architecture=Architecture.of(trained.learner.model),
        classes=classes,
        binary=trained.binary,
        normalization=trained.normalization,
        config=asdict(config),
        history=trained.history,
        lr_schedule=_subsample(trained.learner.recorder.lrs, 1000),
        fit_seconds=result.fit_seconds,
        weights_sha256=result.weights_sha256,
        world_size=result.world_size,
        versions={"digitlab": __version__, "torch": torch.__version__, "python": platform.python_version()},
    )


def _evaluate_and_save(
    result: RunResult,
    trained: TrainResult,
    card: ModelCard,
    train_digits: Digits,
    valid_digits: Digits,
    source: DataSource,
    out: Path,
) -> None:
    """Score the model and the baseline on the validation digits, calibrate abstention, save the run's files."""
    model, config, classes = trained.learner.model, trained.config, train_digits.classes
    # one pass over the validation digits gives the evaluation and the top losses
    predictor = Predictor(model, card, config.device, tta=config.tta)
    outputs = predictor.outputs(valid_digits.images)
    evaluation = predictor.evaluate(valid_digits, outputs)
    top = predictor.top_losses(valid_digits, TOP_LOSSES_KEPT, outputs)
    ideals = ideal_digits(train_digits)
    baseline = PixelSimilarity(ideals, classes)  # as `digitlab baseline` (L1), from the ideals saved below
    baseline_report = accuracy_report(baseline.predict(valid_digits.images), valid_digits.labels, classes)
    card = replace(
        card,
        data=DataInfo(
            spec=source.spec,
            provenance=source.provenance,
            valid=source.valid,
            n_train=len(train_digits),
            n_valid=len(valid_digits),
            train_counts=train_digits.counts(),
            valid_counts=valid_digits.counts(),
        ),
        metrics=Metrics(**_scores(evaluation), tta=config.tta),
        baseline=BaselineScores(**_scores(baseline_report), metric=baseline.metric),
    )
    out.mkdir(parents=True, exist_ok=True)
    abstain = calibrate_model(model, card, train_digits, valid_digits, out, ideals, config.device)
    card = replace(card, abstain=abstain)
    model_path = save_model(model.cpu(), out, card)
    save_ideal_digits(model_path.parent, ideals)
    save_top_losses(model_path.parent, top)
    result.card, result.model_path, result.evaluation = card, model_path, evaluation


def _scores(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in ("accuracy", "per_class", "n_valid", "confusion")}


def _compile_seconds(learner: Learner) -> float | None:
    """Seconds of the batches that compiled (each new batch shape and mode); None without --compile."""
    compiler = getattr(learner, "compiler", None)
    return round(compiler.compile_seconds, 4) if compiler is not None else None
