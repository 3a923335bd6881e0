"""Every exercise: the reference solution passes its own check, and the common mistakes fail it with
feedback that names the mistake (checked in this process; the sandbox has its own tests)."""

from __future__ import annotations

import json

import pytest
import torch

from digitlab.exercises import exercises
from digitlab.exercises.runner import run_exercise
from digitlab.exercises.source import read_cells, run_cells

IMPORTS = "import random\nimport torch\nfrom torch import nn\n"

# (exercise, learner's wrong code, words the feedback must contain)
MISTAKES = [
    ("stack_images", "def stack_images(images): return torch.cat(images).float()/255", "torch.cat joins them"),
    ("stack_images", "def stack_images(images): return torch.stack(images)", "divide by 255"),
    ("rank_and_shape", "def rank_and_shape(t): return len(t), t.shape", "len(t) is the size of the first axis"),
    ("rank_and_shape", "def rank_and_shape(t): return t.numel(), t.shape", "that is the number of elements"),
    ("double_odds", "def double_odds(a): return [2*o for o in a if o % 2 == 0]", "those are the even numbers"),
    ("double_odds", "def double_odds(a): return [x for x in (2*o for o in a) if x % 2 == 1]", "2*o is always even"),
    ("double_odds", "def double_odds(a): return (2*o for o in a if o % 2)", "[square brackets]"),
    ("double_odds", "def double_odds(): return [2*o for o in range(10) if o % 2]", "the arguments that"),
    ("double_and_select", "def double_and_select(t): return (t*2)[1:][1:]", "slices the rows twice"),
    ("double_and_select", "def double_and_select(t): return (t*2)[2:, 2:]", "you selected one number"),
    ("double_and_select", "def double_and_select(t): return t[1:, 1:]", "not doubled"),
    ("double_and_select", "def double_and_select(t): return (t*2)[-2:]", "the last two rows, all three columns"),
    (
        "double_and_select",
        "def double_and_select(t): return (torch.arange(1, 10).view(3, 3) * 2)[1:, 1:]",
        "work on the tensor t you are given",
    ),
    ("zip_pairs", "def zip_pairs(a, b): return zip(a, b)", "wrap it in list(...)"),
    ("zip_pairs", "def zip_pairs(a, b): return [(a[i], b[i]) for i in range(len(a))]", "IndexError"),
    ("l1_and_rmse", "def l1_and_rmse(a, b): return (a-b).abs().mean(), ((a-b)**2).mean()", "mean squared error"),
    ("l1_and_rmse", "def l1_and_rmse(a, b): return (a-b).abs().mean(), ((a-b)**2).sqrt().mean()", "equals the L1"),
    ("l1_and_rmse", "def l1_and_rmse(a, b): return (a-b).mean(), ((a-b)**2).mean().sqrt()", "take .abs()"),
    (
        "mnist_distance",
        "def mnist_distance(a, b): return (a-b).abs().mean(-1)",
        "returns shape (1010, 28) — you averaged one axis; the book averages the last two, mean((-1, -2))",
    ),
    ("mnist_distance", "def mnist_distance(a, b): return (a-b).abs().mean()", "one number for 1010 images"),
    ("mnist_distance", "def mnist_distance(a, b): return (a-b).abs().mean((1, 2))", "fails on a single (28, 28)"),
    ("mnist_distance", "def mnist_distance(a, b): return (a-b).mean((-1, -2))", "take .abs() before the mean"),
    ("mnist_distance", "def mnist_distance(a, b): return ((a-b)**2).mean((-1, -2)).sqrt()", "RMSE or MSE"),
    ("is_3", "def is_3(x): return mnist_distance(x, mean3) > mnist_distance(x, mean7)", "nearer the ideal 7"),
    (
        "is_3",
        "def is_3(x):\n    if mnist_distance(x, mean3) < mnist_distance(x, mean7): return True\n    return False",
        "used `if`, `and`, `or` or `not` on a tensor",
    ),
    ("is_3", "def is_3(img, a, b): return mnist_distance(img, a) < mnist_distance(img, b)", "rename it"),
    (
        "is_3",
        "def mnist_distance(a, b): return (a-b).mean((-1, -2))\n"
        "def is_3(x): return mnist_distance(x, mean3) < mnist_distance(x, mean7)",
        "(it uses your own mnist_distance: check it too)",
    ),
    ("init_params", "def init_params(size, std=1.0): return torch.randn(size).requires_grad_()*std", "not a leaf"),
    ("init_params", "def init_params(size, std=1.0): return torch.randn(size)*std", "does not track gradients"),
    ("init_params", "def init_params(size, std=1.0): return (torch.rand(size)*std).requires_grad_()", "torch.rand"),
    ("init_params", "def init_params(size, std=1.0): return torch.randn(size).requires_grad_()", "multiply by std"),
    ("linear1", "def linear1(xb): return xb@weights", "left out the bias"),
    ("linear1", "def linear1(xb): return weights@xb + bias", "inner sizes differ (line 4 of learner.py"),
    (
        "mnist_loss",
        "def mnist_loss(predictions, targets):\n    return torch.where(targets==1, 1-predictions, predictions).mean()",
        "squash them with .sigmoid()",
    ),
    (
        "mnist_loss",
        "def mnist_loss(p, t):\n    p = p.sigmoid()\n    return torch.where(t==1, p, 1-p).mean()",
        "highest when the predictions are right",
    ),
    (
        "mnist_loss",
        "def mnist_loss(p, t):\n    p = p.sigmoid()\n    return torch.where(t==1, 1-p, p)",
        "a loss is one number",
    ),
    ("batch_accuracy", "def batch_accuracy(xb, yb): return ((xb > 0.5) == yb).float().mean()", "compared the raw"),
    ("batch_accuracy", "def batch_accuracy(xb, yb): return ((xb.sigmoid() > 0.5) == yb).sum()", "a count"),
    (
        "batches",
        "def batches(c, bs, shuffle=False):\n    c = list(c)\n"
        "    return [c[i:i+bs] for i in range(0, len(c) - bs + 1, bs)]",
        "lost the last 2 items",
    ),
    (
        "batches",
        "def batches(c, bs, shuffle=False):\n    c = list(c)\n    if shuffle: c = random.choices(c, k=len(c))\n"
        "    return [c[i:i+bs] for i in range(0, len(c), bs)]",
        "some items came twice",
    ),
    (
        "batches",
        "def batches(c, bs, shuffle=False):\n    c = list(c)\n    out = [c[i:i+bs] for i in range(0, len(c), bs)]\n"
        "    if shuffle:\n        for b in out: random.shuffle(b)\n    return out",
        "inside each batch only",
    ),
    (
        "train_epoch",
        "def train_epoch(model, lr, params):\n    for xb, yb in dl:\n        calc_grad(xb, yb, model)\n"
        "        for p in params: p.data -= p.grad*lr",
        "never reset",
    ),
    (
        "train_epoch",
        "def train_epoch(model, lr, params):\n    for xb, yb in dl:\n        calc_grad(xb, yb, model)\n"
        "        for p in params:\n            p.data += p.grad*lr\n            p.grad.zero_()",
        "moved uphill",
    ),
    (
        "train_epoch",
        "def train_epoch(model, lr, params):\n    for xb, yb in dl:\n        calc_grad(xb, yb, model)\n"
        "        for p in params:\n            p -= p.grad*lr",
        "update p.data",
    ),
    (
        "validate_epoch",
        "def validate_epoch(model):\n    for xb, yb in valid_dl:\n        acc = batch_accuracy(model(xb), yb)\n"
        "        return round(acc.item(), 4)",
        "the `return` inside the loop",
    ),
    (
        "train_epoch",
        "def mnist_loss(p, t): return torch.where(t==1, 1-p, p).mean()\n"
        "def calc_grad(xb, yb, model): mnist_loss(model(xb), yb).backward()\n"
        "def train_epoch(model, lr, params):\n    for xb, yb in dl:\n        calc_grad(xb, yb, model)\n"
        "        for p in params:\n            p.data -= p.grad*lr\n            p.grad.zero_()",
        "(it uses your own calc_grad and mnist_loss: check them too)",
    ),
    (
        "validate_epoch",
        "def validate_epoch(model):\n    return [batch_accuracy(model(xb), yb) for xb, yb in valid_dl]",
        "return the mean of the batch accuracies",
    ),
    (
        "BasicOptim",
        "class BasicOptim:\n    def __init__(self, params, lr): self.params, self.lr = params, lr\n"
        "    def step(self):\n        for p in self.params: p.data -= p.grad.data * self.lr\n"
        "    def zero_grad(self):\n        for p in self.params: p.grad = None",
        "generator that can be read only once",
    ),
    (
        "BasicOptim",
        "class BasicOptim:\n    def __init__(self, params, lr): self.params, self.lr = list(params), lr\n"
        "    def step(self):\n        for p in self.params: p.data -= p.grad.data * self.lr\n"
        "    def zero_grad(self): pass",
        "gradients are still there",
    ),
    (
        "BasicOptim",
        "class BasicOptim:\n    def __init__(self, params, lr): self.params, self.lr = list(params), lr\n"
        "    def step(self):\n        for p in self.params: p.data += p.grad.data * self.lr\n"
        "    def zero_grad(self): pass",
        "moved the parameters uphill",
    ),
    ("simple_net", "simple_net = nn.Sequential(nn.Linear(28*28, 30), nn.Linear(30, 1))", "put nn.ReLU() between"),
    ("simple_net", "simple_net = nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 10))", "nn.Linear(30, 1)"),
    ("simple_net", "simple_net = nn.Sequential(nn.Linear(28, 30), nn.ReLU(), nn.Linear(30, 1))", "784 pixels"),
    (
        "simple_net",
        "def simple_net(xb):\n    res = (xb@w1 + b1).max(torch.tensor(0.0))\n"
        "    return (res@w2 + b2).max(torch.tensor(0.0))",
        "never negative",
    ),
    ("simple_net", "def simple_net(xb):\n    return (xb@w1 + b1)@w2 + b2", "put ReLU between"),
]


