"""The Learner's behaviour, one callback each: records, progress, device, schedule, guards.

Orders: device (-10) before anything touches tensors; schedule (-5) sets the learning rate
before the batch; the guard (5) sees the loss before the recorder (10) counts it; progress
(20) prints what the recorder has; checkpoints (30) save after the epoch is recorded.
The recorder, progress, schedule, guard and checkpoints stand aside in `lr_finder.search(learn)`
(`in_search = False`): lr_find's trial steps are not a fit to record, show, guard or save.
"""

from __future__ import annotations

import html
import math
import sys
import time
from typing import Any, TextIO

import torch

from ..core.notebook import in_kernel
from ..errors import DigitlabError
from .callback import Callback
from .mentor import MentorCB
from .thread_policy import ThreadPolicyCB


class TrainingDiverged(DigitlabError):
    """The loss became NaN/inf or exploded: the learning rate is usually too high."""


class DeviceCB(Callback):
    """Put the model (and any batch not already there) on `device`."""

    order = -10
    name = "device_cb"  # learn.device is where the model is (Learner.device)

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    def before_fit(self) -> None:
        self.learn.model.to(self.device)

    def before_batch(self) -> None:
        batch = self.learn.batch
        if batch[0].device != self.device:
            self.learn.batch = tuple(t.to(self.device, non_blocking=True) for t in batch)


TIMES = ("seconds", "train_seconds")  # history columns in seconds (the table shows one "time")


class RecorderCB(Callback):
    """Per epoch: train loss, valid loss, each metric, seconds; `values` as fastai's recorder.

    Sums stay on the device as tensors during the epoch (no per-batch `.item()` sync). At the
    epoch's end the loss sum, the count and the metric sums go through `learn.all_reduce` as
    one tensor (summed across processes under DistributedCB) before they become means.
    """

    order = 10
    name = "recorder"
    in_search = False

    def before_fit(self) -> None:
        self.history: list[dict[str, float]] = []  # per epoch: "epoch" (an int), losses, metrics, seconds
        self.lrs: list[float] = []  # learning rate of every training batch
        self.losses: list[torch.Tensor] = []  # loss of every training batch (detached)

    def state_dict(self) -> dict[str, Any]:
        losses = torch.stack([loss.float().cpu() for loss in self.losses]) if self.losses else torch.zeros(0)
        return {"history": self.history, "lrs": torch.tensor(self.lrs, dtype=torch.float64), "losses": losses}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history") or [])
        self.lrs = [float(v) for v in state.get("lrs", torch.zeros(0)).tolist()]
        self.losses = list(state.get("losses", torch.zeros(0)).unbind())

    def before_epoch(self) -> None:
        if self.learn.training:
            self.started = time.perf_counter()
        device = self.learn.device
        self.loss_sum = torch.zeros((), device=device)
        self.metric_sums = [torch.zeros((), device=device) for _ in self.learn.metrics]
        self.count = 0

    def after_loss(self) -> None:
        learn = self.learn
        n = len(learn.batch[0])
        self.count += n
        self.loss_sum = self.loss_sum.to(learn.loss.device) + learn.loss.detach() * n
        if learn.training:
            self.lrs.append(learn.opt.param_groups[0]["lr"])
            self.losses.append(learn.loss.detach())
        else:
            for i, metric in enumerate(learn.metrics):
                self.metric_sums[i] = (
                    self.metric_sums[i].to(learn.loss.device) + metric(learn.preds, learn.batch[1]) * n
                )

    def after_epoch(self) -> None:
        loss_sum, count, *metric_sums = self.learn.all_reduce(
            torch.stack([self.loss_sum, self.loss_sum.new_tensor(self.count), *self.metric_sums])
        ).unbind()
        count = count.clamp(min=1)
        mean = (loss_sum / count).item()  # .item() waits for the device: honest times
        if self.learn.training:
            self.train_loss = mean
            self.train_seconds = time.perf_counter() - self.started
            return
        row = {"epoch": self.learn.epoch + 1, "train_loss": self.train_loss, "valid_loss": mean}
        for metric, total in zip(self.learn.metrics, metric_sums):
            row[metric.__name__] = (total / count).item()
        row["seconds"] = time.perf_counter() - self.started  # training + validation
        row["train_seconds"] = self.train_seconds  # the training pass alone (time-to-accuracy counts this)
        self.history.append(row)

    @property
    def values(self) -> list[list[float]]:
        """[[train_loss, valid_loss, *metrics], ...] per epoch, like fastai's `recorder.values`."""
        return [[v for k, v in row.items() if k != "epoch" and k not in TIMES] for row in self.history]

    def plot_loss(self, ax: Any = None, path: str | None = None) -> Any:
        """fastai's `recorder.plot_loss()`: every batch's train loss, and the valid loss per epoch.

        Returns a matplotlib Figure (shown inline in Jupyter); `path` also saves it as a PNG.
        """
        from ..plots.training import plot_recorder_loss

        return plot_recorder_loss(
            self.losses, self.history, n_batches_per_epoch=len(self.learn.dls.train), ax=ax, path=path
        )


