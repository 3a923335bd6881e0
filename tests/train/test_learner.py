"""The Learner's loop and its callbacks, on a few dozen synthetic digits (fast, CPU only)."""

from __future__ import annotations

import copy
import io
import itertools
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitlab.errors import DigitlabError
from digitlab.models import Linear
from digitlab.train.augment import RandomAffineCB, random_affine
from digitlab.train.callbacks import (
    DivergenceGuardCB,
    OneCycleCB,
    ProgressCB,
    RecorderCB,
    TrainingDiverged,
)
from digitlab.train.dataloader import DataLoaders
from digitlab.train.learner import Callback, CancelBatchException, CancelEpochException, CancelFitException, Learner
from digitlab.train.losses import batch_accuracy, mnist_loss
from digitlab.train.lr_finder import search
from digitlab.train.optim import SGD
from digitlab.train.resume import CheckpointCB
from digitlab.train.thread_policy import ThreadPolicyCB

EVENTS = (
    "before_fit",
    "before_epoch",
    "before_batch",
    "after_predict",
    "after_loss",
    "after_backward",
    "after_step",
    "after_batch",
    "after_epoch",
    "after_fit",
    "after_cancel_batch",
    "after_cancel_epoch",
    "after_cancel_fit",
)


class EventRecorder(Callback):
    """Appends (event, training) for every event; `raise_at(event, exc, when)` injects a Cancel*."""

    order = 0

    def __init__(self, raises: dict | None = None) -> None:
        self.events: list[tuple[str, bool | None]] = []
        self.raises = raises or {}  # event -> (exception, predicate(learn) -> bool)
        for event in EVENTS:
            setattr(self, event, partial(self._record, event))

    def _record(self, event: str) -> None:
        self.events.append((event, getattr(self.learn, "training", None)))
        if event in self.raises:
            exc, when = self.raises[event]
            if when(self.learn):
                raise exc()

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


@pytest.fixture
def data(digits_factory):
    """Binary 3-vs-7 data as the book's linear model wants it: float pixels, (N, 1) 0/1 targets."""

    def make(n_train: int = 20, n_valid: int = 10, seed: int = 0):
        xt, yt = digits_factory(n_train, (3, 7), seed)
        xv, yv = digits_factory(n_valid, (3, 7), seed + 1)
        to_x = lambda a: torch.as_tensor(a).float() / 255  # noqa: E731
        to_y = lambda a: (torch.as_tensor(a) == 3).float().unsqueeze(1)  # noqa: E731
        return to_x(xt), to_y(yt), to_x(xv), to_y(yv)

    return make


def make_learner(
    data,
    bs: int = 20,
    lr: float = 0.1,
    cbs=(),
    n_train: int = 20,
    n_valid: int = 10,
    opt_func=SGD,
    metrics=(batch_accuracy,),
    loss_func=mnist_loss,
    seed: int = 0,
) -> Learner:
    torch.manual_seed(seed)
    xt, yt, xv, yv = data(n_train, n_valid)
    dls = DataLoaders.from_tensors(xt, yt, xv, yv, batch_size=bs, seed=seed)
    return Learner(dls, Linear(1), loss_func, opt_func=opt_func, lr=lr, metrics=metrics, cbs=cbs)


