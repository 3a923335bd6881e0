"""Chapter 4's "Going Deeper" and chapter 2's DataBlock, as the book and learners' notebooks write them:

    dls = ImageDataLoaders.from_folder(path)                    # train|valid (or training|testing)/<label>/
    learn = cnn_learner(dls, resnet18, pretrained=False, loss_func=F.cross_entropy, metrics=accuracy)
    learn.fit_one_cycle(1, 0.1)

    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
                       splitter=RandomSplitter(seed=42), get_y=parent_label, item_tfms=Resize(28))
    dls = dblock.dataloaders(path)
    dls.show_batch()

Images are decoded once into one (N, 1, H, W) float tensor in [0, 1] (grayscale: digits have one
channel) on the device, and batches are slices of it: no per-item work while training.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .core.defaults import IMAGE_SUFFIXES
from .core.progress import progress_bar
from .data.formats.folders import class_order
from .errors import DataError, DigitlabError
from .lists import L
from .resnet import with_head
from .train.callbacks import OneCycleCB
from .train.dataloader import DataLoader, DataLoaders
from .train.learner import Callback, Learner
from .train.losses import LossFunc
from .train.lr_finder import lr_find
from .train.precise_bn import PreciseBNCB


def get_image_files(path: Path | str, folders: Sequence[str] | None = None) -> L:
    """Every image file under `path` (recursively, by extension, hidden files skipped), sorted;
    `folders` keeps only those top-level sub-folders."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    tops = [root / f for f in folders] if folders else [root]
    found = [
        p
        for top in tops
        for p in top.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return L(sorted(found))


def parent_label(o: Path | str) -> str:
    """The name of the folder a file is in: `train/3/12.png` -> "3"."""
    return Path(o).parent.name


class RandomSplitter:
    """A random `valid_pct` of the items for validation, the same split for the same `seed`."""

    def __init__(self, valid_pct: float = 0.2, seed: int | None = None) -> None:
        if not 0 < valid_pct < 1:
            raise DigitlabError(f"RandomSplitter: valid_pct must be between 0 and 1, got {valid_pct}")
        self.valid_pct, self.seed = valid_pct, seed

    def __call__(self, items: Sequence[Any]) -> tuple[L, L]:
        order = list(range(len(items)))
        random.Random(self.seed).shuffle(order)
        cut = int(self.valid_pct * len(items))
        return L(sorted(order[cut:])), L(sorted(order[:cut]))


class GrandparentSplitter:
    """Split by the folder two levels up: `train/3/12.png` is training, `valid/7/4.png` validation."""

    def __init__(self, train_name: str = "train", valid_name: str = "valid") -> None:
        self.train_name, self.valid_name = train_name, valid_name

    def __call__(self, items: Sequence[Any]) -> tuple[L, L]:
        grand = [Path(o).parent.parent.name for o in items]
        train = L(i for i, g in enumerate(grand) if g == self.train_name)
        valid = L(i for i, g in enumerate(grand) if g == self.valid_name)
        return train, valid


@dataclass(frozen=True)
class Resize:
    """Resize every image to `size` (an int: square) when it is decoded (bilinear, antialiased)."""

    size: int | tuple[int, int]
    method: str = "squish"  # digits are already square; fastai's crop/pad choices change nothing here

    @property
    def shape(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else self.size


class PILImage:
    """fastai's image type, named in `ImageBlock(cls=...)`: here every image is read as grayscale."""


class PILImageBW(PILImage):
    """fastai's grayscale image type (`ImageBlock(cls=PILImageBW)`), what digitlab reads anyway."""


class ImageBlock:
    """The input block: grayscale images (digits have one channel); `ImageBlock(cls=PILImageBW)` too."""

    def __init__(self, cls: type[PILImage] = PILImageBW) -> None:
        self.cls = cls


class CategoryBlock:
    """The target block: one label per image, its vocab sorted (numerically when the labels are numbers)."""


def _decode(files: Sequence[Path], shape: tuple[int, int] | None) -> torch.Tensor:
    """(N, 1, H, W) float in [0, 1]; every image the same size unless `shape` resizes them."""
    from PIL import Image, UnidentifiedImageError

    out: torch.Tensor | None = None
    with progress_bar(f"decoding {len(files):,} images") as on_progress:
        for i, file in enumerate(files):
            try:
                with Image.open(file) as image:
                    gray = image.convert("L")
                    if shape is not None and gray.size != (shape[1], shape[0]):
                        gray = gray.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
                    pixels = torch.from_numpy(np.asarray(gray).copy())  # (H, W) uint8
            except (OSError, UnidentifiedImageError) as e:
                raise DataError(f"{file}: not an image PIL can read ({e})") from None
            if out is None:
                out = torch.empty((len(files), 1, *pixels.shape), dtype=torch.uint8)
            if pixels.shape != out.shape[2:]:
                raise DataError(
                    f"{file}: {tuple(pixels.shape)} pixels where the others are {tuple(out.shape[2:])}; "
                    f"add item_tfms=Resize({out.shape[2]})"
                )
            out[i, 0] = pixels
            if i % 500 == 0:
                on_progress(i, len(files))
    if out is None:
        raise DataError("no images to decode")
    return out.float() / 255


def _default_device(device: str | torch.device | None) -> torch.device:
    return torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))


