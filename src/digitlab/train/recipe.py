"""`train()`: from digits to a trained, evaluated model, with one config for every knob.

The three models of the chapter share one path: images become float tensors once, targets
take the book's binary form (`mnist_loss`, 1 output, "is it the first class?") for the linear
model and simple_net on two classes, and class indices (`cross_entropy`) otherwise.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial, update_wrapper
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch
from torch import nn

from ..artifacts.card import Architecture, ModelCard, Normalization
from ..artifacts.inference import to_inputs
from ..artifacts.serialization import SavedModel, save_model
from ..core.defaults import DEVICE_RECIPES, MODEL_DEFAULTS, PRECISION_NAMES, REFUSED_PRECISIONS, SEED
from ..core.notebook import in_kernel
from ..core.startup import Startup
from ..data.digits import Digits
from ..errors import DigitlabError
from ..models import build_model
from .accelerate import PRECISIONS, CompileCB, MixedPrecisionCB
from .augment import RandomAffineCB
from .callback import Callback
from .callbacks import DeviceCB, DivergenceGuardCB, OneCycleCB, ProgressCB, RecorderCB
from .cuda_graph import CudaGraphCB, check_mode
from .dataloader import DataLoaders
from .distributed import DistEnv, DistributedCB
from .learner import Learner
from .losses import LossFunc, batch_accuracy, cross_entropy, mnist_loss, validate_targets
from .optim import SGD
from .resume import TRAIN_STATE, CheckpointCB, ResumeCB, TrainState
from .thread_policy import ThreadPolicyCB
from .tta import TTACB


@dataclass
class TrainConfig:
    """Every hyperparameter of a run. None means "the model's default" (see MODEL_DEFAULTS)."""

    model: str = "linear"  # linear | simple_net | cnn
    epochs: int | None = None  # passes over the training data (default: see default_epochs)
    lr: float | None = None  # learning rate (the peak one with one_cycle)
    bs: int | None = None  # batch size (the book's 256; the CNN learns more per second at 64)
    seed: int = SEED  # seeds torch, numpy, random, the loader's shuffles and augmentation
    mom: float | None = None  # SGD momentum (0: the book's plain SGD)
    wd: float | None = None  # weight decay
    one_cycle: bool | None = None  # warm up then anneal the lr (fastai's fit_one_cycle)
    augment: bool | None = None  # random shifts/rotations/scalings of training images
    label_smoothing: float | None = None  # cross-entropy only: soften the one-hot targets
    width: int | None = None  # cnn only: channels of the first stage
    device: str = "cpu"  # cpu | cuda | mps | auto (the best available)
    threads: int | str | None = "auto"  # a number; "auto": the free cores, per epoch; None: torch's default
    precision: str = "fp32"  # fp32 | bf16 (autocast: for CUDA tensor cores; slower on most CPUs)
    compile: bool = False  # torch.compile the model (first batches pay the compile time)
    tta: bool = False  # validate (and evaluate) with test-time augmentation: 5 shifted copies
    cuda_graphs: str = "auto"  # auto | on | off: the training step as one CUDA graph (CUDA only; see cuda_graph.py)
    recipe: str | None = None  # whose defaults filled the gaps: "cpu" or "cuda" (DEVICE_RECIPES); set by resolved()

    def __post_init__(self) -> None:
        """Each setting checked here, once, whoever makes the config (the CLI, a notebook, `replace`)."""
        if self.precision in REFUSED_PRECISIONS:
            raise DigitlabError(f"--precision {self.precision}: {REFUSED_PRECISIONS[self.precision]}")
        if self.precision not in PRECISION_NAMES:
            raise DigitlabError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISION_NAMES)}")
        number = isinstance(self.threads, int) and not isinstance(self.threads, bool)
        if not (number or self.threads in (None, "auto")):
            raise DigitlabError(f"threads must be a number or 'auto', got {self.threads!r}")
        check_mode(self.cuda_graphs, self.device if self.device != "auto" else "cuda")  # auto: checked once resolved

    @property
    def is_resolved(self) -> bool:
        """No setting left to a default: what `resolved` returns."""
        defaults = MODEL_DEFAULTS.get(self.model, {})
        return self.bs is not None and self.epochs is not None and all(getattr(self, k) is not None for k in defaults)

    def resolved(self, n_train: int) -> TrainConfig:
        """A copy with every None replaced by the model's default (epochs depend on n_train).

        Resolve once, where the data is known (the CLI does, to say what it will train); a resolved
        config is returned as it is.
        """
        recipe = recipe_for(self.device)
        if self.is_resolved:
            return self if self.recipe is not None else replace(self, recipe=recipe)
        defaults = {**MODEL_DEFAULTS.get(self.model, {}), **DEVICE_RECIPES.get(recipe, {}).get(self.model, {})}
        values: dict[str, Any] = {
            k: (defaults.get(k) if v is None and k in defaults else v) for k, v in asdict(self).items()
        }
        if values["bs"] is None:
            values["bs"] = BOOK_BS
        if self.epochs is None:
            values["epochs"] = default_epochs(self.model, n_train, values["bs"], recipe)
        values["recipe"] = recipe
        return TrainConfig(**values)


def recipe_for(device: str) -> str:
    """Which DEVICE_RECIPES entry a run on `device` takes: "cuda" on a CUDA device, else "cpu"."""
    return "cuda" if resolve_device(device).startswith("cuda") else "cpu"


# The book trains linear for 20 epochs and simple_net for 40 on MNIST_SAMPLE's 12,396 images:
# 49 batches of 256 per epoch, so 980 and 1,960 SGD steps. The default reproduces those steps,
# which is exactly 20 / 40 epochs on MNIST_SAMPLE and more epochs on a smaller set (the
# offline mirror's 2,102 3s and 7s take 109 / 218 epochs for the same amount of training).
BOOK_TRAIN_IMAGES, BOOK_BS = 12_396, 256
BOOK_EPOCHS = {"linear": 20, "simple_net": 40}


# The CNN's 8 epochs were measured on up to 10,000 training digits (the mirror: 0.9912 on all ten):
# 80,000 images seen. A larger set reaches the same accuracy in fewer passes (the full 60,000: 0.992
# after one epoch, 0.9944-0.9952 after two; BENCHMARKS.md), so the budget is at least that many
# images, in whole epochs, at most 8.
CNN_IMAGES = 80_000


def default_epochs(model: str, n_train: int, bs: int, recipe: str = "cpu") -> int:
    """The book's number of SGD steps in epochs of this data, for linear and simple_net; otherwise the
    recipe's epochs (the CNN on the CPU: 8, fewer on a set larger than 10,000 digits, CNN_IMAGES)."""
    if model not in BOOK_EPOCHS:
        defaults = {**MODEL_DEFAULTS.get(model, {}), **DEVICE_RECIPES.get(recipe, {}).get(model, {})}
        epochs: int = defaults.get("epochs", 1)
        if model == "cnn" and recipe == "cpu":
            epochs = min(epochs, max(1, math.ceil(CNN_IMAGES / max(n_train, 1))))
        return epochs
    book_steps = BOOK_EPOCHS[model] * math.ceil(BOOK_TRAIN_IMAGES / BOOK_BS)
    return max(1, math.ceil(book_steps / math.ceil(max(n_train, 1) / bs)))


