"""`--threads auto`: the free cores, from the affinity, a cgroup quota and what other processes use now;
chosen before the fit and again between epochs."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F

import digitlab.train.thread_policy as thread_policy
from digitlab.cli import main
from digitlab.core.threads import (
    ThreadChoice,
    busy_ticks,
    cgroup_quota,
    choose_threads,
    others_busy,
    threads_choice,
    usable_cores,
)
from digitlab.models import Linear
from digitlab.train.dataloader import DataLoaders
from digitlab.train.learner import Callback, Learner
from digitlab.train.optim import SGD
from digitlab.train.thread_policy import ThreadPolicyCB


@pytest.mark.parametrize(
    ("usable", "busy", "threads"),
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 2.0, 1), (2, 5.0, 1), (8, 2.6, 5), (4, None, 4)],
)
def test_the_free_cores_rounded_and_at_least_one(usable, busy, threads):
    assert threads_choice(usable, busy).threads == threads


def test_a_cgroup_quota_in_either_version(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota(tmp_path) is None
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    assert cgroup_quota(tmp_path) == 0.5
    assert cgroup_quota(tmp_path / "nothing-here") is None
    assert usable_cores() >= 1


def test_busy_ticks_count_only_our_cores_and_not_idle():
    stat = (
        "cpu  30 0 30 100 10 0 0 0 0 0\n"
        "cpu0 10 0 10 50 5 0 0 0 0 0\n"  # 20 busy ticks
        "cpu1 20 0 20 50 5 0 0 0 0 0\n"  # 40 busy ticks
        "intr 12345\n"
    )
    assert busy_ticks(stat, {0}) == 20
    assert busy_ticks(stat, {1}) == 40
    assert busy_ticks(stat, None) == 60


def test_a_busy_process_beside_us_is_seen():
    quiet_enough = others_busy(0.3)
    assert quiet_enough is not None and quiet_enough >= 0
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)  # started and spinning
        busy = others_busy(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and busy >= 0.6  # a whole core, less what the scheduler gives others


def test_our_own_work_is_not_counted_as_busy():
    """The policy subtracts this process's CPU time: our own threads spinning are not other work."""
    import threading

    before = others_busy(0.3)  # what else the machine does (CI may be busy): a baseline on each side
    stop = time.monotonic() + 0.6

    def spin() -> None:
        while time.monotonic() < stop:
            pass

    thread = threading.Thread(target=spin)
    thread.start()
    busy = others_busy(0.4)
    thread.join()
    after = others_busy(0.3)
    assert busy is not None and before is not None and after is not None
    assert busy < max(before, after) + 0.5  # our spinning thread (a whole core) is not in it