def params_of(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ---- the loop's events ------------------------------------------------------------------


def test_event_order_over_two_epochs(data):
    rec = EventRecorder()
    learn = make_learner(data, bs=20, n_train=20, n_valid=10, cbs=[rec])  # 40 train -> 2 batches; 20 valid -> 1
    learn.fit(2)
    train_batch = ["before_batch", "after_predict", "after_loss", "after_backward", "after_step", "after_batch"]
    valid_batch = ["before_batch", "after_predict", "after_loss", "after_batch"]
    epoch = ["before_epoch", *train_batch, *train_batch, "after_epoch", "before_epoch", *valid_batch, "after_epoch"]
    assert rec.names() == ["before_fit", *epoch, *epoch, "after_fit"]
    # no backward or step while validating, and validation is flagged as such
    assert not [e for e, training in rec.events if e in ("after_backward", "after_step") and not training]
    assert [t for e, t in rec.events if e == "before_epoch"] == [True, False, True, False]


def test_callbacks_run_sorted_by_order(data):
    calls: list[str] = []

    def cb(name: str, order: int) -> Callback:
        c = type(f"{name}CB", (Callback,), {"order": order, "before_fit": lambda self: calls.append(name)})()
        return c

    late, early, middle = cb("Late", 7), cb("Early", -3), cb("Middle", 1)
    learn = make_learner(data, cbs=[late, early])
    learn.fit(1, cbs=[middle])
    assert calls == ["Early", "Middle", "Late"]
    assert [c.order for c in learn.cbs] == sorted(c.order for c in learn.cbs)
    assert learn.early is early and learn.late is late  # reachable by snake-case name, like learn.recorder


def test_callbacks_passed_to_fit_are_removed_afterwards(data):
    keep, once = EventRecorder(), EventRecorder()
    learn = make_learner(data, cbs=[keep])
    learn.fit(1, cbs=[once])
    assert once not in learn.cbs and keep in learn.cbs
    learn.fit(1)
    assert once.names().count("before_fit") == 1 and keep.names().count("before_fit") == 2


def test_callbacks_passed_to_fit_are_removed_even_when_fit_fails(data):
    once = EventRecorder(raises={"after_loss": (RuntimeError, lambda learn: True)})
    learn = make_learner(data)
    with pytest.raises(RuntimeError):
        learn.fit(1, cbs=[once])
    assert once not in learn.cbs


# ---- cancelling -------------------------------------------------------------------------


def test_cancel_batch_in_after_loss_skips_backward_and_step(data):
    rec = EventRecorder(raises={"after_loss": (CancelBatchException, lambda learn: learn.training)})
    learn = make_learner(data, cbs=[rec])
    before = params_of(learn.model)
    learn.fit(2)
    for p0, p1 in zip(before, params_of(learn.model)):
        assert torch.equal(p0, p1)
    names = rec.names()
    assert "after_backward" not in names and "after_step" not in names
    assert names.count("after_cancel_batch") == 2 * 2  # 2 epochs x 2 training batches
    assert names[-1] == "after_fit"


def test_cancel_epoch_ends_the_training_pass_then_validates(data):
    # cancel each training epoch at its second batch: one step per epoch, validation still runs
    rec = EventRecorder(
        raises={"before_batch": (CancelEpochException, lambda learn: learn.training and learn.iter == 1)}
    )
    learn = make_learner(data, cbs=[RecorderCB(), rec])
    learn.fit(2)
    names = rec.names()
    assert names.count("after_cancel_epoch") == 2
    assert names.count("after_step") == 2
    assert names.count("after_loss") == 2 + 2  # one training + one validation batch per epoch
    assert names[-1] == "after_fit" and names.count("after_fit") == 1
    assert len(learn.recorder.history) == 2


def test_cancel_fit_calls_after_cancel_fit_then_after_fit(data):
    rec = EventRecorder(raises={"before_epoch": (CancelFitException, lambda learn: learn.epoch == 1)})
    learn = make_learner(data, cbs=[rec])
    learn.fit(5)
    names = rec.names()
    assert names[-2:] == ["after_cancel_fit", "after_fit"]
    assert names.count("before_epoch") == 3  # epoch 0 train + valid, then the cancelled one
    assert learn.epoch == 1


# ---- the recorder -----------------------------------------------------------------------


def test_recorder_values_match_a_by_hand_recomputation(data):
    learn = make_learner(data, lr=0.0, cbs=[RecorderCB()], n_train=25, n_valid=15, bs=16)  # lr 0: model fixed
    learn.fit(2)
    assert learn.recorder in learn.cbs and isinstance(learn.recorder, RecorderCB)
    values = learn.recorder.values
    assert len(values) == 2 and all(len(row) == 3 for row in values)  # [train_loss, valid_loss, batch_accuracy]
    with torch.no_grad():
        xt, yt = learn.dls.train.dataset
        xv, yv = learn.dls.valid.dataset
        train_loss = mnist_loss(learn.model(xt), yt).item()
        valid_loss = mnist_loss(learn.model(xv), yv).item()
        accuracy = batch_accuracy(learn.model(xv), yv).item()
    for row in values:
        assert row == pytest.approx([train_loss, valid_loss, accuracy], abs=1e-5)
    assert [row["epoch"] for row in learn.recorder.history] == [1, 2]
    assert all(row["seconds"] >= 0 for row in learn.recorder.history)
    assert len(learn.recorder.lrs) == 2 * len(learn.dls.train) and set(learn.recorder.lrs) == {0.0}


def test_recorder_sees_learning_progress(data):
    learn = make_learner(data, lr=1.0, cbs=[RecorderCB()])
    learn.fit(4)
    values = learn.recorder.values
    assert values[-1][1] < values[0][1] and values[-1][2] == 1.0


def test_torch_optim_sgd_works_and_matches_ours(data):
    results = []
    for opt_func in (torch.optim.SGD, SGD):
        learn = make_learner(data, lr=0.5, opt_func=opt_func, cbs=[RecorderCB()])
        start = params_of(learn.model)
        learn.fit(3)
        assert isinstance(learn.opt, opt_func)
        assert any(not torch.equal(a, b) for a, b in zip(start, params_of(learn.model)))
        results.append((learn.recorder.values, params_of(learn.model)))
    (values_t, params_t), (values_d, params_d) = results
    for row_t, row_d in zip(values_t, values_d, strict=True):
        assert row_t == pytest.approx(row_d, abs=1e-6)
    for a, b in zip(params_t, params_d):
        torch.testing.assert_close(a, b)


# ---- one-cycle ----------------------------------------------------------------------------


class MomentumLog(Callback):
    order = 0

    def before_fit(self) -> None:
        self.moms: list[float] = []

    def after_loss(self) -> None:
        if self.learn.training:
            self.moms.append(self.learn.opt.param_groups[0]["momentum"])


@pytest.mark.parametrize(
    "opt_func", [partial(SGD, mom=0.9), partial(torch.optim.SGD, momentum=0.9)], ids=["digitlab", "torch"]
)
def test_one_cycle_lr_and_momentum_curves(data, opt_func):
    lr = 0.2
    moms = MomentumLog()
    # 3 epochs x 7 batches = 21 steps: step 5 is exactly 25% of the way (pct = step / (total - 1))
    learn = make_learner(
        data, lr=lr, bs=6, n_train=21, n_valid=5, opt_func=opt_func, cbs=[RecorderCB(), OneCycleCB(), moms]
    )
    assert len(learn.dls.train) == 7
    learn.fit(3)
    lrs = learn.recorder.lrs
    assert len(lrs) == 21
    assert lrs[0] == pytest.approx(lr / 25)
    assert max(lrs) == pytest.approx(lr) and lrs.index(max(lrs)) == 5
    assert lrs[-1] == pytest.approx(lr / 1e5)
    assert all(a < b for a, b in itertools.pairwise(lrs[:6]))  # warm-up rises
    assert all(a > b for a, b in itertools.pairwise(lrs[5:]))  # then anneals
    m = moms.moms
    assert m[0] == pytest.approx(0.95) and m[5] == pytest.approx(0.85) and m[-1] == pytest.approx(0.95)
    assert min(m) == pytest.approx(0.85) and m.index(min(m)) == 5  # momentum moves opposite to the lr


def test_one_cycle_leaves_zero_momentum_alone(data):
    moms = MomentumLog()
    learn = make_learner(data, lr=0.2, cbs=[OneCycleCB(), moms])
    learn.fit(1)
    assert set(moms.moms) == {0.0}


# ---- divergence guard -------------------------------------------------------------------


def test_divergence_guard_stops_an_exploding_regression(data):
    learn = make_learner(data, lr=1e6, loss_func=F.mse_loss, metrics=(), cbs=[RecorderCB(), DivergenceGuardCB()])
    with pytest.raises(TrainingDiverged) as info:
        learn.fit(3)
    message = str(info.value)
    assert isinstance(info.value, DigitlabError)
    assert "epoch 1" in message and "batch 2" in message and f"{1e6:.4g}" in message and "learning rate" in message


def test_divergence_guard_looking_every_k_batches_names_the_same_batch(data):
    """On a GPU the guard looks every k batches (no wait per batch): the error names the same first bad batch."""
    messages, steps = [], []
    for every in (None, 3):  # None: every batch here on the CPU

        class Steps(Callback):
            def before_fit(self) -> None:
                steps.append(0)

            def after_step(self) -> None:
                steps[-1] += 1

        guard = DivergenceGuardCB(every=every)
        learn = make_learner(data, bs=4, lr=1e6, loss_func=F.mse_loss, metrics=(), cbs=[RecorderCB(), guard, Steps()])
        with pytest.raises(TrainingDiverged) as info:
            learn.fit(3)
        messages.append(str(info.value))
    assert guard.k == 3 and messages[0] == messages[1] and "training diverged at epoch 1" in messages[0]
    assert steps[1] > steps[0]  # looking later, it stopped later
    learn = make_learner(data, lr=0.1, cbs=[RecorderCB(), DivergenceGuardCB(every=100)])
    learn.fit(2)  # a healthy fit: the look at each epoch's end finds nothing
    assert len(learn.recorder.history) == 2


def test_divergence_guard_stops_at_a_nan_loss(data):
    def nan_after_first_epoch(preds, targets):
        loss = mnist_loss(preds, targets)
        return loss * math.nan if learn.epoch == 1 and learn.iter == 1 else loss

    learn = make_learner(data, lr=0.5, loss_func=nan_after_first_epoch, cbs=[DivergenceGuardCB()])
    with pytest.raises(TrainingDiverged) as info:
        learn.fit(3)
    message = str(info.value)
    assert "epoch 2" in message and "batch 2" in message and "nan" in message and "0.5" in message


def test_divergence_guard_ignores_validation_and_a_healthy_run(data):
    class NanValidation(Callback):
        """Before the guard (order 5) sees it, every validation loss becomes NaN."""

        order = 4

        def after_loss(self) -> None:
            if not self.learn.training:
                self.learn.loss = torch.full_like(self.learn.loss, math.nan)

    healthy = make_learner(data, lr=1.0, cbs=[RecorderCB(), DivergenceGuardCB()])
    healthy.fit(3)
    assert len(healthy.recorder.history) == 3  # all epochs ran
    learn = make_learner(data, lr=1.0, cbs=[RecorderCB(), DivergenceGuardCB(), NanValidation()])
    learn.fit(3)  # a NaN in validation is not a diverged training run
    assert len(learn.recorder.history) == 3
    assert all(math.isnan(row["valid_loss"]) and math.isfinite(row["train_loss"]) for row in learn.recorder.history)


# ---- checkpoints and progress -----------------------------------------------------------


def test_checkpoint_saves_once_per_epoch(data):
    saved: list[tuple[int, torch.Tensor]] = []
    learn = make_learner(
        data,
        lr=1.0,
        cbs=[CheckpointCB(lambda model, epoch: saved.append((epoch, model.linear.weight.detach().clone())))],
    )
    learn.fit(3)
    assert [epoch for epoch, _ in saved] == [1, 2, 3]
    assert torch.equal(saved[-1][1], learn.model.linear.weight)
    assert not torch.equal(saved[0][1], saved[-1][1])


def test_progress_writes_a_header_and_one_line_per_epoch(data):
    out = io.StringIO()
    learn = make_learner(data, cbs=[RecorderCB(), ProgressCB(file=out, bar=False)])
    learn.fit(3)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 3
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "batch_accuracy", "time"]
    for i, line in enumerate(lines[1:], 1):
        cells = line.split()
        assert cells[0] == str(i) and cells[-1].endswith("s") and len(cells) == 5
        assert float(cells[2]) == pytest.approx(learn.recorder.history[i - 1]["valid_loss"], abs=1e-5)