class ImageDataLoaders(DataLoaders):
    """Training (shuffled, last short batch dropped, as fastai's) and validation loaders over images
    held as one tensor; `vocab` names the classes, `c` counts them, `n_in` is the images' channels."""

    def __init__(self, train: DataLoader, valid: DataLoader, vocab: Sequence[str]) -> None:
        super().__init__(train, valid)
        self.vocab = L(vocab)
        self.c = len(vocab)
        self.n_in = int(train.dataset[0].shape[1]) if isinstance(train.dataset, tuple) else 1
        self.device = train.dataset[0].device if isinstance(train.dataset, tuple) else torch.device("cpu")

    @classmethod
    def from_tensors_and_labels(
        cls,
        x: torch.Tensor,
        labels: Sequence[str],
        split: tuple[Sequence[int], Sequence[int]],
        bs: int = 64,
        device: str | torch.device | None = None,
        seed: int | None = None,
    ) -> ImageDataLoaders:
        """x (N, 1, H, W) float; labels (N,) names; split: (train indices, valid indices)."""
        vocab = class_order(sorted(set(labels)))
        y = torch.tensor([vocab.index(label) for label in labels], dtype=torch.int64)
        train_i, valid_i = (
            torch.tensor(list(split[0]), dtype=torch.int64),
            torch.tensor(list(split[1]), dtype=torch.int64),
        )
        if len(train_i) == 0 or len(valid_i) == 0:
            raise DataError(
                f"the split left {len(train_i)} training and {len(valid_i)} validation images: both need some"
            )
        dev = _default_device(device)
        train = DataLoader(
            (x[train_i], y[train_i]), batch_size=bs, shuffle=True, drop_last=len(train_i) > bs, seed=seed, device=dev
        )
        valid = DataLoader((x[valid_i], y[valid_i]), batch_size=2 * bs, device=dev)
        return cls(train, valid, vocab)

    @classmethod
    def from_folder(
        cls,
        path: Path | str,
        train: str = "train",
        valid: str = "valid",
        valid_pct: float | None = None,
        seed: int | None = None,
        bs: int = 64,
        item_tfms: Resize | None = None,
        batch_tfms: Any = None,
        device: str | torch.device | None = None,
    ) -> ImageDataLoaders:
        """Images labelled by their folder: `path/train/<label>/*` and `path/valid/<label>/*` (fastai's
        MNIST `training`/`testing` are found too), or any folders with `valid_pct` for a random split."""
        path = Path(path)
        if (train, valid) == ("train", "valid") and not (path / "train").is_dir() and (path / "training").is_dir():
            train, valid = "training", "testing"  # fastai's URLs.MNIST layout
        splitter: Callable[[Sequence[Any]], tuple[L, L]]
        splitter = RandomSplitter(valid_pct, seed) if valid_pct else GrandparentSplitter(train, valid)
        block = DataBlock(splitter=splitter, item_tfms=item_tfms, batch_tfms=batch_tfms)
        return block.dataloaders(path, bs=bs, device=device, seed=seed)

    def one_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first training batch: images (bs, 1, H, W) and class indices (bs,)."""
        batch: tuple[torch.Tensor, torch.Tensor] = next(iter(self.train))
        return batch

    def show_batch(self, max_n: int = 9, nrows: int | None = None, ncols: int | None = None, **kwargs: Any) -> Any:
        """A grid of training images, each titled with its label."""
        from .plots.images import show_images

        x, y = self.one_batch()
        n = min(max_n, len(x))
        ncols = ncols or math.ceil(math.sqrt(n))
        nrows = nrows or math.ceil(n / ncols)
        titles = [self.vocab[int(i)] for i in y[:n]]
        return show_images(x[:n, 0].cpu(), nrows=nrows, ncols=ncols, titles=titles, **kwargs)

    def __repr__(self) -> str:
        return (
            f"ImageDataLoaders({self.train.n:,} training and {self.valid.n:,} validation images, "
            f"vocab {list(self.vocab)}, batches of {self.train.batch_size}, on {self.device})"
        )


class DataBlock:
    """fastai's DataBlock for image classification: which files (`get_items`), how to split them
    (`splitter`), each one's label (`get_y`), and a `Resize` (`item_tfms`); `.dataloaders(path)`."""

    def __init__(
        self,
        blocks: Sequence[Any] = (ImageBlock, CategoryBlock),
        get_items: Callable[[Path], Sequence[Any]] = get_image_files,
        splitter: Callable[[Sequence[Any]], tuple[Sequence[int], Sequence[int]]] | None = None,
        get_y: Callable[[Any], str] = parent_label,
        item_tfms: Resize | None = None,
        batch_tfms: Any = None,
    ) -> None:
        kinds = [b if isinstance(b, type) else type(b) for b in blocks]
        if kinds != [ImageBlock, CategoryBlock]:
            raise DigitlabError("digitlab's DataBlock classifies images: blocks=(ImageBlock, CategoryBlock)")
        if batch_tfms is not None:
            raise DigitlabError(
                "batch_tfms: digitlab applies none (digits need no augmentation to reach 99%); leave it out"
            )
        if item_tfms is not None and not isinstance(item_tfms, Resize):
            raise DigitlabError(f"item_tfms: digitlab knows Resize(size), got {item_tfms!r}")
        self.get_items, self.get_y, self.item_tfms = get_items, get_y, item_tfms
        self.splitter = splitter or RandomSplitter()

    def dataloaders(
        self, source: Path | str, bs: int = 64, device: str | torch.device | None = None, seed: int | None = None
    ) -> ImageDataLoaders:
        items = list(self.get_items(Path(source)))
        if not items:
            raise DataError(f"{source}: get_items found no images")
        train_i, valid_i = self.splitter(items)
        keep = sorted({*train_i, *valid_i})  # items the splitter put in neither split are not decoded
        where = {i: n for n, i in enumerate(keep)}
        x = _decode([Path(items[i]) for i in keep], self.item_tfms.shape if self.item_tfms else None)
        labels = [str(self.get_y(items[i])) for i in keep]
        split = ([where[i] for i in train_i], [where[i] for i in valid_i])
        return ImageDataLoaders.from_tensors_and_labels(x, labels, split, bs=bs, device=device, seed=seed)


