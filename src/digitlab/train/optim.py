"""Stochastic gradient descent: the book's `BasicOptim`, grown up.

The book's optimizer is two loops:

    step:      for p in params: p.data -= p.grad.data * lr
    zero_grad: for p in params: p.grad = None

`SGD` keeps those loops and adds the two extras every real training loop uses, with the
same arithmetic as `torch.optim.SGD` (so results match it to the last bit):

    weight decay: g = grad + wd * p          (L2 penalty wd/2 * p**2, folded into the gradient)
    momentum:     buf = mom * buf + g        (buf = g on the first step; no dampening)
                  p  -= lr * buf

It subclasses `torch.optim.Optimizer` only for the bookkeeping (`param_groups`, `state`,
`state_dict`, step hooks): that is what makes torch's learning-rate schedulers (which
check `isinstance(opt, Optimizer)`) and any code that writes `group["lr"]` work on it.
The update itself is written out below.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import torch

from ..errors import DigitlabError

# torch's own Optimizer.add_param_group without its `torch._disable_dynamo` wrapper, whose first call
# imports torch._dynamo (1.6 s on a 2-core CPU, measured; ~5 s on a fresh GPU install): eager SGD never
# runs under dynamo, and `torch.compile` compiles the model, not the optimizer.
_ADD_PARAM_GROUP = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__", torch.optim.Optimizer.add_param_group)


def _group_setting(key: str) -> property:
    """A property that reads `key` from the first param group and writes it to every group."""

    def get(self: torch.optim.Optimizer) -> float:
        value: float = self.param_groups[0][key]
        return value

    def set_all(self: torch.optim.Optimizer, value: float) -> None:
        for group in self.param_groups:
            group[key] = value

    return property(get, set_all, doc=f'param_groups[0]["{key}"]; setting it sets every group')


class SGD(torch.optim.Optimizer):
    """SGD with optional momentum `mom` and weight decay `wd`, matching torch.optim.SGD.

    params: tensors (e.g. `model.parameters()`) or torch-style param-group dicts.
    Hyperparameters live in `param_groups[i]` under torch's keys "lr", "momentum" and
    "weight_decay"; `step()` reads them there every time, so a scheduler may change them.
    `opt.lr`, `opt.mom` and `opt.wd` (the book's names) read the first group and set all groups.
    """

    def __init__(
        self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float, mom: float = 0.0, wd: float = 0.0
    ) -> None:
        if isinstance(params, torch.Tensor):
            raise DigitlabError("SGD wants an iterable of tensors, got one tensor; pass [tensor] or model.parameters()")
        # a generator like model.parameters() can only be read once; list() keeps the iterable's kind
        # (mypy would join the union to list[object])
        items = cast("list[torch.Tensor] | list[dict[str, Any]]", list(params))
        if not items:
            raise DigitlabError("SGD got no parameters to optimize (an empty model, or a used-up generator?)")
        for name, value in (("lr", lr), ("mom", mom), ("wd", wd)):
            if not value >= 0.0:  # also catches nan
                raise DigitlabError(f"SGD {name} must be >= 0, got {value}")
        for p in items:
            if isinstance(p, torch.Tensor) and not p.is_leaf:
                raise DigitlabError(
                    "SGD can only optimize leaf tensors (created by the user, not computed); "
                    "use tensor.detach().requires_grad_()"
                )
        super().__init__(items, {"lr": lr, "momentum": mom, "weight_decay": wd})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's `add_param_group`, called without importing torch._dynamo (see _ADD_PARAM_GROUP)."""
        _ADD_PARAM_GROUP(self, param_group)

    @torch.no_grad()  # an update is not part of any model's computation: don't record it
    def step(self, closure: Any = None) -> Any:  # closure: torch's contract; recomputes the loss
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:  # not used in this forward pass: leave it (and its momentum) alone
                    continue
                g = p.grad
                if wd != 0:
                    g = g.add(p, alpha=wd)  # new tensor: p.grad itself stays the plain gradient
                if mom != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.clone()  # first step: no history to decay
                    else:
                        buf.mul_(mom).add_(g)
                    g = buf
                p.add_(g, alpha=-lr)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients before the next backward (which would otherwise add to them).

        None (the default, as in torch) frees the memory and lets `step` skip unused params.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()  # the grad may carry a graph (create_graph=True); cut it
                    p.grad.zero_()

    # The book's attribute names, as views on torch's keys in the param groups.
    lr = _group_setting("lr")
    mom = _group_setting("momentum")
    wd = _group_setting("weight_decay")


class BasicOptim:
    """The book's first optimizer, as it writes it: the two loops above and nothing else.

    `SGD(params, lr)` does the same updates (and more); this one is here to read and to
    compare with (`tests/train/test_optim.py` checks they agree step for step).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        self.params, self.lr = list(params), lr

    def step(self, *args: Any, **kwargs: Any) -> None:
        for p in self.params:
            if p.grad is None:
                raise DigitlabError("BasicOptim.step: a parameter has no gradient (call loss.backward() first)")
            p.data -= p.grad.data * self.lr

    def zero_grad(self, *args: Any, **kwargs: Any) -> None:
        for p in self.params:
            p.grad = None

    def __repr__(self) -> str:
        return f"BasicOptim({len(self.params)} tensors, lr={self.lr:g})"