def test_a_long_fit_shows_a_table_not_a_row_per_epoch(data):
    out = io.StringIO()
    learn = make_learner(data, cbs=[RecorderCB(), ProgressCB(file=out, bar=False)])
    learn.fit(140)  # the linear model's default on the mirror's 3s and 7s
    lines = out.getvalue().splitlines()
    shown = [int(line.split()[0]) for line in lines[2:]]
    assert "every 7th" in lines[0] and lines[1].split()[0] == "epoch"
    assert shown[:3] == [1, 2, 3] and shown[-1] == 140 and len(shown) <= 25  # all 140 recorded, 24 shown
    assert len(learn.recorder.history) == 140


# ---- augmentation -----------------------------------------------------------------------


class BatchTap(Callback):
    """Keeps a copy of every batch's inputs at its `order` in before_batch."""

    def __init__(self, order: int) -> None:
        self.order, self.name = order, f"tap{order + 100}"
        self.seen: list[tuple[bool, torch.Tensor]] = []

    def before_batch(self) -> None:
        self.seen.append((self.learn.training, self.learn.batch[0].clone()))


def test_random_affine_cb_changes_training_batches_only(data):
    before, after = BatchTap(-2), BatchTap(0)
    learn = make_learner(data, cbs=[RandomAffineCB(seed=1), before, after])
    learn.fit(2)
    assert len(before.seen) == len(after.seen) == 2 * (2 + 1)
    for (training, x0), (_, x1) in zip(before.seen, after.seen):
        assert x0.shape == x1.shape
        if training:
            assert not torch.allclose(x0, x1, atol=1e-3)
        else:
            assert torch.equal(x0, x1)