@dataclass(frozen=True)
class SuggestedLRs:
    """What `learn.lr_find()` suggests: `valley`, the rate where the loss falls fastest (a safe pick)."""

    valley: float
    lrs: list[float]
    losses: list[float]


def adam(params: Any, lr: float) -> torch.optim.Optimizer:
    """fastai's default optimizer: Adam with decoupled weight decay 0.01, betas (0.9, 0.99), eps 1e-5."""
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)


class VisionLearner(Learner):
    """The Learner `vision_learner` returns: `model[0]` is the body, `model[1]` the head; fastai's
    `fit_one_cycle`, `fine_tune`, `freeze`/`unfreeze` and `lr_find` on top of the book's `fit`."""

    def fit_one_cycle(
        self,
        n_epoch: int,
        lr_max: float | None = None,
        div: float = 25.0,
        div_final: float = 1e5,
        pct_start: float = 0.25,
        moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
        cbs: Sequence[Callback] = (),
    ) -> None:
        """`fit` with the learning rate warming up to `lr_max` then annealing (OneCycleCB)."""
        schedule = OneCycleCB(pct_start=pct_start, div=div, div_final=div_final, moms=(moms[0], moms[1]))
        self.fit(n_epoch, lr=lr_max if lr_max is not None else self.lr, cbs=[schedule, *cbs])

    def freeze(self) -> None:
        """Train only the head (and the body's batchnorm layers, as fastai)."""
        body = self.model[0] if isinstance(self.model, torch.nn.Sequential) else self.model
        for module in body.modules():
            trainable = isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))
            for p in module.parameters(recurse=False):
                p.requires_grad_(trainable)

    def unfreeze(self) -> None:
        for p in self.model.parameters():
            p.requires_grad_(True)

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1) -> None:
        """fastai's recipe: `freeze_epochs` of the head alone, then `epochs` of everything at base_lr/2
        (fastai gives the body's early layers smaller rates; here one rate for all)."""
        self.freeze()
        self.fit_one_cycle(freeze_epochs, base_lr, pct_start=0.99)
        self.unfreeze()
        self.fit_one_cycle(epochs, base_lr / 2, pct_start=0.3, div=5.0)

    def lr_find(
        self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, show_plot: bool = True
    ) -> SuggestedLRs:
        """Try rising rates for `num_it` batches on a copy of the state, put it back, suggest one."""
        found = lr_find(self, start_lr, end_lr, num_it)
        if show_plot:
            from .plots.common import finish, new_figure

            fig, axes = new_figure(1, 1, panel=(4.5, 3.0))
            ax = axes[0, 0]
            ax.plot(found.lrs, found.losses)
            ax.set_xscale("log")
            ax.set(xlabel="Learning Rate", ylabel="Loss")
            ax.axvline(found.suggestion, color="red", linestyle=":", label=f"valley {found.suggestion:.2g}")
            ax.legend()
            finish(fig)  # inline in Jupyter, as fastai's plot
        return SuggestedLRs(found.suggestion, found.lrs, found.losses)


