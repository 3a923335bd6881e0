"""`digitlab exercises quiz`: the questionnaire one question at a time, answers on request.

Questions with a computable answer show it computed here (the 3x3 selection, view, @, backward,
a learning rate too high, why accuracy gives no gradient), and the sigmoid and ReLU questions draw
their figure (`--figures DIR`).
"""

from __future__ import annotations

import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.outputs import check_owned_folder, make_folder
from ..errors import DigitlabError
from ..models import init_params
from ..plots.sgd import plot_activations, sgd_quadratic
from ..train.dataloader import DataLoader
from .questionnaire import QUESTIONS


def _accuracy_has_no_gradient() -> str:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(100, 5, generator=g), torch.randint(0, 2, (100,), generator=g).float()
    w = torch.randn(5, generator=g, requires_grad=True)

    def accuracy(w: torch.Tensor) -> float:
        return float(((x @ w > 0).float() == y).float().mean())

    nudged = w.detach() + 1e-3
    tracked = ((x @ w > 0).float() == y).float().mean().requires_grad
    return (
        f"accuracy {accuracy(w.detach()):.2f}, after nudging every weight by 0.001: {accuracy(nudged):.2f} "
        f"(unchanged); does the accuracy carry a gradient? {tracked}"
    )


def _loop_against_tensor() -> str:
    numbers = torch.rand(100_000)
    values = numbers.tolist()
    loop = min(timeit.repeat(lambda: [v * 2 for v in values], number=1, repeat=5))  # best of 5: the least noise
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a fair race with the loop, and no thread start-up in a tiny operation
    try:
        tensor = min(timeit.repeat(lambda: numbers * 2, number=1, repeat=5))
    finally:
        torch.set_num_threads(threads)
    return (
        f"doubling 100,000 numbers (best of 5, one thread, timed just now): a Python loop {1000 * loop:.2f} ms, "
        f"one tensor operation {1000 * tensor:.3f} ms"
    )


def _without_bias() -> str:
    x, w = torch.zeros(1, 4), torch.randn(4, 1)
    without, with_bias = (x @ w).item(), (x @ w + 0.7).item()
    return f"an all-zero input: x @ w = {without:g} whatever w is; x @ w + b with b = 0.7 gives {with_bias:g}"


def _relu_two_ways() -> str:
    x = torch.linspace(-2, 2, 5)
    same = torch.equal(F.relu(x), nn.ReLU()(x))
    return f"F.relu(x) and nn.ReLU()(x) on {x.tolist()}: {F.relu(x).tolist()} both (equal: {same})"


def _dataloader_range() -> str:
    torch.manual_seed(0)
    batches = [b.tolist() for b in DataLoader(range(15), batch_size=5, shuffle=True)]
    return f"list(DataLoader(range(15), batch_size=5, shuffle=True)) = {batches}"


def _init_params_spread() -> str:
    torch.manual_seed(0)
    t = init_params((28 * 28, 1))
    values = t.detach()
    return f"init_params((784, 1)): mean {float(values.mean()):.3f}, std {float(values.std()):.3f}, {t.requires_grad=}"


def _backward_accumulates() -> str:
    x = torch.tensor(3.0, requires_grad=True)
    (x**2).backward()
    first = float(x.grad)  # type: ignore[arg-type]
    (x**2).backward()
    return f"x = 3: after (x**2).backward() x.grad = {first:g}; after a second backward() x.grad = {float(x.grad):g}"  # type: ignore[arg-type]


ONES = torch.tensor([[1], [1]])
DIFF = torch.tensor([0.0, 1, 0, 1])

