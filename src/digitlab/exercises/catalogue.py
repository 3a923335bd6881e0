"""The exercises' words, torch-free: each one's name, title, task, starter code and questions.

`digitlab exercises list` and `show` read this alone (no torch, no checks: they answer at once);
the check modules register each exercise's check and probe under the same name (`registry.py`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..errors import DigitlabError

# the ten-digit exercise (full_mnist.py): its target and budget are part of its task
TARGET = 0.90  # accuracy on the held-out digits
BUDGET = 60.0  # seconds for train_mnist(dls), on one CPU thread
N_TRAIN, N_VALID, N_HELD_OUT = 7_000, 1_000, 2_000


@dataclass(frozen=True)
class Entry:
    name: str  # the name the learner defines, e.g. "mnist_distance"
    title: str
    task: str  # what to write, in the book's words and ours
    starter: str  # a skeleton to start from
    seconds: float | None = None  # its own time limit when it needs more than the checker's default
    questions: tuple[int, ...] = ()  # questionnaire items about the same idea


# in the order the chapter meets them
CATALOGUE: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "stack_images",
            "Stack images into one rank-3 tensor",
            "Write stack_images(images): a list of (28, 28) uint8 tensors (the book's three_tensors) in, one float "
            "tensor of shape (N, 28, 28) with pixels between 0 and 1 out, as the book's "
            "torch.stack(three_tensors).float()/255.",
            "def stack_images(images):\n    return ...\n",
            questions=(5,),
        ),
        Entry(
            "rank_and_shape",
            "Rank and shape of a tensor",
            "Write rank_and_shape(t) returning (rank, shape): the number of axes and the size of each, e.g. "
            "(3, (6131, 28, 28)) for the book's stacked_threes.",
            "def rank_and_shape(t):\n    return ..., ...\n",
            questions=(5, 6),
        ),
        Entry(
            "double_odds",
            "A list comprehension: odd numbers, doubled",
            "Write double_odds(a) with one list comprehension that keeps the odd numbers of the list a and doubles "
            "them: double_odds([1, 2, 3, 4, 5]) == [2, 6, 10].",
            "def double_odds(a):\n    return [...]\n",
            questions=(4,),
        ),
        Entry(
            "double_and_select",
            "The 3x3 tensor, doubled, and its bottom-right four",
            "Write double_and_select(t): given a 3x3 tensor such as tensor([[1,2,3],[4,5,6],[7,8,9]]), double it and "
            "return its bottom-right four numbers as a 2x2 tensor (tensor([[10, 12], [16, 18]]) for 1..9).",
            "def double_and_select(t):\n    return ...\n",
            questions=(9,),
        ),
        Entry(
            "l1_and_rmse",
            "L1 norm and RMSE",
            "Write l1_and_rmse(a, b) returning (l1, rmse) for two images: the mean absolute difference and the "
            "square root of the mean squared difference (the book's dist_3_abs and dist_3_sqr).",
            "def l1_and_rmse(a, b):\n    l1 = ...\n    rmse = ...\n    return l1, rmse\n",
            questions=(7,),
        ),
        Entry(
            "mnist_distance",
            "mnist_distance, with broadcasting",
            "Write mnist_distance(a, b): the L1 distance between images over their last two axes, so that one "
            "image against the ideal digit gives one number and a stack of N images gives N numbers (broadcasting).",
            "def mnist_distance(a, b):\n    return ...\n",
            questions=(3, 10),
        ),
        Entry(
            "is_3",
            "is_3: is it nearer the ideal 3?",
            "Write is_3(x) as the book does (it reads mean3 and mean7; the checker sets them), "
            "or is_3(x, mean3, mean7): True where x is closer to mean3 than to mean7, for one image or a whole stack.",
            "def is_3(x):\n    return mnist_distance(x, mean3) < ...\n",
            questions=(10,),
        ),
        Entry(
            "init_params",
            "init_params: random starting weights",
            "Write init_params(size, std=1.0) as the book does: random normal numbers of that size, times std, "
            "that track their gradient (a leaf tensor with requires_grad).",
            "def init_params(size, std=1.0):\n    return ...\n",
            questions=(15,),
        ),
        Entry(
            "linear1",
            "linear1: the linear model",
            "Write linear1(xb) as the book does (it reads weights and bias; the checker sets them) or "
            "linear1(xb, weights, bias): a batch of flattened images (N, 784) in, one score per image (N, 1) out.",
            "def linear1(xb):\n    return ...\n",
            questions=(28, 29),
        ),
        Entry(
            "mnist_loss",
            "mnist_loss: a loss SGD can follow",
            "Write the book's second mnist_loss(predictions, targets): squash predictions with sigmoid, then the "
            "mean of 1 - prediction where the target is 1 and of prediction where it is 0.",
            "def mnist_loss(predictions, targets):\n    predictions = ...\n    return ...\n",
            questions=(16, 20, 21, 22),
        ),
        Entry(
            "batch_accuracy",
            "batch_accuracy: the metric",
            "Write batch_accuracy(xb, yb): the fraction of a batch's predictions xb (N, 1) that are on the right "
            "side (sigmoid > 0.5) of their targets yb (N, 1).",
            "def batch_accuracy(xb, yb):\n    preds = ...\n    correct = ...\n    return ...\n",
            questions=(11, 22),
        ),
        Entry(
            "batches",
            "Mini-batches: a DataLoader of your own",
            "Write batches(collection, batch_size, shuffle=False): the list of batches a DataLoader gives, e.g. "
            "batches(range(15), 5, shuffle=True) like list(DataLoader(range(15), batch_size=5, shuffle=True)): every "
            "item once, a shorter last batch if needed, and a new random order on each call when shuffling.",
            "import random\n\ndef batches(collection, batch_size, shuffle=False):\n    items = list(collection)\n"
            "    ...\n    return [...]\n",
            questions=(13, 24),
        ),
        Entry(
            "zip_pairs",
            "Pairs of items: what a Dataset holds",
            "Write zip_pairs(a, b) so that zip_pairs([1,2,3,4], 'abcd') returns "
            "[(1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')].",
            "def zip_pairs(a, b):\n    return ...\n",
            questions=(26,),
        ),
        Entry(
            "train_epoch",
            "train_epoch: one pass of SGD",
            "Write train_epoch as the book does, train_epoch(model, lr, params) reading dl (or with opt, or "
            "train_epoch(model, dl, opt)): for each batch compute the gradients (calc_grad), step every parameter "
            "against its gradient, then reset the gradients.",
            "def train_epoch(model, lr, params):\n    for xb, yb in dl:\n        calc_grad(xb, yb, model)\n"
            "        for p in params:\n            ...\n",
            questions=(14, 23, 25, 31),
        ),
        Entry(
            "validate_epoch",
            "validate_epoch: accuracy on the validation set",
            "Write validate_epoch(model) as the book does (it reads valid_dl) or validate_epoch(model, valid_dl): the "
            "mean of batch_accuracy over the validation batches, rounded to 4 places.",
            "def validate_epoch(model):\n    accs = [... for xb, yb in valid_dl]\n    return ...\n",
            questions=(11,),
        ),
        Entry(
            "BasicOptim",
            "BasicOptim: an optimizer of your own",
            "Write the class BasicOptim(params, lr) with step() (every parameter moves against its gradient, times lr) "
            "and zero_grad() (clears the gradients). It gets model.parameters(), as the book passes it.",
            "class BasicOptim:\n    def __init__(self, params, lr):\n        ...\n\n"
            "    def step(self, *args, **kwargs):\n        ...\n\n"
            "    def zero_grad(self, *args, **kwargs):\n        ...\n",
            questions=(23, 31),
        ),
        Entry(
            "simple_net",
            "simple_net: two layers and a ReLU",
            "Write the book's simple_net: either nn.Sequential(nn.Linear(28*28, 30), nn.ReLU(), nn.Linear(30, 1)), or "
            "the function simple_net(xb) with w1, b1, w2, b2 (the checker sets them): linear, ReLU, linear.",
            "from torch import nn\n\nsimple_net = nn.Sequential(\n    ...\n)\n",
            questions=(34, 35, 36, 37),
        ),
        Entry(
            "train_mnist",
            "All ten digits: a Learner on full MNIST",
            "Write train_mnist(dls) that trains a model on all ten digits and returns it (or the Learner). "
            "dls gives batches xb (64, 784) float in [0, 1] and yb (64,) digit labels; your model must give "
            f"10 scores per image. Target: {TARGET} accuracy on {N_HELD_OUT:,} held-out digits, "
            f"training in under {BUDGET:.0f} s on one CPU thread.",
            "from torch import nn\nfrom digitlab import Learner, SGD, cross_entropy, batch_accuracy\n\n"
            "def train_mnist(dls):\n    model = ...\n    learn = Learner(dls, model, opt_func=SGD, "
            "loss_func=cross_entropy, metrics=batch_accuracy)\n    learn.fit(...)\n    return learn\n",
            seconds=BUDGET + 60,
            questions=(32, 33),
        ),
    )
}


def entry(name: str) -> Entry:
    """The exercise called `name`; an unknown name is an error that suggests the nearest."""
    if name not in CATALOGUE:
        close = difflib.get_close_matches(name, list(CATALOGUE), n=1)
        hint = f"; did you mean {close[0]}?" if close else "; `digitlab exercises list` shows them"
        raise DigitlabError(f"no exercise named {name!r}{hint}")
    return CATALOGUE[name]