class FakeClock:
    """thread_policy's clock, moved only by the test: epochs take no time unless a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(thread_policy, "time", fake)
    return fake


def _learner() -> Learner:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 28, 28, generator=g), torch.randint(0, 2, (64,), generator=g)
    dls = DataLoaders.from_tensors(x, y, x[:16], y[:16], batch_size=16, seed=0)
    return Learner(dls, Linear(n_out=2), F.cross_entropy, SGD, lr=0.1, default_cbs=False)  # the policy alone


def test_the_callback_sets_threads_before_the_fit_and_again_between_epochs(monkeypatch, clock):
    readings = iter([ThreadChoice(2, 2, 0.1), ThreadChoice(1, 2, 1.2), ThreadChoice(1, 2, 1.1), ThreadChoice(2, 2, 0)])
    seen: list[int] = []
    policy = ThreadPolicyCB(choose=lambda: next(readings))
    monkeypatch.setattr(thread_policy, "RESAMPLE_SECONDS", 0.0)  # look before every epoch
    before = torch.get_num_threads()
    try:
        learn = _learner()
        learn.add_cbs([policy])

        class Spy(Callback):
            order = 0

            def before_epoch(self) -> None:
                if self.learn.training:
                    seen.append(torch.get_num_threads())

        learn.add_cbs([Spy()])
        learn.fit(3)
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1, 2]  # epoch 1 with the second reading: the first was before the fit
    assert [(epoch, c.threads) for epoch, c in policy.choices] == [(0, 2), (0, 1), (2, 2)]
    assert "from epoch 3: 2 (2 usable cores, 0.0 busy with other work)" in policy.why


def test_the_callback_looks_at_most_every_few_seconds(clock):
    calls = []
    policy = ThreadPolicyCB(choose=lambda: calls.append(1) or ThreadChoice(1, 1, 0.0))
    before = torch.get_num_threads()
    try:
        learn = _learner()
        learn.add_cbs([policy])
        learn.fit(5)  # five epochs, no time on the clock: one look (before the fit), not six
    finally:
        torch.set_num_threads(before)
    assert len(calls) == 1


def test_tiny_epochs_that_jitter_are_not_taken_for_load(clock):
    """The book's linear model: epochs of ~2 ms whose times vary 2x. Looking after each 'slow' one cost
    0.05 s a look, 140 times (a 0.3 s fit took 5 s): short epochs wait for the every-2-s look."""
    calls = []
    policy = ThreadPolicyCB(choose=lambda: calls.append(1) or ThreadChoice(1, 1, 0.0))

    class Jitter(Callback):
        order = 0

        def before_epoch(self) -> None:
            if self.learn.training:
                clock.now += 0.002 if self.learn.epoch % 2 else 0.004  # every other epoch twice as slow

    before = torch.get_num_threads()
    try:
        learn = _learner()
        learn.add_cbs([policy, Jitter()])
        learn.fit(40)  # 0.12 s in all: under RESAMPLE_SECONDS, so the look before the fit is the only one
    finally:
        torch.set_num_threads(before)
    assert len(calls) == 1


def test_threads_is_a_number_or_auto(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", "--threads", "many"])
    assert exit.value.code == 2 and "a number of threads or auto" in capsys.readouterr().err


def _train_json(tmp_path, png_tree, capsys, *extra: str) -> dict:
    png_tree(tmp_path / "sample", {"train": 6, "valid": 3})
    before = torch.get_num_threads()
    try:
        argv = ["train", "--data", str(tmp_path / "sample"), "--epochs", "1", *extra]
        assert main([*argv, "--out", str(tmp_path / "run"), "--json", "--quiet"]) == 0
    finally:
        torch.set_num_threads(before)
    return json.loads(capsys.readouterr().out)


def test_auto_is_the_default_and_the_json_says_why(tmp_path, png_tree, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS")
    answer = _train_json(tmp_path, png_tree, capsys)
    assert answer["config"]["threads"] == "auto"
    assert "usable cores" in answer["threads_why"] and 1 <= answer["threads"] <= usable_cores()


def test_omp_num_threads_is_the_users_choice_and_auto_obeys_it(tmp_path, png_tree, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    answer = _train_json(tmp_path, png_tree, capsys, "--threads", "auto")
    assert answer["threads"] == 1 and answer["threads_why"] == "1 (OMP_NUM_THREADS=1 in the environment)"
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")  # ignored, as OpenMP ignores it
    assert choose_threads(0.01).fixed_by is None


def test_an_epoch_that_slows_down_is_looked_at_at_once(clock):
    """Load arriving mid-run: the epoch after a slow one is sampled at once, not RESAMPLE_SECONDS later."""
    calls: list[int] = []
    readings = iter([ThreadChoice(2, 2, 0.0), ThreadChoice(1, 2, 1.0)])

    def choose() -> ThreadChoice:
        calls.append(1)
        return next(readings)

    policy = ThreadPolicyCB(choose=choose)

    class SlowThirdEpoch(Callback):
        order = 0

        def before_epoch(self) -> None:
            if self.learn.training and self.learn.epoch == 2:
                clock.now += 1.0  # an epoch far longer than the others (the machine got busy), under 2 s

    before = torch.get_num_threads()
    try:
        learn = _learner()
        learn.add_cbs([policy, SlowThirdEpoch()])
        learn.fit(4)
    finally:
        torch.set_num_threads(before)
    assert len(calls) == 2  # before the fit, and before epoch 4 (after the slow one)
    assert [(epoch, c.threads) for epoch, c in policy.choices] == [(0, 2), (3, 1)]


def test_long_inference_looks_at_the_load_between_chunks(monkeypatch):
    """Between the chunks of a long inference the threads follow the load, at most every 2 s: a machine
    that gets busy mid-evaluation is seen at the next chunk that is due."""
    from digitlab.artifacts import inference
    from digitlab.artifacts.card import Normalization
    from digitlab.core.threads import LoadFollower

    now = [0.0]
    busy = [0.0]
    applied: list[int] = []

    def choose() -> ThreadChoice:
        return threads_choice(2, busy[0])

    def forward(x: torch.Tensor) -> torch.Tensor:  # each chunk: 1.5 s of (fake) work; the load comes at 2 s
        now[0] += 1.5
        busy[0] = 1.0 if now[0] >= 2 else 0.0
        return x.flatten(1)[:, :2]

    follow = LoadFollower(applied.append, choose=choose, clock=lambda: now[0])
    monkeypatch.setattr(inference, "BETWEEN_CHUNKS", [follow])
    model = torch.nn.Module()
    model.forward = forward  # type: ignore[method-assign]
    norm = Normalization(scale=1 / 255, mean=0.0, std=1.0)
    inference.model_outputs(model, torch.zeros(5 * inference.CHUNK, 28, 28, dtype=torch.uint8), norm)
    # chunks start at 0, 1.5, 3, 4.5, 6 s: sampled at 0 (2 threads), 3 (busy: 1), 4.5 is not due, 6 (1 again)
    assert applied == [2, 1] and len(follow.choices) == 2


def test_a_command_that_runs_a_model_follows_the_load_between_chunks(tmp_path, png_tree, capsys, monkeypatch):
    from digitlab.artifacts import inference
    from digitlab.core.threads import LoadFollower

    monkeypatch.setattr(inference, "BETWEEN_CHUNKS", [])
    png_tree(tmp_path / "sample", {"train": 6, "valid": 3})
    assert main(["baseline", "--data", str(tmp_path / "sample"), "--json"]) == 0
    capsys.readouterr()
    assert len(inference.BETWEEN_CHUNKS) == 1 and isinstance(inference.BETWEEN_CHUNKS[0], LoadFollower)
