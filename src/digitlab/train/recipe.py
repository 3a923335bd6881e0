"""`train()`: from digits to a trained, evaluated model, with one config for every knob.

The three models of the chapter share one path: images become float tensors once, targets
take the book's binary form (`mnist_loss`, 1 output, "is it the first class?") for the linear
model and simple_net on two classes, and class indices (`cross_entropy`) otherwise.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache, partial, update_wrapper
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch
from torch import nn

from ..artifacts.card import Architecture, ModelCard, Normalization
from ..artifacts.inference import to_inputs
from ..artifacts.serialization import SavedModel, save_model
from ..core.notebook import in_kernel
from ..core.progress import stderr_log
from ..core.startup import Startup
from ..core.threads import usable_cores
from ..data.digits import Digits
from ..errors import DigitlabError
from ..models import build_model
from ..reading.marks import marks
from ..reading.photographed import with_photos
from .accelerate import PRECISIONS, CompileCB, MixedPrecisionCB
from .augment import RandomAffineCB, ThickerPenCB
from .callback import Callback
from .callbacks import DeviceCB, DivergenceGuardCB, OneCycleCB, ProgressCB, RecorderCB
from .config import TrainConfig
from .cuda_graph import CudaGraphCB
from .dataloader import DataLoaders
from .device import resolve_device
from .distributed import DistEnv, DistributedCB
from .learner import Learner
from .losses import LossFunc, batch_accuracy, cross_entropy, mnist_loss, validate_targets
from .optim import SGD
from .outliers import MARKS, OutlierExposureCB
from .resume import TRAIN_STATE, CheckpointCB, ResumeCB, TrainState
from .thread_policy import ThreadPolicyCB
from .tta import TTACB

_T = TypeVar("_T")


def resolved_setting(config: TrainConfig, name: str, value: _T | None) -> _T:
    """A setting of a resolved config; None only for a model MODEL_DEFAULTS has no defaults for."""
    if value is None:
        raise DigitlabError(f"model {config.model!r} has no default {name}: set it (TrainConfig({name}=...))")
    return value


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def is_binary(model: str, n_classes: int) -> bool:
    """The book's form: one output and mnist_loss, for its first two models on two classes."""
    return n_classes == 2 and model in ("linear", "simple_net")


def normalization_for(config: TrainConfig, images: torch.Tensor) -> Normalization:
    """Pixels are /255 for every model; the CNN also standardises with the training set's stats."""
    if config.model != "cnn":
        return Normalization(scale=1 / 255, mean=0.0, std=1.0)
    floats = images.float() / 255
    return Normalization(scale=1 / 255, mean=round(floats.mean().item(), 6), std=round(floats.std().item(), 6))


def _unchecked(loss: Callable[..., torch.Tensor], **settings: Any) -> LossFunc:
    """`loss` without its per-batch check of the targets' values (build_learner checks them once), under its
    own name: the learner's loss_func is still `mnist_loss`, and a metric's column still `batch_accuracy`."""
    return update_wrapper(partial(loss, check_targets=False, **settings), loss)


def targets_for(labels: torch.Tensor, binary: bool) -> torch.Tensor:
    """Binary: (N, 1) float, 1. for the first class (the book's 3s); else (N,) int64 indices."""
    return (labels == 0).float().unsqueeze(1) if binary else labels


@dataclass
class TrainResult:
    learner: Learner
    config: TrainConfig
    binary: bool
    normalization: Normalization
    fit_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)  # RecorderCB.history
    startup: dict[str, float] = field(default_factory=dict)  # seconds before fit, by phase (digitlab.core.startup)

    def __repr__(self) -> str:
        """One line: model, epochs, final metrics and time (not the whole Learner)."""
        last = self.history[-1] if self.history else {}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k in ("valid_loss", "batch_accuracy"))
        return (
            f"TrainResult({self.config.model}, {len(self.history)} epochs, {shown or 'no epochs'}, "
            f"{self.fit_seconds:.1f} s)"
        )


class LearnerSetup(NamedTuple):
    """What `build_learner` made. A named tuple: `learn, config, binary, norm = build_learner(...)` works too."""

    learn: Learner
    config: TrainConfig  # resolved, with the device this process trains on
    binary: bool  # one output and mnist_loss (the book's form), else one output per class
    normalization: Normalization


@dataclass(frozen=True)
class TrainJob:
    """One fit: its settings, its digits and how it runs; what `build_learner` and `train` are given,
    and what `digitlab.jobs.train_run` passes on whole."""

    config: TrainConfig  # resolved or not: resolved once here, for len(train) digits
    train: Digits
    valid: Digits
    progress: bool = True  # the epoch table (stderr; HTML in Jupyter); only rank 0 shows it
    checkpoint_dir: Path | None = None  # the model and the fit's state saved there after every epoch (rank 0)
    dist_env: DistEnv = field(default_factory=DistEnv)  # this process's place in a torchrun job
    resume_from: Path | None = None  # a checkpoint's fit state (TRAIN_STATE) to continue from, in one process
    init: SavedModel | None = None  # a saved model to start from (fine-tuning): its weights and normalisation