def test_random_affine_with_zero_limits_is_the_identity(digits_factory):
    images = torch.as_tensor(digits_factory(4, (3, 7), 0)[0]).float() / 255
    g = torch.Generator().manual_seed(0)
    out = random_affine(images, g, max_shift=0.0, max_rotate=0.0, max_scale=0.0)
    assert out.shape == images.shape
    torch.testing.assert_close(out, images, atol=1e-5, rtol=0)
    flat4 = images.unsqueeze(1)  # (N, 1, 28, 28) too
    torch.testing.assert_close(random_affine(flat4, g, 0.0, 0.0, 0.0), flat4, atol=1e-5, rtol=0)


def test_random_affine_is_reproducible_with_the_same_seed(digits_factory):
    images = torch.as_tensor(digits_factory(4, (3, 7), 0)[0]).float() / 255
    a = random_affine(images, torch.Generator().manual_seed(5))
    b = random_affine(images, torch.Generator().manual_seed(5))
    c = random_affine(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.allclose(a, images, atol=1e-3)
    # each image gets its own warp: identical inputs come out different
    same = images[:1].repeat(3, 1, 1)
    warped = random_affine(same, torch.Generator().manual_seed(0))
    assert not torch.allclose(warped[0], warped[1], atol=1e-3)


def test_learner_fit_does_not_mutate_the_callbacks_list_passed_in(data):
    cbs = [RecorderCB()]
    original = copy.copy(cbs)
    learn = make_learner(data, cbs=cbs)
    learn.fit(1, cbs=[EventRecorder()])
    assert cbs == original and [type(cb).__name__ for cb in learn.cbs] == ["ThreadPolicyCB", "RecorderCB", "MentorCB"]


# ---- interfaces for callbacks: the step, forward_context, all_reduce, search ------------


class ContextLog(Callback):
    """A forward_context that logs its entry and exit into a shared list, as `name`."""

    def __init__(self, log: list[str], name: str, order: int = 0) -> None:
        self.log, self.tag, self.order = log, name, order

    def forward_context(self):
        from contextlib import contextmanager

        @contextmanager
        def context():
            self.log.append(f"enter {self.tag}")
            try:
                yield
            finally:
                self.log.append(f"exit {self.tag}")

        return context()

    def after_predict(self) -> None:
        self.log.append(f"after_predict {self.tag}")

    def after_loss(self) -> None:
        self.log.append(f"after_loss {self.tag}")


def test_forward_contexts_wrap_the_forward_pass_and_the_loss_in_order(data):
    log: list[str] = []
    losses_inside: list[bool] = []

    def loss_func(preds, targets):
        losses_inside.append(log[-1] == "after_predict late")  # the loss runs inside both contexts
        return mnist_loss(preds, targets)

    learn = make_learner(data, bs=40, loss_func=loss_func)  # 40 train and 20 valid images: one batch each
    learn.fit(1, cbs=[ContextLog(log, "late", order=3), ContextLog(log, "early", order=-3)])
    one_batch = [
        "enter early",
        "enter late",
        "after_predict early",
        "after_predict late",
        "exit late",
        "exit early",
        "after_loss early",
        "after_loss late",
    ]
    assert log == one_batch * 2  # a training and a validation batch
    assert losses_inside == [True, True]


def test_forward_contexts_are_left_when_a_batch_is_cancelled_or_fails(data):
    log: list[str] = []
    cancel = EventRecorder(raises={"after_predict": (CancelBatchException, lambda learn: learn.training)})
    learn = make_learner(data, cbs=[ContextLog(log, "ctx", order=-1), cancel])
    learn.fit(1)
    assert log.count("enter ctx") == log.count("exit ctx") == 3  # 2 cancelled training + 1 validation batch
    assert cancel.names().count("after_cancel_batch") == 2
    log.clear()
    boom = EventRecorder(raises={"after_predict": (RuntimeError, lambda learn: True)})
    with pytest.raises(RuntimeError):
        make_learner(data, cbs=[ContextLog(log, "ctx", order=-1), boom]).fit(1)
    assert log == ["enter ctx", "after_predict ctx", "exit ctx"]


class HandStep(Callback):
    """Replaces the Learner's step for a fit, as CudaGraphCB does: the training batches at even `iter` are
    stepped here by hand, every other batch by the Learner's eager step."""

    def before_fit(self) -> None:
        self.by_hand = 0
        self.learn.step_batch = self.step

    def step(self) -> None:
        learn = self.learn
        if not learn.training or learn.iter % 2:
            learn.eager_step()
            return
        learn.preds = learn.model(learn.batch[0])
        learn.loss = learn.loss_func(learn.preds, learn.batch[1])
        learn.callback("after_loss")
        learn.loss.backward()
        learn.opt.step()
        learn.callback("after_step")
        learn.opt.zero_grad()
        self.by_hand += 1

    def cleanup_fit(self) -> None:
        self.learn.step_batch = self.learn.eager_step


def test_a_callback_may_replace_the_step_and_fall_back_to_the_eager_one(data):
    eager = make_learner(data, lr=0.5)
    eager.fit(2)
    hand = HandStep()
    learn = make_learner(data, lr=0.5, cbs=[hand])
    learn.fit(2)
    assert len(learn.dls.train) == 2 and hand.by_hand == 2  # the first training batch of each epoch
    for name, value in eager.model.state_dict().items():
        assert torch.equal(learn.model.state_dict()[name], value), name  # the same arithmetic, bit for bit
    untimed = lambda history: [{k: v for k, v in row.items() if "seconds" not in k} for row in history]  # noqa: E731
    assert untimed(learn.recorder.history) == untimed(eager.recorder.history)
    assert learn.step_batch == learn.eager_step  # put back for the next fit
    boom = EventRecorder(raises={"after_epoch": (RuntimeError, lambda learn: True)})
    with pytest.raises(RuntimeError):
        learn.fit(1, cbs=[boom])
    assert learn.step_batch == learn.eager_step  # cleanup_fit runs after an error too


class PretendRanks(Callback):
    """all_reduce as if `others` more processes had recorded `extra` (their sums, each)."""

    def __init__(self, extra: list[float]) -> None:
        self.extra, self.seen = torch.tensor(extra), []

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        self.seen.append(tensor.clone())
        return tensor + self.extra


def test_all_reduce_is_the_identity_without_a_callback_that_defines_it(data):
    learn = make_learner(data)
    t = torch.arange(3.0)
    assert learn.all_reduce(t) is t


def test_recorder_reduces_its_sums_once_per_epoch_in_one_tensor(data):
    plain = make_learner(data, lr=0.0, cbs=[RecorderCB()])  # lr 0: the same model every pass
    plain.fit(2)
    # 40 train and 20 valid images here; a second "rank" saw 10 each time, loss sum 5, all right
    ranks = PretendRanks([5.0, 10.0, 10.0])
    learn = make_learner(data, lr=0.0, cbs=[RecorderCB(), ranks])
    learn.fit(2)
    assert [tuple(t.shape) for t in ranks.seen] == [(3,)] * 4  # train and valid, two epochs
    for mine, theirs in zip(learn.recorder.history, plain.recorder.history):
        assert mine["train_loss"] == pytest.approx((theirs["train_loss"] * 40 + 5) / 50)
        assert mine["valid_loss"] == pytest.approx((theirs["valid_loss"] * 20 + 5) / 30)
        assert mine["batch_accuracy"] == pytest.approx((theirs["batch_accuracy"] * 20 + 10) / 30)
    assert ranks.seen[1][1] == 20  # the valid pass's own count, before the others' were added


def test_search_restores_weights_optimizer_and_callbacks_and_lets_others_stand_aside(data):
    saved: list[int] = []
    everywhere = EventRecorder()
    learn = make_learner(
        data, lr=1.0, cbs=[RecorderCB(), DivergenceGuardCB(), CheckpointCB(lambda m, e: saved.append(e)), everywhere]
    )
    learn.fit(1, lr=0.5)
    before = copy.deepcopy(learn.model.state_dict())
    opt, opt_state = learn.opt, copy.deepcopy(learn.opt.state_dict())
    history, cbs = copy.deepcopy(learn.recorder.history), list(learn.cbs)
    everywhere.events.clear()
    with search(learn):
        assert [type(cb) for cb in learn.cbs] == [
            ThreadPolicyCB,
            EventRecorder,
        ]  # recorder, guard, checkpoint stand aside
        learn.fit(2, lr=3.0)
        assert not all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    assert everywhere.names().count("after_step") == 2 * 2  # it ran: 2 epochs x 2 batches
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    assert learn.opt is opt and learn.lr == 0.5 and learn.cbs == cbs and learn.n_epoch == 1
    assert str(learn.opt.state_dict()) == str(opt_state)
    assert learn.recorder.history == history and saved == [1]
    with pytest.raises(RuntimeError), search(learn):
        learn.fit(1, cbs=[EventRecorder(raises={"after_step": (RuntimeError, lambda learn: True)})])
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    assert learn.cbs == cbs
