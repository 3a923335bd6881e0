"""The models of chapter 4, from hand-made parameters to a small ResNet.

`init_params` and `linear1` are the book's first model, with the parameters held by the
caller. `Linear`, `SimpleNet` and `CNN` are `nn.Module`s that take images in any of the
usual layouts, (N, 28, 28), (N, 784) or (N, 1, 28, 28), float. `build_model` and
`model_config` turn a model into `{"name": ..., **kwargs}` and back, so a saved model
can say what to rebuild.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from .core.defaults import CNN_WIDTH, MODEL_NAMES
from .errors import DigitlabError

N_PIXELS = 28 * 28


def init_params(size: int | tuple[int, ...], std: float = 1.0) -> torch.Tensor:
    """The book's random start: normal(0, std) values that autograd will track."""
    return (torch.randn(size) * std).requires_grad_()


def linear1(xb: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The book's linear model, xb @ weights + bias: (N, 784) @ (784, 1) + (1,) -> (N, 1).

    The book reads `weights` and `bias` from globals; taking them as arguments makes the
    function usable with any parameters and testable without module state.
    """
    return xb @ weights + bias


def _as_images(x: torch.Tensor, flat: bool) -> torch.Tensor:
    """Any accepted layout -> (N, 784) if `flat`, else (N, 1, 28, 28); errors name the shape."""
    if not x.is_floating_point():
        raise DigitlabError(f"models want float images in [0, 1], got {x.dtype}; use images.float() / 255")
    shape = tuple(x.shape)
    if shape[1:] not in ((N_PIXELS,), (28, 28), (1, 28, 28)):
        raise DigitlabError(f"models want images shaped (N, 28, 28), (N, 784) or (N, 1, 28, 28), got {shape}")
    return x.reshape(len(x), N_PIXELS) if flat else x.reshape(len(x), 1, 28, 28)


class Linear(nn.Module):
    """One linear layer, pixels -> n_out scores (the book's `linear1` as a module): 785 params for n_out=1."""

    def __init__(self, n_out: int = 1) -> None:
        super().__init__()
        self.init_kwargs = {"n_out": n_out}  # for model_config: enough to rebuild this model
        self.linear = nn.Linear(N_PIXELS, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(_as_images(x, flat=True))  # (N, n_out)
        return out


class SimpleNet(nn.Module):
    """The book's `simple_net`: Linear(784, n_hidden) -> ReLU -> Linear(n_hidden, n_out).

    `layers` is that `nn.Sequential`; `net[0]` indexes it as the book does (`simple_net[0]`).
    """

    def __init__(self, n_hidden: int = 30, n_out: int = 1) -> None:
        super().__init__()
        self.init_kwargs = {"n_hidden": n_hidden, "n_out": n_out}
        self.layers = nn.Sequential(nn.Linear(N_PIXELS, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))

    def __getitem__(self, i: int) -> nn.Module:
        return self.layers[i]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(_as_images(x, flat=True))  # (N, n_out)
        return out


def simple_net(n_out: int = 1, n_hidden: int = 30) -> SimpleNet:
    """The book's 784-30-1 network (23,581 parameters for n_out=1)."""
    return SimpleNet(n_hidden=n_hidden, n_out=n_out)


def conv_bn(c_in: int, c_out: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """3x3 conv (no bias: batchnorm's shift replaces it) -> batchnorm -> optional ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """relu(convs(x) + shortcut(x)): the block learns a correction to x, so depth is cheap to train.

    With stride 2 or a change of width the shortcut is a 1x1 conv (stride 2) so shapes match.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        first, second = conv_bn(c_in, c_out, stride), conv_bn(c_out, c_out, relu=False)
        self.convs = nn.Sequential(first, second)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        # Start each block as (almost) the identity: zeroing the last batchnorm's scale means the
        # residual branch adds nothing at first, which makes early training steadier.
        last_bn = second[1]
        assert isinstance(last_bn, nn.BatchNorm2d)  # conv_bn is conv -> batchnorm (-> relu)
        nn.init.zeros_(last_bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.convs(x) + self.shortcut(x))


class CNN(nn.Module):
    """A small ResNet for 28x28 grayscale digits.

    stem:   conv 1 -> w at 28x28
    stages: ResBlock(w -> w, stride 2) at 14x14, ResBlock(w -> 2w, stride 2) at 7x7,
            ResBlock(2w -> 4w, stride 2) at 4x4
    head:   global average pool -> Linear(4w, n_out)
    Downsampling in the first block already keeps the costly full-resolution work to one conv.
    `CNN_WIDTH` (16: 16/32/64 channels, 78k parameters for 10 classes) is the width `digitlab
    train` uses; its speed and accuracy are in BENCHMARKS.md.
    """

    def __init__(self, n_out: int = 10, width: int = CNN_WIDTH) -> None:
        super().__init__()
        self.init_kwargs = {"n_out": n_out, "width": width}
        w = width
        self.stem = conv_bn(1, w)  # (N, w, 28, 28)
        self.stages = nn.Sequential(
            ResBlock(w, w, stride=2),  # (N, w, 14, 14)
            ResBlock(w, 2 * w, stride=2),  # (N, 2w, 7, 7)
            ResBlock(2 * w, 4 * w, stride=2),  # (N, 4w, 4, 4)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)  # (N, 4w, 1, 1): position no longer matters
        self.head = nn.Linear(4 * w, n_out)
        # Channels-last conv weights make CPU (oneDNN) training faster (bench/bench_levers.py, figures in
        # BENCHMARKS.md); .to(device), state_dict and in-place optimizer steps keep the layout.
        to_channels_last(self)

    def __repr__(self) -> str:
        """One line instead of torch's forty; `print(model.stem)`, `print(model.stages)` show the layers."""
        w, n_params = self.init_kwargs["width"], sum(p.numel() for p in self.parameters())
        return (
            f"CNN(n_out={self.init_kwargs['n_out']}, width={w}: stem {w} channels at 28x28, ResBlocks "
            f"{w}/{2 * w}/{4 * w} channels at 14/7/4 px, pool, linear; {n_params:,} parameters)"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(_as_images(x, flat=False)))
        out: torch.Tensor = self.head(self.pool(x).flatten(1))  # (N, n_out)
        return out


def channels_last_hazards(model: nn.Module) -> list[str]:
    """Convolutions that torch's CPU kernels get wrong in channels-last layout (empty: safe).

    With torch 2.13 on the CPU, a 1x1 convolution of stride 2 over 2-7 input channels in
    channels-last layout corrupts memory in its forward/backward pass (a crash, or a hang with
    two threads; 1 and 8+ channels are fine). The CNN's shortcut is such a conv for width < 8.
    """
    return [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.stride != (1, 1) and 1 < m.in_channels < 8
    ]


def to_channels_last(model: nn.Module) -> bool:
    """Put `model` in channels-last layout unless that would hit a hazard above; True if it did."""
    if channels_last_hazards(model):
        return False
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack memory_format
    return True


MODELS: dict[str, type[nn.Module]] = dict(zip(MODEL_NAMES, (Linear, SimpleNet, CNN), strict=True))


def build_model(name: str, n_out: int, **kwargs: Any) -> nn.Module:
    """A fresh model by registry name, e.g. build_model("cnn", 10, width=32)."""
    if name not in MODELS:
        raise DigitlabError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    try:
        return MODELS[name](n_out=n_out, **kwargs)
    except TypeError as e:  # an unknown keyword: say which model and what it takes
        raise DigitlabError(f"cannot build model {name!r} with {kwargs}: {e}") from None


def model_config(model: nn.Module) -> dict[str, Any]:
    """{"name": ..., **constructor kwargs}, JSON-ready; `build_model(**model_config(m))` rebuilds m."""
    for name, cls in MODELS.items():
        if type(model) is cls:
            # every registered model sets init_kwargs (a dict); torch's stubs type attributes as Tensor | Module
            return {"name": name, **cast("dict[str, Any]", model.init_kwargs)}
    raise DigitlabError(f"{type(model).__name__} is not a registered model ({', '.join(MODELS)})")