def build_learner(
    config: TrainConfig, train_digits: Digits, valid_digits: Digits, progress: bool = True, **options: Any
) -> LearnerSetup:
    """The Learner `train` fits (also what `lr_find` probes), with the resolved config, binary and
    normalization. options: the rest of TrainJob's (checkpoint_dir, dist_env, resume_from, init).

    With `dist_env` of several processes, this rank trains on its shard of every epoch, inside
    DistributedDataParallel, and only rank 0 shows progress. A checkpoint is loadable by `evaluate`,
    with the fit's whole state beside it (`digitlab.train.resume.TRAIN_STATE`).
    """
    return learner_for(TrainJob(config, train_digits, valid_digits, progress, **options))


def learner_for(job: TrainJob) -> LearnerSetup:
    """`build_learner` for a job."""
    dist_env = job.dist_env
    state = TrainState(job.resume_from) if job.resume_from is not None else None  # a bad file fails first
    if state is not None and dist_env.enabled:
        raise DigitlabError("resuming a run is done in one process (not under torchrun)")
    config = _ready(job.config, len(job.train), dist_env)
    seed_everything(config.seed)
    classes = job.train.classes
    binary = is_binary(config.model, len(classes))
    extra = {"width": config.width} if config.model == "cnn" else {}
    model = build_model(config.model, n_out=1 if binary else len(classes), **extra)
    init = job.init
    norm = normalization_for(config, job.train.images) if init is None else start_from(model, binary, init)
    dls = _loaders(config, _photos(config, job, dist_env), job.valid, norm, binary, dist_env)
    loss_func: LossFunc = (
        _unchecked(mnist_loss)
        if binary
        else _unchecked(
            cross_entropy, label_smoothing=resolved_setting(config, "label_smoothing", config.label_smoothing)
        )
    )
    cbs = _callbacks(config, dist_env, job.progress) + _marks_callbacks(config, norm, binary, dist_env)
    checkpoint_dir = job.checkpoint_dir
    if checkpoint_dir is not None and dist_env.is_main:
        card = ModelCard(Architecture.of(model), classes, binary, norm, config=asdict(config), checkpoint=True)
        cbs.append(
            CheckpointCB(
                lambda model, epoch: save_model(copy.deepcopy(model).cpu(), checkpoint_dir, replace(card, epoch=epoch)),
                state_path=checkpoint_dir / TRAIN_STATE,
            )
        )
    if state is not None:
        cbs.append(ResumeCB(state))
    opt_func = partial(
        SGD, mom=resolved_setting(config, "mom", config.mom), wd=resolved_setting(config, "wd", config.wd)
    )
    learn = Learner(
        dls,
        model,
        loss_func,
        opt_func=opt_func,
        lr=resolved_setting(config, "lr", config.lr),
        metrics=[_unchecked(batch_accuracy)],
        cbs=cbs,
        default_cbs=False,
    )  # the CLI chooses its progress (stderr, --quiet)
    return LearnerSetup(learn, config, binary, norm)


def _ready(config: TrainConfig, n_train: int, dist_env: DistEnv) -> TrainConfig:
    """The config resolved for `n_train` digits and this process's device; torch's threads set."""
    if not config.is_resolved:
        config = config.resolved(n_train)
    config = replace(config, device=dist_env.device(resolve_device(config.device)))  # checked again, resolved
    if isinstance(config.threads, int):
        torch.set_num_threads(config.threads)
    return config


# The training digits last photographed, with the share and seed, and the digits with their crops (one entry at
# most): a notebook that builds a learner on the same Digits again (a cell run twice, `build_learner` to look,
# then `train`) photographs them once (minutes), as _marks_pool draws its marks once.
_last_photos: list[tuple[Digits, float, int, Digits]] = []


def _photos(config: TrainConfig, job: TrainJob, dist_env: DistEnv) -> Digits:
    """The training digits, and crops of photos of `config.photos` of them (the epoch budget was set without
    them: they are more of the same digits, not more data). The same crops on every rank and on resuming."""
    if not config.photos:
        return job.train
    for train, share, seed, digits in _last_photos:
        if train is job.train and (share, seed) == (config.photos, config.seed):  # `is`: Digits hold tensors
            return digits
    say = stderr_log if job.progress and dist_env.is_main else None
    if say is not None:
        n = round(config.photos * len(job.train))
        say(f"photographing {n:,} training digits as `predict` sees them (--photos {config.photos:g})")
    # each thread takes the next chunk when done and waits for no other (no barrier, unlike OpenMP's): all the
    # usable cores, busy or not, unless --threads says
    threads = config.threads if isinstance(config.threads, int) else usable_cores()
    digits = with_photos(job.train, config.photos, config.seed, say, threads)
    _last_photos[:] = [(job.train, config.photos, config.seed, digits)]
    return digits


