"""The training step as one CUDA graph: forward, loss, backward and the SGD step, captured once, replayed.

On a GPU a small model's step is about 300 kernel launches of a few microseconds each; launched one by
one from Python the GPU idles most of the time (92% of the time for the CNN at batch 64, on an H100).
Captured as a CUDA graph, they are one launch. What stays outside the graph, per batch: the batch's
gather (DataLoader), the batched augmentation (RandomAffineCB), the copy into the graph's static input,
the learning rate and momentum written into device tensors, and the recorder's sums: a few dozen
launches and no wait for the device (the divergence guard looks every k batches there).

`CudaGraphCB(mode)`: "auto" uses the graph where it applies and says in one line why not where it does
not; "on" makes that an error; "off" leaves the Learner's eager step. It applies on CUDA, with digitlab's
SGD, in one process, without torch.compile, when no callback acts inside the training step
(after_predict or after_backward), and when the model can be captured: a model whose forward reads
a tensor on the host (data-dependent control flow) fails the capture and trains eagerly. A batch of
another shape (an epoch's last, partial batch) runs through the Learner's eager step, on the same
weights, momentum buffers and learning rate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import torch

from ..core.defaults import CUDA_GRAPH_MODES
from ..errors import DigitlabError
from .accelerate import CompileCB
from .callback import Callback
from .learner import Learner
from .optim import SGD

STEP_EVENTS = ("after_predict", "after_backward")  # events inside a training step that a graph cannot call
WARMUP_STEPS = 3  # eager steps on a side stream before the capture: cuDNN picks its kernels, autograd settles


def graph_blocker(learn: Learner, need_cuda: bool = True) -> str | None:
    """Why this learner's training step cannot be one CUDA graph, in a few words; None when it can.

    need_cuda=False skips the device check (the static step run uncaptured, on any device: tests).
    """
    device = learn.device
    if need_cuda and device.type != "cuda":
        return f"the model is on {device.type} (CUDA graphs are CUDA's)"
    if not isinstance(learn.opt, SGD):
        return f"the optimizer is {type(learn.opt).__name__} (the graphed step is digitlab's SGD)"
    if getattr(learn.model, "_digitlab_compiled", False):  # compiled by CompileCB, which then says why
        return CompileCB.blocks_graphs
    blocked = next((cb.blocks_graphs for cb in learn.cbs if cb.blocks_graphs), None)
    if blocked is not None:
        return blocked
    for cb in learn.cbs:
        inside = [e for e in STEP_EVENTS if hasattr(cb, e)]
        if inside and not cb.graph_safe:
            return f"{type(cb).__name__} acts inside the training step ({', '.join(inside)})"
    return None


def sgd_step(opt: SGD, rates: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """digitlab SGD's update with each group's lr and momentum read from 0-dim device tensors.

    rates: per param group, (-lr, momentum), so a schedule changes them without a new graph. The
    arithmetic is SGD.step's (g = grad + wd * p; buf = mom * buf + g; p += -lr * buf), with foreach
    kernels: a few launches for all parameters. Momentum buffers must exist (zeros: then the first
    step's buf = g, as SGD's clone).
    """
    with torch.no_grad():
        for group, (neg_lr, mom) in zip(opt.param_groups, rates):
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params if p.grad is not None]  # (the filter again: for mypy)
            if group["weight_decay"] != 0:
                grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
            if group["momentum"] != 0:
                bufs = [opt.state[p]["momentum_buffer"] for p in params]
                torch._foreach_mul_(bufs, mom)
                torch._foreach_add_(bufs, grads)
                grads = bufs
            torch._foreach_add_(params, torch._foreach_mul(grads, neg_lr))


class StaticStep:
    """A training step on fixed tensors: `run(xb, yb)` copies the batch into them and replays the graph.

    capture=False runs the same step without a graph (on any device): what the CPU tests compare with
    the Learner's eager step. The first batch's shape, dtype and layout are the graph's for good.
    """

    def __init__(self, learn: Learner, xb: torch.Tensor, yb: torch.Tensor, capture: bool = True) -> None:
        self.learn, self.opt = learn, learn.opt
        self.x, self.y = xb.clone(), yb.clone()  # static inputs: same shape, dtype and strides as the batch
        # per param group: (-lr, momentum) as 0-dim device tensors, written before each replay
        zero = xb.new_zeros((), dtype=torch.float32)
        self.rates = [(zero.clone(), zero.clone()) for _ in learn.opt.param_groups]
        for group in self.opt.param_groups:
            if group["momentum"] != 0:  # the eager SGD then updates these same buffers in place
                for p in group["params"]:
                    self.opt.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
        self.graph: torch.cuda.CUDAGraph | None = None
        if capture:
            self._capture()

    def fits(self, xb: torch.Tensor, yb: torch.Tensor) -> bool:
        return xb.shape == self.x.shape and yb.shape == self.y.shape and xb.stride() == self.x.stride()

    def run(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step on this batch: (predictions, loss), the graph's own tensors (overwritten by the next run)."""
        self.x.copy_(xb, non_blocking=True)
        self.y.copy_(yb, non_blocking=True)
        for group, (neg_lr, mom) in zip(self.opt.param_groups, self.rates):
            neg_lr.fill_(-group["lr"])  # a launch with the value in it: no wait for the device
            mom.fill_(group["momentum"])
        if self.graph is None:
            self.preds, self.loss = self._body()
        else:
            self.graph.replay()
        return self.preds, self.loss

    def _body(self) -> tuple[torch.Tensor, torch.Tensor]:
        learn = self.learn
        self.opt.zero_grad(set_to_none=True)  # backward writes this batch's gradients, not a sum
        with learn.forward_context():
            preds = learn.model(self.x)
            loss = learn.loss_func(preds, self.y)
        loss.backward()
        sgd_step(self.opt, self.rates)
        return preds, loss

    def _capture(self) -> None:
        """Warm up on a side stream, capture, then put back what the warm-up changed (weights, BN stats, momentum)."""
        saved = {k: v.clone() for k, v in self.learn.model.state_dict().items()}
        bufs = [s["momentum_buffer"] for s in self.opt.state.values() if "momentum_buffer" in s]
        saved_bufs = [b.clone() for b in bufs]
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):  # lr is 0 here (rates start at zeros): the weights stay put
                    self._body()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.preds, self.loss = self._body()
            self.graph = graph
        finally:
            with torch.no_grad():
                for k, v in self.learn.model.state_dict().items():
                    v.copy_(saved[k])
                for b, s in zip(bufs, saved_bufs):
                    b.copy_(s)