@pytest.fixture(scope="module")
def reference(submissions):
    """The book-style solutions file, run once."""
    cells = read_cells(submissions / "reference.py")
    return run_cells(cells)


@pytest.mark.parametrize("name", [n for n in exercises() if n != "train_mnist"])
def test_the_reference_solution_passes(reference, name):
    verdict = run_exercise(exercises()[name], reference)
    assert verdict.passed, verdict.feedback


def test_every_exercise_has_two_mistakes_that_fail():
    counts = {n: sum(m[0] == n for m in MISTAKES) for n in exercises() if n != "train_mnist"}
    assert min(counts.values()) >= 2, counts  # train_mnist's are in test_full_mnist.py


@pytest.mark.parametrize(("name", "code", "words"), MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_common_mistake_fails_with_its_feedback(verdict, name, code, words):
    verdict = verdict(IMPORTS + code, name)
    assert verdict.status == "failed"
    assert words in verdict.feedback, verdict.feedback


def test_the_checks_agree_with_the_librarys_own_functions():
    """The checks themselves pass digitlab's implementations (the runner refuses them as a learner's work)."""
    from digitlab import BasicOptim, batch_accuracy, init_params, linear1, mnist_distance, mnist_loss, simple_net
    from digitlab.exercises.registry import CheckContext

    for name, obj in [
        ("mnist_distance", mnist_distance),
        ("mnist_loss", mnist_loss),
        ("batch_accuracy", batch_accuracy),
        ("init_params", init_params),
        ("linear1", linear1),
        ("BasicOptim", BasicOptim),
        ("simple_net", simple_net()),
    ]:
        torch.manual_seed(0)
        exercises()[name].check(obj, CheckContext(files={}))  # raises Wrong (with why) if they disagree


def test_check_in_a_notebook_finds_the_function_by_name(capsys):
    notebook = {}
    exec(
        "from digitlab.exercises import check\n"
        "def double_odds(a): return [2*o for o in a]\n"
        "verdict = check('double_odds')\n",
        notebook,
    )
    assert notebook["verdict"].status == "failed" and repr(notebook["verdict"]) == "Verdict(double_odds: failed)"
    assert capsys.readouterr().out.startswith("✗ double_odds (")  # printed once, in words


def test_gradients_switched_off_by_the_file_are_on_during_a_check(verdict):
    code = (
        "torch.set_grad_enabled(False)\n"
        "def mnist_loss(p, t):\n    p = p.sigmoid()\n    return torch.where(t==1, 1-p, p).mean()\n"
    )
    assert verdict(IMPORTS + code, "mnist_loss").passed
    assert torch.is_grad_enabled()  # and the file's switch did not leak into this process


def test_the_librarys_own_functions_are_not_the_learners_work(verdict):
    copied = """
    import functools
    from digitlab import mnist_distance, mnist_loss
    from digitlab.exercises import checks_baseline
    batch_accuracy = functools.partial(__import__("digitlab").batch_accuracy)
    """
    for name in ("mnist_distance", "mnist_loss", "batch_accuracy"):
        result = verdict(copied, name)
        assert result.status == "failed" and "uses digitlab's solution" in result.feedback, (name, result)
    own = verdict("def mnist_distance(a, b): return (a - b).abs().mean((-1, -2))", "mnist_distance")
    assert own.passed  # written by the learner: checked as always


@pytest.mark.parametrize("seed", [1, 2_000_000_011])
def test_every_probe_confirms_the_reference_and_nothing_else(reference, seed):
    """A probe (run in the child, judged in the checker) agrees with the book's answer on fresh inputs,
    and refuses what a forger or a broken child could send instead."""
    from digitlab.exercises import exercises

    probed = [e for e in exercises().values() if e.probe is not None]
    assert {e.name for e in probed} == set(exercises()) - {"train_mnist"}  # train_mnist is scored where the labels are
    for exercise in probed:
        observation = json.loads(json.dumps(exercise.probe.observe(reference.namespace[exercise.name], seed)))
        assert exercise.probe.disagrees(observation, seed) is None, exercise.name
        assert exercise.probe.disagrees(observation, seed + 1) is not None, exercise.name  # another seed's inputs
        for junk in (None, [], "passed", {"error": "x"}, [[0.5]], {"out": [1.0]}):
            assert exercise.probe.disagrees(junk, seed) is not None, (exercise.name, junk)


@pytest.mark.parametrize("activation", ["ReLU", "LeakyReLU", "GELU", "Tanh"])
def test_a_simple_net_module_with_another_nonlinearity_is_confirmed(activation):
    from torch import nn

    from digitlab.exercises import get

    net = nn.Sequential(nn.Linear(784, 30), getattr(nn, activation)(), nn.Linear(30, 1))
    probe = get("simple_net").probe
    assert probe.disagrees(json.loads(json.dumps(probe.observe(net, 5))), 5) is None