_T = TypeVar("_T")


def _setting(config: TrainConfig, name: str, value: _T | None) -> _T:
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


def resolve_device(requested: str) -> str:
    """'auto' -> cuda, else mps, else cpu; an explicit device that is not there is an error."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (requested.startswith("cuda") and not cuda) or (requested == "mps" and not mps):
        raise DigitlabError(f"device {requested!r} is not available here (try --device auto or cpu)")
    return requested


class LearnerSetup(NamedTuple):
    """What `build_learner` made. A named tuple: `learn, config, binary, norm = build_learner(...)` works too."""

    learn: Learner
    config: TrainConfig  # resolved, with the device this process trains on
    binary: bool  # one output and mnist_loss (the book's form), else one output per class
    normalization: Normalization


def build_learner(
    config: TrainConfig,
    train_digits: Digits,
    valid_digits: Digits,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
    dist_env: DistEnv | None = None,
    resume_from: Path | None = None,
    init: SavedModel | None = None,
) -> LearnerSetup:
    """The Learner `train` fits (also what `lr_find` probes), with the resolved config, binary and normalization.

    With `dist_env` of several processes, this rank trains on its shard of every epoch, inside
    DistributedDataParallel, and only rank 0 shows progress.
    checkpoint_dir: save the model there after every epoch (rank 0 only), loadable by `evaluate`,
    with the fit's whole state beside it (`digitlab.train.resume.TRAIN_STATE`).
    resume_from: a saved fit state (a checkpoint's TRAIN_STATE) to continue from, in one process.
    init: a saved model to start from (fine-tuning): its weights and its normalisation.
    """
    dist_env = dist_env or DistEnv()
    state = TrainState(resume_from) if resume_from is not None else None  # a bad file fails before any work
    if state is not None and dist_env.enabled:
        raise DigitlabError("resuming a run is done in one process (not under torchrun)")
    config = _ready(config, len(train_digits), dist_env)
    seed_everything(config.seed)
    classes = train_digits.classes
    binary = is_binary(config.model, len(classes))
    extra = {"width": config.width} if config.model == "cnn" else {}
    model = build_model(config.model, n_out=1 if binary else len(classes), **extra)
    norm = normalization_for(config, train_digits.images) if init is None else start_from(model, binary, init)
    dls = _loaders(config, train_digits, valid_digits, norm, binary, dist_env)
    loss_func: LossFunc = (
        _unchecked(mnist_loss)
        if binary
        else _unchecked(cross_entropy, label_smoothing=_setting(config, "label_smoothing", config.label_smoothing))
    )
    cbs = _callbacks(config, dist_env, progress)
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
    opt_func = partial(SGD, mom=_setting(config, "mom", config.mom), wd=_setting(config, "wd", config.wd))
    learn = Learner(
        dls,
        model,
        loss_func,
        opt_func=opt_func,
        lr=_setting(config, "lr", config.lr),
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


def _loaders(
    config: TrainConfig, train: Digits, valid: Digits, norm: Normalization, binary: bool, dist_env: DistEnv
) -> DataLoaders:
    """The digits as model inputs and targets on the device, batched (this rank's shard of each epoch)."""
    dls = DataLoaders.from_tensors(
        to_inputs(train.images, norm, config.device),
        targets_for(train.labels, binary).to(config.device),
        to_inputs(valid.images, norm, config.device),
        targets_for(valid.labels, binary).to(config.device),
        batch_size=_setting(config, "bs", config.bs),
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


def start_from(model: nn.Module, binary: bool, init: SavedModel) -> Normalization:
    """Fine-tuning: a saved model's weights, loaded into a model built alike; returns its normalisation."""
    built, saved = Architecture.of(model), init.card.architecture
    if built != saved or binary != init.card.binary:
        raise DigitlabError(f"cannot start from a model {saved.as_dict()}: this run builds {built.as_dict()}")
    model.load_state_dict(init.model.state_dict())
    return init.card.normalization


def train(
    config: TrainConfig,
    train_digits: Digits,
    valid_digits: Digits,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
    dist_env: DistEnv | None = None,
    resume_from: Path | None = None,
    init: SavedModel | None = None,
) -> TrainResult:
    """Fit `config.model` on train_digits, validating each epoch on valid_digits.

    resume_from: a checkpoint's saved fit state; the fit goes on from the epoch after it and ends
    with the weights an uninterrupted fit would have.
    """
    clock = Startup()
    if resolve_device(config.device).startswith("cuda"):
        torch.cuda.init()
        clock.mark("start CUDA")
    learn, config, binary, norm = build_learner(
        config, train_digits, valid_digits, progress, checkpoint_dir, dist_env, resume_from, init
    )
    clock.mark("build the learner")  # the model, the data on the device, the callbacks
    started = time.perf_counter()
    learn.fit(_setting(config, "epochs", config.epochs))
    fit_seconds = time.perf_counter() - started
    return TrainResult(learn, config, binary, norm, fit_seconds, learn.recorder.history, clock.phases)
