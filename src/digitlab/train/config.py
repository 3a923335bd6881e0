"""`TrainConfig`: every setting of a training run, each defined once here: its default, its check and
its help text. `digitlab train`'s flags are made from these fields (`flag_specs`), so a setting goes
flag -> TrainConfig -> `resolved` (once the data is known) -> the Learner -> the model card.

No torch here: `digitlab train --help` reads these fields without loading it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..core.defaults import (
    CUDA_GRAPH_MODES,
    DEVICE_RECIPES,
    MODEL_DEFAULTS,
    PRECISION_NAMES,
    REFUSED_PRECISIONS,
    SEED,
    TRAIN_MODELS,
)
from ..core.threads import affinity_cores
from ..errors import DigitlabError, check_range

# Bounds of the numeric settings: far past any sensible run, short of what overflows torch or the OS
MAX_EPOCHS = 100_000
MAX_BS = 2**24
MAX_LR = 1e3  # the finder's range ends at 10; the divergence guard stops far smaller rates
MAX_OUTLIERS = 10.0  # the marks' loss against the digits' (0.1 by default): past 10 the digits hardly count
MAX_SEED = 2**63 - 1  # torch takes 64 bits; the seed of augmentation adds the rank


def setting(default: Any, help: str, kind: Any = None, choices: tuple[str, ...] = (), flag: bool = True) -> Any:
    """A TrainConfig field with what its `digitlab train` flag shows: kind (int, float, bool, or a parser
    of the text), choices; flag=False: a setting of the library and the recipe only."""
    return field(default=default, metadata={"help": help, "kind": kind, "choices": choices, "flag": flag})


THREADS_HELP = (
    "torch CPU threads: auto (the default): the cores not busy with other work, looked at again between "
    "epochs, so a busy machine does not stall every step (--json says what was chosen and why; the CNN's "
    "numbers depend on the thread count); or a number, for runs to compare exactly. OMP_NUM_THREADS, when "
    "set, is what auto chooses"
)


def threads_value(text: str) -> int | str:
    """--threads: a whole number or "auto"."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"a number of threads or auto, not {text!r}") from None


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of a run. None means "the model's default" (see MODEL_DEFAULTS)."""

    model: str = setting(
        "linear",
        "which model (default: linear; with --init, its own); line-reader: a reader of whole lines of digits, "
        "for `predict --number --lines` beside a digit model",
        choices=TRAIN_MODELS,
    )
    epochs: int | None = setting(None, "passes over the training data (default: the model's; see below)", int)
    lr: float | None = setting(None, "learning rate, the peak one with one_cycle (default: the model's)", float)
    bs: int | None = setting(None, "batch size (default: the model's: the book's 256, the CNN's 64)", int)
    seed: int = setting(SEED, f"seeds torch, numpy, random, shuffles and augmentation (default: {SEED})", int)
    mom: float | None = setting(None, "SGD momentum (0: the book's plain SGD)", flag=False)
    wd: float | None = setting(None, "weight decay", flag=False)
    one_cycle: bool | None = setting(None, "warm up then anneal the lr (fastai's fit_one_cycle)", flag=False)
    augment: bool | None = setting(None, "random shifts, rotations, scalings of training images", flag=False)
    label_smoothing: float | None = setting(None, "cross-entropy only: soften the one-hot targets", flag=False)
    width: int | None = setting(None, "cnn only: channels of the first stage", flag=False)
    outliers: float | None = setting(
        None,
        "weight of the loss that shows the model letters, symbols and scribbles as none of its classes, so "
        'that it declines them ("this does not look like a digit"); 0: off (default: the CNN\'s 0.1 on the '
        "CPU; 0 for the book's models)",
        float,
    )
    thicken: float | None = setting(
        None,
        "share of training digits drawn with a thicker pen, as markers and photos draw them; 0: none (default: "
        "the CNN's 0.2 on the CPU; 0 for the book's models)",
        float,
    )
    photos: float = setting(
        0.0,
        "share of the training digits also learned as `predict --number` sees them in a photo: each photographed "
        "(pen, light, blur, noise, JPEG) and cut out again, which reads photographed numbers better; costs "
        "15-25 ms a digit before training, on --threads threads (0.25 of 60,000: about 4 minutes on 2 cores); "
        "0: none (the default)",
        float,
    )
    device: str = setting("cpu", "to train")  # cpu | cuda | cuda:N | mps | auto (the best available)
    threads: int | str | None = setting("auto", THREADS_HELP, threads_value)  # None: torch's own default
    precision: str = setting(
        "fp32",
        "bf16: the forward pass under bfloat16 autocast, for CUDA tensor cores (many times slower on CPUs "
        "without bf16 instructions; default: fp32); fp16 is refused (it needs loss scaling)",
        choices=(*PRECISION_NAMES, *REFUSED_PRECISIONS),
    )
    compile: bool = setting(
        False,
        "torch.compile the model, for long CUDA runs: the compile (about a minute) is reported apart as "
        "compile_seconds; on a small CPU it does not pay (BENCHMARKS.md)",
        bool,
    )
    tta: bool = setting(
        False,
        "validate (and report the final accuracy) with test-time augmentation: the mean over the image and "
        "its 4 one-pixel shifts",
        bool,
    )
    cuda_graphs: str = setting(
        "auto",
        "the training step (forward, loss, backward, SGD) as one CUDA graph, replayed: auto uses it on CUDA "
        "where it applies and says why not where it does not; on: that is an error; off: the eager step "
        "(default: auto)",
        choices=CUDA_GRAPH_MODES,
    )
    recipe: str | None = setting(None, "whose defaults filled the gaps: cpu or cuda; set by resolved()", flag=False)

    def __post_init__(self) -> None:
        """Each setting checked here, once, whoever makes the config (the CLI, a notebook, `replace`)."""
        for f in fields(self):
            choices = f.metadata["choices"]
            if choices and getattr(self, f.name) not in choices:
                what = f.name.replace("_", " ")
                raise DigitlabError(f"unknown {what} {getattr(self, f.name)!r}; choose one of {', '.join(choices)}")
        if self.precision in REFUSED_PRECISIONS:
            raise DigitlabError(f"--precision {self.precision}: {REFUSED_PRECISIONS[self.precision]}")
        check_range("--epochs", self.epochs, 1, MAX_EPOCHS)
        check_range("--bs", self.bs, 1, MAX_BS)
        check_range("--seed", self.seed, 0, MAX_SEED)
        check_range("--outliers", self.outliers, 0, MAX_OUTLIERS)
        check_range("--thicken", self.thicken, 0, 1)
        check_range("--photos", self.photos, 0, 1)
        if self.lr is not None and not (math.isfinite(self.lr) and 0 < self.lr <= MAX_LR):
            raise DigitlabError(f"--lr must be a positive number at most {MAX_LR:g}, got {self.lr}")
        if not (self.threads in (None, "auto") or _is_int(self.threads)):
            raise DigitlabError(f"threads must be a number or 'auto', got {self.threads!r}")
        if isinstance(self.threads, int):
            check_range("--threads", self.threads, 1, affinity_cores(), "(the cores this process may use)")
        if self.cuda_graphs == "on" and self.device in ("cpu", "mps"):  # auto and cuda: checked once resolved
            raise DigitlabError(f"--cuda-graphs on: the run is on {self.device}, and CUDA graphs are CUDA's")

    @property
    def is_resolved(self) -> bool:
        """No setting left to a default: what `resolved` returns."""
        defaults = MODEL_DEFAULTS.get(self.model, {})
        return self.bs is not None and self.epochs is not None and all(getattr(self, k) is not None for k in defaults)

    def resolved(self, n_train: int) -> TrainConfig:
        """A copy with every None replaced by the model's default (epochs depend on n_train), and the
        recipe named. Resolve once, where the data is known; a resolved config is returned as it is."""
        from .device import recipe_for  # torch: only once there is a run to resolve

        recipe = recipe_for(self.device)
        if self.is_resolved:
            return self if self.recipe is not None else replace(self, recipe=recipe)
        defaults = {**MODEL_DEFAULTS.get(self.model, {}), **DEVICE_RECIPES.get(recipe, {}).get(self.model, {})}
        values: dict[str, Any] = {
            k: (defaults.get(k) if v is None and k in defaults else v) for k, v in asdict(self).items()
        }
        values["bs"] = values["bs"] if values["bs"] is not None else BOOK_BS
        if self.epochs is None:
            values["epochs"] = default_epochs(self.model, n_train, values["bs"], recipe)
        return TrainConfig(**{**values, "recipe": recipe})

    @classmethod
    def from_saved(cls, saved: dict[str, Any], **given: Any) -> TrainConfig:
        """A config as a card or resume.json saved it (keys it does not know are left out), with the
        settings in `given` that are not None in their place."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in saved.items() if k in known}
        return cls(**{**values, **{k: v for k, v in given.items() if v is not None}})