DEMOS: dict[int, Callable[[], str]] = {
    4: lambda: f"[2*o for o in [1, 2, 3, 4, 5] if o % 2 == 1] == {[2 * o for o in [1, 2, 3, 4, 5] if o % 2 == 1]}",
    5: lambda: f"torch.stack of 6131 images of (28, 28) -> rank {torch.zeros(6131, 28, 28).ndim}",
    6: lambda: f"t = torch.zeros(6131, 28, 28): t.shape = {tuple(torch.zeros(6131, 28, 28).shape)}, len(t.shape) = 3",
    7: lambda: (
        f"a - b = [0, 1, 0, 1]: L1 = {float(DIFF.abs().mean()):.3f}, RMSE = {float(DIFF.square().mean().sqrt()):.3f}"
    ),
    8: _loop_against_tensor,
    9: lambda: f"(tensor 1..9 as 3x3 * 2)[1:, 1:] = {(torch.arange(1, 10).view(3, 3) * 2)[1:, 1:].tolist()}",
    10: lambda: f"(1010, 28, 28) - (28, 28) -> {tuple((torch.zeros(1010, 28, 28) - torch.zeros(28, 28)).shape)}",
    15: _init_params_spread,
    17: lambda: (
        "SGD on x**2 from -1.5: lr 0.1 "
        + " ".join(f"{v:.2f}" for v in sgd_quadratic(0.1, 5))
        + "; lr 0.9 (bounces) "
        + " ".join(f"{v:.2f}" for v in sgd_quadratic(0.9, 5))
        + "; lr 1.1 (diverges) "
        + " ".join(f"{v:.2f}" for v in sgd_quadratic(1.1, 5))
    ),
    20: _accuracy_has_no_gradient,
    21: lambda: "sigmoid at -6, 0, 6: " + ", ".join(f"{v:.4f}" for v in torch.tensor([-6.0, 0, 6]).sigmoid().tolist()),
    24: _dataloader_range,
    26: lambda: f"list(zip([1, 2, 3, 4], 'abcd')) == {list(zip([1, 2, 3, 4], 'abcd'))}",
    27: lambda: (
        f"torch.zeros(6131, 28, 28).view(-1, 28*28).shape = {tuple(torch.zeros(6131, 28, 28).view(-1, 784).shape)}"
    ),
    28: _without_bias,
    29: lambda: f"tensor([[1, 2], [3, 4]]) @ tensor([[1], [1]]) = {(torch.tensor([[1, 2], [3, 4]]) @ ONES).tolist()}",
    30: _backward_accumulates,
    31: _backward_accumulates,
    36: _relu_two_ways,
    34: lambda: "relu at -2, -1, 0, 1, 2: " + str(torch.tensor([-2.0, -1, 0, 1, 2]).relu().tolist()),
}
FIGURES = {21: "activations.png", 34: "activations.png"}  # plot_activations draws sigmoid and ReLU (on [-2, 2])


def item(number: int, figures: Path | None = None) -> dict[str, object]:
    """One question as {"number", "question", "answer", "computed"?, "figure"?}."""
    if not 1 <= number <= len(QUESTIONS):
        raise DigitlabError(f"there are {len(QUESTIONS)} questions; {number} is not one of them")
    question, answer = QUESTIONS[number - 1]
    result: dict[str, object] = {"number": number, "question": question, "answer": answer}
    if number in DEMOS:
        result["computed"] = DEMOS[number]()
    if number in FIGURES and figures is not None:
        check_owned_folder(figures, "--figures", set(FIGURES.values()))
        make_folder(figures, "--figures")
        path = figures / FIGURES[number]
        plot_activations(path=path)
        result["figure"] = str(path)
    return result


def run_quiz(numbers: list[int] | None, reveal: bool, figures: Path | None, as_json: bool) -> int:
    """Ask each question; Enter shows the answer, s skips, q (or the end of input) stops."""
    chosen = numbers or list(range(1, len(QUESTIONS) + 1))
    items = []
    for n in chosen:
        entry = item(n, figures)
        items.append(entry)
        if as_json:
            continue
        print(f"\nQ{n}. {entry['question']}")
        if not reveal:
            try:
                reply = input("  [Enter] show the answer, [s] skip, [q] quit: ").strip().lower()
            except EOFError:
                print()
                break
            if not sys.stdin.isatty():
                print()  # a piped reply is not echoed: end the prompt's line
            if reply == "q":
                break
            if reply == "s":
                continue
        print(f"  Answer: {entry['answer']}")
        for key in ("computed", "figure"):
            if key in entry:
                print(f"  {key.capitalize()}: {entry[key]}")
    if as_json:
        json.dump({"questions": items}, sys.stdout, indent=2)
        print()
    if figures is not None and not any("figure" in entry for entry in items):
        with_figures = " and ".join(str(n) for n in sorted(FIGURES))
        print(
            f"--figures: these questions have no figure (questions {with_figures} do); nothing written", file=sys.stderr
        )
    return 0