def _say(message: str) -> None:
    print(f"digitlab: {message}", file=sys.stderr, flush=True)


class CudaGraphCB(Callback):
    """Train with the step as one CUDA graph where it applies (see the module's docstring).

    mode: "auto" (use it where it applies, else say why in one line and train eagerly), "on" (where it
    does not apply: a DigitlabError), "off". capture=False: the same static step without a graph, on any
    device. say: where the one line goes (None: stderr). After the fit, `status` says what happened:
    "graphed" (with the number of eager partial batches) or "eager: <why>"; `capture_seconds` is the
    warm-up and capture, which the first training batch (and so the fit's time) includes.
    """

    order = 4  # before_fit: after DeviceCB (-10) moved the model; its step runs after every before_batch
    in_search = False  # lr_find's probe steps eagerly: its finder reads every loss on the host anyway
    name = "cuda_graph"

    def __init__(self, mode: str = "auto", capture: bool = True, say: Callable[[str], None] | None = None) -> None:
        if mode not in CUDA_GRAPH_MODES:  # TrainConfig checks it too; a callback may be made without one
            raise DigitlabError(f"--cuda-graphs {mode!r}: choose one of {', '.join(CUDA_GRAPH_MODES)}")
        self.mode, self.capture, self.say = mode, capture, say or _say
        self.status = "eager: not fitted yet"
        self.step: StaticStep | None = None
        self.capture_seconds = 0.0

    def before_fit(self) -> None:
        self.step, self.active, self.eager_batches = None, False, 0
        self.capture_seconds = 0.0  # warm-up and capture, inside the first training batch (bench: start-up)
        if self.mode == "off":
            self.status = "eager: --cuda-graphs off"
            return
        blocker = graph_blocker(self.learn, need_cuda=self.capture)
        if blocker is None:
            self.active, self.status = True, "graphed"
            self.learn.step_batch = self.graphed_step  # the Learner's step for this fit; cleanup_fit puts it back
        else:
            self._fall_back(blocker, quiet=self.learn.device.type != "cuda")

    def _fall_back(self, why: str, quiet: bool = False) -> None:
        if self.mode == "on":
            raise DigitlabError(f"--cuda-graphs on: {why}")
        self.active, self.status = False, f"eager: {why}"
        if not quiet:  # --cuda-graphs auto off CUDA is the plain eager step: nothing to say
            self.say(f"CUDA graphs off: {why}; training with the eager step")

    def graphed_step(self) -> None:
        """The Learner's step while this callback is fitted: a training batch from the graph, with the events
        a graph can call (after_loss, after_step); the Learner's eager step wherever the graph does not apply."""
        learn = self.learn
        if not (learn.training and self._replayed()):
            learn.eager_step()
            return
        learn.callback("after_loss")
        learn.callback("after_step")

    def _replayed(self) -> bool:
        """This training batch's step from the graph (True); False: it is left to the eager step."""
        if not self.active:
            return False
        learn = self.learn
        xb, yb = learn.batch[0], learn.batch[1]
        if self.step is None:
            started = time.perf_counter()
            try:
                self.step = StaticStep(learn, xb, yb, capture=self.capture)
                if self.capture:
                    torch.cuda.synchronize(xb.device)
                self.capture_seconds += time.perf_counter() - started
            except Exception as e:  # what a failed capture raises varies: a host read of a tensor, an op graphs refuse
                learn.opt.zero_grad(set_to_none=True)
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                why = "a host read of a tensor in the model or the loss?"  # data-dependent control flow, a value check
                self._fall_back(f"the model could not be captured ({first[:160]}): {why}")
                return False
        if not self.step.fits(xb, yb):  # the last, partial batch: the Learner's eager step, on the same state
            learn.opt.zero_grad(set_to_none=True)  # the graph's gradients must not add into the eager backward
            self.eager_batches += 1
            return False
        preds, loss = self.step.run(xb, yb)
        learn.preds, learn.loss = preds, loss.detach().clone()  # recorder and guard keep it past the next replay
        return True

    def after_fit(self) -> None:
        if self.active:
            self.status = "graphed" + (f", {self.eager_batches} partial batches eager" if self.eager_batches else "")

    def cleanup_fit(self) -> None:
        if self.learn.step_batch == self.graphed_step:  # only the step this callback set: a bound method's ==
            self.learn.step_batch = self.learn.eager_step
        if self.step is not None:  # drop the graph and its memory; the weights are the model's own tensors
            self.learn.opt.zero_grad(set_to_none=True)
            self.step = None