def flag_specs() -> list[tuple[str, dict[str, Any]]]:
    """`digitlab train`'s flags for the settings: (name, argparse keywords), in TrainConfig's order.
    Every flag defaults to None, so "given" means given (`given_in` reads them back)."""
    specs = []
    for f in fields(TrainConfig):
        meta = f.metadata
        if not meta["flag"] or f.name == "device":  # --device: the commands' common flag
            continue
        spec: dict[str, Any] = {"help": meta["help"], "default": None}
        if meta["kind"] is bool:
            spec.update(action="store_const", const=True)
        elif meta["choices"]:
            spec["choices"] = list(meta["choices"])
        else:
            spec["type"] = meta["kind"]
        specs.append((_flag(f.name), spec))
    return specs


def flag_names() -> list[str]:
    """The settings that are flags (device included): what `--resume` takes from the run instead."""
    return [f.name for f in fields(TrainConfig) if f.metadata["flag"]]


def given_in(namespace: object) -> dict[str, Any]:
    """The settings `namespace` (argparse's, from `flag_specs`' flags) holds that are not None: those
    given on the command line. The device aside: its flag is the commands' common one, with a default."""
    return {
        name: getattr(namespace, name)
        for name in flag_names()
        if name != "device" and getattr(namespace, name) is not None
    }


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
