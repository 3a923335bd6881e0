"""lr_find: rising rates, stops on divergence, runs on the learner itself (its device, precision and
augmentation callbacks included), leaves it as it was, suggests a sane lr."""

from __future__ import annotations

import copy

import pytest
import torch

from digitlab.models import build_model
from digitlab.train.accelerate import MixedPrecisionCB
from digitlab.train.augment import RandomAffineCB
from digitlab.train.callbacks import DeviceCB, DivergenceGuardCB, RecorderCB, TrainingDiverged
from digitlab.train.dataloader import DataLoaders
from digitlab.train.learner import Callback, Learner
from digitlab.train.losses import cross_entropy
from digitlab.train.lr_finder import LRFinderCB, lr_find
from digitlab.train.resume import CheckpointCB

# validates on its training data on purpose (nothing here measures generalisation): the mentor says so
pytestmark = pytest.mark.filterwarnings("ignore::digitlab.train.mentor.MentorWarning")


def _learner(digits_factory, noisy_labels: bool = False, cbs=(), guard_factor: float = 1e4) -> Learner:
    images, labels = digits_factory(40, classes=(0, 1, 2))
    x = torch.from_numpy(images).float() / 255
    y = torch.from_numpy(labels).long()
    if noisy_labels:  # not separable: large rates must blow the loss up rather than drive it to 0
        y = torch.randint(0, 3, y.shape, generator=torch.Generator().manual_seed(0))
    dls = DataLoaders.from_tensors(x, y, x, y, batch_size=16, seed=0)
    torch.manual_seed(0)
    model = build_model("linear", 3)
    return Learner(dls, model, cross_entropy, lr=0.1, cbs=[RecorderCB(), DivergenceGuardCB(guard_factor), *cbs])


def test_lr_find_spans_rates_and_stops_at_divergence(digits_factory):
    learn = _learner(digits_factory, noisy_labels=True)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    found = lr_find(learn, start=1e-5, end=1e4, num=80)
    assert all(b > a for a, b in zip(found.lrs, found.lrs[1:]))  # rising
    assert len(found.lrs) == len(found.losses) <= 80
    assert found.lrs[0] == 1e-5 and found.lrs[-1] < 1e4  # stopped by the blow-up before the end
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    learn.fit(1)  # the learner still trains normally afterwards
    assert len(learn.recorder.history) == 1


def test_lr_find_runs_over_several_epochs_when_num_exceeds_batches(digits_factory):
    learn = _learner(digits_factory)  # 120 images / 16 = 8 batches per epoch
    found = lr_find(learn, start=1e-6, end=1e-3, num=30)  # small rates: no divergence, all 30 steps
    assert len(found.lrs) == len(found.losses) == 30
    assert found.lrs[0] == 1e-6 and found.lrs[-1] == pytest.approx(1e-3)


def test_suggestion_is_where_the_loss_falls_fastest(digits_factory):
    found = lr_find(_learner(digits_factory), start=1e-5, end=1e4, num=80)
    assert 1e-3 < found.suggestion < 10  # separable strokes: the loss falls fastest around 0.01-1
    i = found.lrs.index(found.suggestion)
    assert found.losses[i + 5] < found.losses[i]  # the loss is still falling just after it


class Seen(Callback):
    """What the finder's batches looked like at order 0: after device, precision and augmentation."""

    def __init__(self) -> None:
        self.training_batches, self.pred_dtypes = 0, set()

    def before_batch(self) -> None:
        self.training_batches += self.learn.training

    def after_predict(self) -> None:
        self.pred_dtypes.add(self.learn.preds.dtype)


class CountingDeviceCB(DeviceCB):
    def __init__(self) -> None:
        super().__init__("cpu")
        self.batches = 0

    def before_batch(self) -> None:
        self.batches += 1
        super().before_batch()


class CountingAffineCB(RandomAffineCB):
    def __init__(self) -> None:
        super().__init__(seed=0)
        self.warped = 0

    def before_batch(self) -> None:
        before = self.learn.batch[0]
        super().before_batch()
        self.warped += not torch.equal(before, self.learn.batch[0])


def test_lr_find_runs_the_learners_callbacks_and_leaves_the_learner_as_it_was(digits_factory):
    saved: list[int] = []
    device, affine, seen = CountingDeviceCB(), CountingAffineCB(), Seen()
    cbs = [device, affine, MixedPrecisionCB(), seen, CheckpointCB(lambda model, epoch: saved.append(epoch))]
    learn = _learner(digits_factory, noisy_labels=True, cbs=cbs)
    learn.fit(1)  # an optimizer with momentum buffers, a recorded epoch, a checkpoint
    weights = copy.deepcopy(learn.model.state_dict())
    opt, opt_state, lr = learn.opt, copy.deepcopy(learn.opt.state_dict()), learn.lr
    history, callbacks = copy.deepcopy(learn.recorder.history), list(learn.cbs)
    device.batches = affine.warped = 0
    seen.__init__()

    found = lr_find(learn, start=1e-5, end=1e4, num=80)

    steps = len(found.losses)
    assert 3 < steps < 80  # the loss exploded: the finder, not the guard (standing aside), ended it
    assert device.batches == affine.warped == seen.training_batches == steps  # they ran at every step
    assert seen.pred_dtypes == {torch.bfloat16}  # under the learner's autocast
    assert all(torch.equal(weights[k], v) for k, v in learn.model.state_dict().items())
    assert learn.opt is opt and str(learn.opt.state_dict()) == str(opt_state) and learn.lr == lr
    assert learn.recorder.history == history and saved == [1]  # not recorded, not checkpointed
    assert learn.cbs == callbacks and not hasattr(learn, "lr_finder")
    assert learn.model.training is False  # as fit(1) left it (validation last)


def test_lr_find_is_not_stopped_by_the_divergence_guard(digits_factory):
    learn = _learner(digits_factory, noisy_labels=True, guard_factor=1.01)  # raises at the first rise
    found = lr_find(learn, start=1e-5, end=1e4, num=80)
    assert len(found.losses) > 10 and found.lrs[-1] > 1  # the search went on to large rates
    with pytest.raises(TrainingDiverged):  # the same search as a plain fit: the guard stops it
        learn.fit(5, lr=1e-5, cbs=[LRFinderCB(1e-5, 1e4, 80)])


def test_lr_find_probes_with_the_learners_device_callback(digits_factory, monkeypatch):
    """The probe is the learner itself in `search()`: its DeviceCB moves the model where the batches are
    (the issue's crash on CUDA: a probe Learner without the device callback kept the model on the CPU)."""
    moved: list[torch.device] = []
    original = DeviceCB.before_fit

    def spy(self: DeviceCB) -> None:
        original(self)
        moved.append(next(self.learn.model.parameters()).device)

    monkeypatch.setattr(DeviceCB, "before_fit", spy)
    seen: list[list[str]] = []

    class Spy(Callback):
        def before_batch(self) -> None:
            seen.append([type(cb).__name__ for cb in self.learn.cbs])

    learn = _learner(digits_factory, cbs=[DeviceCB("cpu"), Spy()])
    lr_find(learn, num=4)
    assert moved == [torch.device("cpu")] and seen and all("DeviceCB" in names for names in seen)