def _loaders(
    config: TrainConfig, train: Digits, valid: Digits, norm: Normalization, binary: bool, dist_env: DistEnv
) -> DataLoaders:
    """The digits as model inputs and targets on the device, batched (this rank's shard of each epoch)."""
    dls = DataLoaders.from_tensors(
        to_inputs(train.images, norm, config.device),
        targets_for(train.labels, binary).to(config.device),
        to_inputs(valid.images, norm, config.device),
        targets_for(valid.labels, binary).to(config.device),
        batch_size=resolved_setting(config, "bs", config.bs),
        seed=config.seed,
        device=config.device,
        shard=(dist_env.rank, dist_env.world_size),
    )
    for dl in (dls.train, dls.valid):  # once here, so that no batch reads its targets on the host (a GPU's wait)
        validate_targets(dl.dataset[1], 1 if binary else len(train.classes))
    return dls


def _callbacks(config: TrainConfig, dist_env: DistEnv, progress: bool) -> list[Callback]:
    """The recipe's callbacks, as the config asks (checkpoints and resuming are added by build_learner)."""
    cbs: list[Callback] = [DeviceCB(config.device), RecorderCB(), DivergenceGuardCB()]
    if config.threads == "auto":
        cbs.append(ThreadPolicyCB())
    if dist_env.enabled:
        cbs.append(DistributedCB())
    if progress and dist_env.is_main:
        cbs.append(ProgressCB(html=in_kernel()))  # stderr text for the CLI, even on a pipe; HTML in Jupyter
    if config.one_cycle:
        cbs.append(OneCycleCB())
    if config.augment:
        cbs.append(RandomAffineCB(seed=config.seed + dist_env.rank))  # each rank its own warps
    autocast_dtype = PRECISIONS[config.precision]
    if autocast_dtype is not None:
        cbs.append(MixedPrecisionCB(autocast_dtype))
    if config.compile:
        cbs.append(CompileCB())
    if config.tta:
        cbs.append(TTACB())
    if config.cuda_graphs != "off":
        # on CUDA where it applies; off CUDA, auto is the eager step. Rank 0 alone says why it does not apply
        quiet = None if dist_env.is_main else (lambda message: None)
        cbs.append(CudaGraphCB(config.cuda_graphs, say=quiet))
    return cbs


def _marks_callbacks(config: TrainConfig, norm: Normalization, binary: bool, dist_env: DistEnv) -> list[Callback]:
    """The CNN recipe's thicker pens and marks that are not digits (train.augment, train.outliers)."""
    cbs: list[Callback] = []
    seed = config.seed + dist_env.rank  # each rank its own draws, as RandomAffineCB's
    if config.thicken:
        cbs.append(ThickerPenCB(config.thicken, seed=seed))
    if config.outliers:
        if binary:
            raise DigitlabError(
                f"--outliers: {config.model} on two classes has one output (the book's mnist_loss), and marks "
                "that are not digits need one output per class: use --outliers 0, or the CNN"
            )
        pool = to_inputs(_marks_pool(config.seed), norm, config.device)
        cbs.append(OutlierExposureCB(pool, config.outliers, seed=seed))
    return cbs


@lru_cache(maxsize=2)
def _marks_pool(seed: int) -> torch.Tensor:
    """The MARKS marks of a seed, (MARKS, 28, 28) uint8, drawn once per process (about a second): `--lr-find`'s
    trial and the fit after it, or a notebook's runs, share them. Read only (`to_inputs` copies)."""
    return marks(MARKS, seed=seed)


def start_from(model: nn.Module, binary: bool, init: SavedModel) -> Normalization:
    """Fine-tuning: a saved model's weights, loaded into a model built alike; returns its normalisation."""
    built, saved = Architecture.of(model), init.card.architecture
    if built != saved or binary != init.card.binary:
        raise DigitlabError(f"cannot start from a model {saved.as_dict()}: this run builds {built.as_dict()}")
    model.load_state_dict(init.model.state_dict())
    return init.card.normalization


def train(
    config: TrainConfig, train_digits: Digits, valid_digits: Digits, progress: bool = True, **options: Any
) -> TrainResult:
    """Fit `config.model` on train_digits, validating each epoch on valid_digits. options: the rest of
    TrainJob's (checkpoint_dir, dist_env, resume_from, init).

    resume_from: a checkpoint's saved fit state; the fit goes on from the epoch after it and ends
    with the weights an uninterrupted fit would have.
    """
    return fit(TrainJob(config, train_digits, valid_digits, progress, **options))


def fit(job: TrainJob) -> TrainResult:
    """`train` for a job: CUDA started, the Learner built, the fit timed apart from what came before."""
    clock = Startup()
    if resolve_device(job.config.device).startswith("cuda"):
        torch.cuda.init()
        clock.mark("start CUDA")
    learn, config, binary, norm = learner_for(job)
    clock.mark("build the learner")  # the model, the data on the device, the callbacks
    started = time.perf_counter()
    learn.fit(resolved_setting(config, "epochs", config.epochs))
    fit_seconds = time.perf_counter() - started
    return TrainResult(learn, config, binary, norm, fit_seconds, learn.recorder.history, clock.phases)
