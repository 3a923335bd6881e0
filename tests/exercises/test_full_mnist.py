"""The ten-digit exercise on the offline mirror's digits: the reference reaches the target on the
held-out digits in the budget; one output per image, or too little training, fails with the reason."""

from __future__ import annotations

import json

import pytest

from digitlab.cli import main
from digitlab.exercises.full_mnist import BUDGET, N_HELD_OUT, TARGET, MnistExercise

TRAIN = """\
from torch import nn
from digitlab import SGD, Learner, cross_entropy, mnist_loss

def train_mnist(dls):
    model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, {n_out}))
    learn = Learner(dls, model, opt_func=SGD, loss_func={loss})
    learn.fit({epochs}, {lr})
    return {returned}
"""


@pytest.fixture(scope="module")
def mnist_home(tmp_path_factory, npm_sharing_home):
    home = npm_sharing_home(tmp_path_factory.mktemp("mnist") / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIGITLAB_HOME", str(home))
        mp.setenv("DIGITLAB_OFFLINE", "1")
        MnistExercise.load()  # decode the mirror into this cache once
    return home


@pytest.fixture
def offline(mnist_home, monkeypatch):
    monkeypatch.setenv("DIGITLAB_HOME", str(mnist_home))
    monkeypatch.setenv("DIGITLAB_OFFLINE", "1")


def _code(n_out=10, loss="cross_entropy", epochs=5, lr=0.5, returned="learn"):
    return TRAIN.format(n_out=n_out, loss=loss, epochs=epochs, lr=lr, returned=returned)


def test_the_held_out_digits_are_apart_from_the_training_ones(offline):
    data = MnistExercise.load()
    assert len(data.held_out_y) == N_HELD_OUT and set(data.held_out_y.tolist()) == set(range(10))
    train = {bytes(x.numpy()) for x in data.train_x} | {bytes(x.numpy()) for x in data.valid_x}
    assert not any(bytes(x.numpy()) in train for x in data.held_out_x[:200])


def test_the_reference_reaches_the_target_in_the_child_process(offline, tmp_path, capsys):
    (tmp_path / "mine.py").write_text(_code())
    assert main(["exercises", "check", str(tmp_path / "mine.py"), "--only", "train_mnist", "--json", "--quiet"]) == 0
    (verdict,) = json.loads(capsys.readouterr().out)["verdicts"]
    assert verdict["status"] == "passed", verdict["feedback"]
    accuracy = float(verdict["feedback"].split()[0])
    assert accuracy >= TARGET and f"on {N_HELD_OUT:,} held-out digits" in verdict["feedback"]
    assert verdict["payload"] == {}  # the predictions stay out of reports
    assert verdict["seconds"] < BUDGET


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (_code(n_out=1, epochs=0), "ten digits need ten scores per image"),
        (_code(loss="mnist_loss", epochs=1), "use cross_entropy"),
        (_code(epochs=1, lr=0.0005), "the target is 0.9"),
        (_code(epochs=1, returned="None"), "return the trained model"),
    ],
)
def test_common_mistakes_fail_with_the_reason(offline, verdict, code, words):
    result = verdict(code, "train_mnist")
    assert result.status == "failed" and words in result.feedback, result.feedback


def test_missing_data_is_the_checkers_error_not_the_learners(monkeypatch):
    from digitlab.errors import DataError
    from digitlab.exercises import check
    from digitlab.exercises.feedback import CheckerError

    def no_data(*args, **kwargs):
        raise DataError("mnist: no cached copy and no network")

    monkeypatch.setattr("digitlab.exercises.full_mnist.load_dataset", no_data)
    with pytest.raises(CheckerError, match="the ten-digit exercise needs the mnist dataset: mnist: no cached copy"):
        check("train_mnist", lambda dls: None)