def vision_learner(
    dls: ImageDataLoaders,
    arch: Callable[..., Any],
    pretrained: bool | None = None,
    loss_func: LossFunc | None = None,
    metrics: LossFunc | Sequence[LossFunc] = (),
    opt_func: Callable[..., Any] = adam,
    lr: float = 1e-3,
    n_out: int | None = None,
    cbs: Sequence[Callback] = (),
    precise_bn: bool = True,
) -> VisionLearner:
    """`arch`'s body (resnet18, resnet34) with fastai's head for `dls.c` classes, on the data's device.

    pretrained: ImageNet weights are not available here: True is an error saying so; None (fastai's
    default is True) and False train from scratch. loss_func: cross-entropy unless given.
    Unlike fastai, the learner measures batchnorm's statistics again before each validation
    (`PreciseBNCB`): after one short epoch the running averages still describe older weights.
    `precise_bn=False` leaves them as training left them."""
    if not isinstance(dls, ImageDataLoaders):
        raise DigitlabError("vision_learner takes ImageDataLoaders (ImageDataLoaders.from_folder(path) or a DataBlock)")
    network = arch(pretrained=bool(pretrained), n_in=dls.n_in)
    body = getattr(network, "body", None)
    if body is None:
        raise DigitlabError(
            f"{getattr(arch, '__name__', arch)}: not an architecture digitlab knows (resnet18, resnet34)"
        )
    n_features = network.fc.in_features
    model = with_head(body, n_features, n_out or dls.c).to(dls.device)
    cbs = [*cbs, PreciseBNCB()] if precise_bn else list(cbs)
    return VisionLearner(dls, model, loss_func or F.cross_entropy, opt_func=opt_func, lr=lr, metrics=metrics, cbs=cbs)


cnn_learner = vision_learner  # fastai's older name, the one the book uses
