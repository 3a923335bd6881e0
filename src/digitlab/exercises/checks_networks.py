"""The simple_net exercise: two linear layers with a ReLU between, as a module or as the book's function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .calling import book_globals, call_by_name, required_arity
from .feedback import Wrong, as_tensor, close, describe, first_difference
from .probes import Probe, differs, generator, numbers, tensor
from .registry import CheckContext, register


def _is_affine(f: Any, n: int = 8) -> bool:
    """True when f(a) + f(b) == f(a + b) + f(0) on random inputs: no nonlinearity does any work."""
    g = torch.Generator().manual_seed(11)
    a, b = torch.randn(n, 28 * 28, generator=g), torch.randn(n, 28 * 28, generator=g)
    with torch.no_grad():
        lhs, rhs = f(a) + f(b), f(a + b) + f(torch.zeros_like(a))
    return bool(torch.allclose(lhs, rhs, atol=1e-4 * (1 + float(lhs.abs().max()))))


def _call_simple_net(simple_net: Any, xb: torch.Tensor, values: dict[str, torch.Tensor]) -> torch.Tensor:
    """The book's function form: simple_net(xb) reading w1, b1, w2, b2, or with them by name."""
    weights = {k: values[k] for k in ("w1", "b1", "w2", "b2")}
    with book_globals(simple_net, weights):
        if required_arity(simple_net) == 1:
            return as_tensor(simple_net(xb), "simple_net")
        return as_tensor(call_by_name(simple_net, "simple_net", {**values, "xb": xb}), "simple_net")


def check_simple_net(simple_net: Any, ctx: CheckContext) -> str:
    xb = torch.randn(50, 28 * 28, generator=torch.Generator().manual_seed(12))  # centred: scores of both signs
    if isinstance(simple_net, nn.Module):
        return _check_module(simple_net, xb)
    g = torch.Generator().manual_seed(13)
    w1, b1 = torch.randn(28 * 28, 30, generator=g), torch.randn(30, generator=g)
    w2, b2 = torch.randn(30, 1, generator=g), torch.randn(1, generator=g)
    values = {"xb": xb, "w1": w1, "b1": b1, "w2": w2, "b2": b2}

    def run(x: torch.Tensor) -> torch.Tensor:
        return _call_simple_net(simple_net, x, values)

    got, want = run(xb), (xb @ w1 + b1).relu() @ w2 + b2  # (50, 1)
    if tuple(got.shape) != (50, 1):
        raise Wrong(f"simple_net returned shape {tuple(got.shape)} for 50 images; expected (50, 1)")
    if close(got, want, atol=1e-3):
        return "res = xb@w1 + b1; res = res.max(tensor(0.0)); res@w2 + b2: the book's simple_net, value for value"
    if _is_affine(run):
        raise Wrong("two linear layers with nothing between them are still one linear function: put ReLU between")
    if close(got, want.relu(), atol=1e-3):
        raise Wrong("simple_net's output is never negative: the ReLU belongs between the layers, not after the last")
    raise Wrong(f"simple_net differs from relu(xb@w1 + b1)@w2 + b2 {first_difference(got, want)}")


def _check_module(net: nn.Module, xb: torch.Tensor) -> str:
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if len(linears) < 2:
        raise Wrong(f"simple_net has {len(linears)} linear layer(s); the book's has two: 784 -> 30 and 30 -> 1")
    if linears[0].in_features != 28 * 28:
        raise Wrong(f"simple_net's first layer takes {linears[0].in_features} inputs; an image has 28*28 = 784 pixels")
    with torch.no_grad():
        out = as_tensor(net(xb), "simple_net")
    if tuple(out.shape) != (50, 1):
        raise Wrong(
            f"simple_net gives {describe(out)} for 50 images; the chapter's answers one question per image "
            "(is it a 3?): end with nn.Linear(30, 1)"
        )
    if _is_affine(net):
        raise Wrong("two linear layers with nothing between them are still one linear function: put nn.ReLU() between")
    layers = list(net.children())
    if layers and isinstance(layers[-1], (nn.ReLU, nn.Sigmoid)):
        raise Wrong(
            f"simple_net ends with {type(layers[-1]).__name__}: the last layer's scores should be free to be negative"
        )
    hidden = linears[0].out_features
    between = next((type(m).__name__ for m in net.modules() if type(m).__name__ in ACTIVATIONS), "a nonlinearity")
    note = "" if hidden == 30 else f" (the book uses 30 hidden units; yours has {hidden}: fine)"
    return f"784 -> {hidden} -> {between} -> 1: one score per image, and not a linear function{note}"


MAX_PROBED = 2_000_000  # parameters a module may have for the probe to send them (the book's has 23,581)


def _net_inputs(seed: int) -> dict[str, torch.Tensor]:
    g = generator(seed)
    xb, w1, b1 = (
        torch.randn(9, 28 * 28, generator=g),
        torch.randn(28 * 28, 30, generator=g),
        torch.randn(30, generator=g),
    )
    return {"xb": xb, "w1": w1, "b1": b1, "w2": torch.randn(30, 1, generator=g), "b2": torch.randn(1, generator=g)}


def observe_simple_net(simple_net: Any, seed: int) -> Any:
    values = _net_inputs(seed)
    if not isinstance(simple_net, nn.Module):
        return {"out": numbers(_call_simple_net(simple_net, values["xb"], values))}
    linears = [m for m in simple_net.modules() if isinstance(m, nn.Linear)]
    if sum(p.numel() for p in simple_net.parameters()) > MAX_PROBED:
        return {"error": f"simple_net has over {MAX_PROBED:,} parameters, too many to check"}
    with torch.no_grad():
        out = numbers(simple_net(values["xb"]))
    return {"out": out, "layers": [[numbers(m.weight), numbers(m.bias) if m.bias is not None else 0] for m in linears]}


# What may stand between the linear layers of a module that passes the check: ReLU (the book's) or
# another common nonlinearity; the probe recomputes the module's layers with each until one fits
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ReLU": F.relu, "LeakyReLU": F.leaky_relu, "GELU": F.gelu, "SiLU": F.silu, "ELU": F.elu,
    "Tanh": torch.tanh, "Sigmoid": torch.sigmoid,
}  # fmt: skip


def judge_simple_net(observation: Any, seed: int) -> str | None:
    values = _net_inputs(seed)
    xb = values["xb"].double()
    if "layers" not in observation:
        want = (xb @ values["w1"].double() + values["b1"]).relu() @ values["w2"].double() + values["b2"]
        return differs(observation["out"], want, atol=1e-3)
    layers = [(tensor(w), tensor(b)) for w, b in observation["layers"]]
    why = None
    for activation in ACTIVATIONS.values():
        h = xb
        for i, (w, b) in enumerate(layers):  # the linear layers, the nonlinearity between each two
            h = h @ w.T + b
            h = activation(h) if i < len(layers) - 1 else h
        why = differs(observation["out"], h, atol=1e-3)
        if why is None:
            return None
    return why


register("simple_net", check_simple_net, probe=Probe(observe_simple_net, judge_simple_net))