class ProgressCB(Callback):
    """fastai's epoch table: text (stderr by default, with a batch bar on a terminal) or HTML.

    `html=True` shows the table in Jupyter as one display that updates in place each epoch
    (with the current epoch and batch while it trains). `ProgressCB.auto()` is what a
    Learner adds by default: HTML in a kernel, text on stdout when it is a terminal, and
    nothing otherwise (a script's pipe or a log stays clean unless a ProgressCB is asked for).
    """

    order = 20
    in_search = False
    name = "progress"
    HTML_EVERY = 0.5  # seconds between in-place updates of the Jupyter display while training
    ROWS = 20  # a longer fit shows its first epochs, every k-th and the last: a table, not 140 rows

    def _shows(self, epoch: int) -> bool:
        """Whether epoch (1-based) gets a row: all of up to ROWS epochs; else the first 3, every k-th, the last."""
        n = self.learn.n_epoch
        step = math.ceil(n / self.ROWS)
        return n <= self.ROWS or epoch <= 3 or epoch == n or epoch % step == 0

    def _left(self) -> str:
        """ ", about 12 s left" from the mean epoch so far, once a fit has more than a few seconds to go."""
        history = self.learn.recorder.history
        if not history:
            return ""
        left = sum(r["seconds"] for r in history) / len(history) * (self.learn.n_epoch - len(history))
        return f", about {left:.0f} s left" if left >= 5 else ""

    def __init__(self, file: TextIO | None = None, bar: bool | None = None, html: bool = False) -> None:
        self.file, self.html = file or sys.stderr, html
        self.bar = (not html and self.file.isatty()) if bar is None else bar
        self._progress: Any = None  # the rich bar, between before_fit and cleanup_fit
        self._display: Any = None  # the Jupyter display handle

    @classmethod
    def auto(cls) -> ProgressCB | None:
        if in_kernel():
            return cls(html=True)
        if sys.stdout.isatty():
            return cls(file=sys.stdout)
        return None

    def before_fit(self) -> None:
        if not isinstance(getattr(self.learn, "recorder", None), RecorderCB):
            raise DigitlabError("ProgressCB shows what RecorderCB records: add RecorderCB() to the Learner's cbs")
        self.header_printed = False
        self.rows: list[list[str]] = []
        self.header: list[str] = []
        self._shown_at = 0.0
        if self.html:
            from IPython.display import HTML, display

            self._display = display(HTML(self._table(f"epoch 1/{self.learn.n_epoch}")), display_id=True)
        elif self.bar:
            from rich.progress import Progress

            self._progress = Progress(transient=True, console=None)
            self._progress.start()
            self._task = self._progress.add_task("epoch 1", total=self.learn.n_epoch * len(self.learn.dls.train))

    def after_batch(self) -> None:
        learn = self.learn
        if self._progress is not None and learn.training:
            self._progress.update(self._task, advance=1, description=f"epoch {learn.epoch + 1}/{learn.n_epoch}")
        elif self._display is not None and time.perf_counter() - self._shown_at > self.HTML_EVERY:
            phase = "training" if learn.training else "validating"
            self._update(f"epoch {learn.epoch + 1}/{learn.n_epoch}: {phase}, batch {learn.iter + 1}/{learn.n_iter}")

    def after_epoch(self) -> None:
        if self.learn.training:
            return
        row = self.learn.recorder.history[-1]
        shown = [k for k in row if k not in TIMES]
        self.header = shown + ["time"]
        cells = [str(row[k]) if isinstance(row[k], int) else f"{row[k]:.6g}" for k in shown]
        if not self._shows(int(row["epoch"])):
            if self.html and time.perf_counter() - self._shown_at > self.HTML_EVERY:
                self._update(f"epoch {self.learn.epoch + 2}/{self.learn.n_epoch}{self._left()}")
            return
        self.rows.append(cells + [f"{row['seconds']:.2f}s"])
        if self.html:
            self._update(
                f"epoch {self.learn.epoch + 2}/{self.learn.n_epoch}{self._left()}"
                if row["epoch"] < self.learn.n_epoch
                else ""
            )
            return
        if not self.header_printed:
            if self.learn.n_epoch > self.ROWS:
                step = math.ceil(self.learn.n_epoch / self.ROWS)
                self._print(f"{self.learn.n_epoch} epochs: the first 3, every {step}th and the last shown")
            self._print(" ".join(f"{k:>14}" for k in self.header))
            self.header_printed = True
        self._print(" ".join(f"{c:>14}" for c in cells) + f" {row['seconds']:>13.2f}s")

    def cleanup_fit(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._display is not None:
            done = len(self.learn.recorder.history)
            self._update("" if done == self.learn.n_epoch else f"stopped after {done} of {self.learn.n_epoch} epochs")
            self._display = None

    def _update(self, status: str) -> None:
        from IPython.display import HTML

        self._display.update(HTML(self._table(status)))
        self._shown_at = time.perf_counter()

    def _table(self, status: str) -> str:
        """The epoch table as HTML (escaped numbers and names only), with a status line under it."""
        head = "".join(f"<th>{html.escape(k)}</th>" for k in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        table = f'<table class="digitlab-progress"><tr>{head}</tr>{body}</table>' if self.rows else ""
        return table + (f"<p><small>{html.escape(status)}</small></p>" if status else "")

    def _print(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(line, highlight=False)
        else:
            print(line, file=self.file, flush=True)


class OneCycleCB(Callback):
    """Leslie Smith's one-cycle schedule, as fastai's `fit_one_cycle`.

    The learning rate rises from lr/div to lr over the first `pct_start` of the batches, then
    anneals (cosine) to lr/div_final; momentum, if the optimizer has it, moves the other way.
    """

    order = -5
    in_search = False

    def __init__(
        self,
        pct_start: float = 0.25,
        div: float = 25.0,
        div_final: float = 1e5,
        moms: tuple[float, float] = (0.95, 0.85),
    ) -> None:
        self.pct_start, self.div, self.div_final, self.moms = pct_start, div, div_final, moms

    def before_fit(self) -> None:
        self.total = self.learn.n_epoch * len(self.learn.dls.train)
        self.step = 0

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("step") is not None:
            self.step = int(state["step"])

    def before_batch(self) -> None:
        if not self.learn.training:
            return
        lr_max = self.learn.lr
        pct = self.step / max(self.total - 1, 1)
        if pct < self.pct_start:
            t = pct / self.pct_start
            lr, mom = _cos(lr_max / self.div, lr_max, t), _cos(self.moms[0], self.moms[1], t)
        else:
            t = (pct - self.pct_start) / (1 - self.pct_start)
            lr, mom = _cos(lr_max, lr_max / self.div_final, t), _cos(self.moms[1], self.moms[0], t)
        for group in self.learn.opt.param_groups:
            group["lr"] = lr
            if group.get("mom"):
                group["mom"] = mom
            elif group.get("momentum"):
                group["momentum"] = mom
            elif "betas" in group:  # Adam: the first beta is its momentum
                group["betas"] = (mom, group["betas"][1])
        self.step += 1


def _cos(start: float, end: float, t: float) -> float:
    """Cosine interpolation from start (t=0) to end (t=1)."""
    return end + (start - end) * (1 + math.cos(math.pi * t)) / 2


class DivergenceGuardCB(Callback):
    """Stop at the first NaN/inf loss, or a loss `factor` times the first one, and say where.

    every: look at the training losses every k batches and at the end of each training pass. Looking
    brings the losses to the host, which waits for the device: free on the CPU, where the guard looks
    at every batch (the default there) and stops before the bad batch's backward; on a GPU a wait per
    batch would idle it, so it looks every GPU_EVERY batches (the default there). Either way the error
    names the first bad batch and its learning rate; on a GPU the fit has then run at most k - 1 more
    steps, on weights a diverged fit does not keep.
    """

    order = 5
    in_search = False
    GPU_EVERY = 32  # batches between looks on a device that is not the CPU

    def __init__(self, factor: float = 1e4, every: int | None = None) -> None:
        self.factor, self.every = factor, every

    def before_fit(self) -> None:
        self.first_loss: float | None = None
        device = self.learn.device
        self.k = self.every or (1 if device.type == "cpu" else self.GPU_EVERY)
        self.pending: list[tuple[torch.Tensor, int, int, float]] = []  # (loss, epoch, batch, lr) not looked at yet

    def state_dict(self) -> dict[str, Any]:
        return {"first_loss": self.first_loss}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.first_loss = state.get("first_loss")

    def after_loss(self) -> None:
        learn = self.learn
        if learn.training:
            self.pending.append((learn.loss.detach(), learn.epoch, learn.iter, learn.opt.param_groups[0]["lr"]))
            if len(self.pending) >= self.k:
                self._look()

    def after_epoch(self) -> None:
        if self.learn.training:
            self._look()

    def _look(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        values = torch.stack([loss.reshape(()) for loss, *_ in pending]).tolist()  # one wait for the device
        for value, (_, epoch, batch, lr) in zip(values, pending):
            diverged = not math.isfinite(value)
            if not diverged:
                if self.first_loss is None:
                    self.first_loss = max(value, 1e-3)
                diverged = value > self.factor * self.first_loss
            if diverged:
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch + 1}, batch {batch + 1} (loss {value:.4g}) "
                    f"with learning rate {lr:.4g}: try a smaller --lr"
                )


def default_callbacks(given: list[Callback]) -> list[Callback]:
    """fastai's defaults, a recorder and the epoch table where someone can see it; the mentor, which
    names the chapter's common mistakes (mentor.py); and the thread policy, so a busy machine does
    not stall every step (thread_policy.py; OMP_NUM_THREADS, when set, decides instead)."""
    defaults: list[Callback] = [
        cb() for cb in (MentorCB, ThreadPolicyCB) if not any(isinstance(given_cb, cb) for given_cb in given)
    ]
    if not any(isinstance(cb, RecorderCB) for cb in given):
        defaults.append(RecorderCB())
    if not any(isinstance(cb, ProgressCB) for cb in given):
        progress = ProgressCB.auto()
        if progress is not None:
            defaults.append(progress)
    return defaults
