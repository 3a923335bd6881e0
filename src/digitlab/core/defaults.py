"""Names and default values the command line shows, in a module that imports nothing.

`digitlab --help` (and every command's) builds all the parsers: with these here, it answers
without loading torch (about a second on a 2-core machine). Each value is defined once, here, and
the modules that use it import it from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODEL_NAMES = ("linear", "simple_net", "cnn")  # models.MODELS, in this order: digit classifiers
LINE_READER = "line-reader"  # digitlab.line_reader: reads a whole line of digits (`predict --lines`)
TRAIN_MODELS = (*MODEL_NAMES, LINE_READER)  # what `digitlab train --model` trains
METRICS = ("l1", "rmse")  # the pixel-similarity baseline's distances
SEED = 42  # seeds torch, numpy, random, the loader's shuffles and augmentation: TrainConfig's and --seed's
CNN_WIDTH = 16  # channels of the CNN's first stage: the one default, for the library and the training recipe

# The book's runs for linear (lr 1.0) and simple_net (lr 0.1): plain SGD, batches of 256.
# The CNN's recipe was tuned here for accuracy per second on a 2-core CPU (BENCHMARKS.md).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "linear": dict(
        lr=1.0, bs=256, mom=0.0, wd=0.0, one_cycle=False, augment=False, label_smoothing=0.0, outliers=0.0, thicken=0.0
    ),
    "simple_net": dict(
        lr=0.1, bs=256, mom=0.0, wd=0.0, one_cycle=False, augment=False, label_smoothing=0.0, outliers=0.0, thicken=0.0
    ),
    # outliers, thicken: marks that are not digits shown as "none of the classes" and a fifth of the digits
    # drawn with a thicker pen (train.outliers, train.augment): letters declined 0.41 -> 0.56, ~10% more time
    "cnn": dict(
        epochs=8,
        lr=0.4,
        bs=64,
        mom=0.9,
        wd=5e-4,
        one_cycle=True,
        augment=True,
        label_smoothing=0.1,
        width=CNN_WIDTH,
        outliers=0.1,
        thicken=0.2,
    ),
    # AdamW (CTC trains slowly with SGD); an epoch is LINES_PER_EPOCH lines made afresh from the digits
    LINE_READER: dict(epochs=12, lr=3e-3, bs=64, mom=0.0, wd=1e-4, one_cycle=True, augment=False, label_smoothing=0.0),
}
# A recipe per device: what replaces MODEL_DEFAULTS' values on that device ("cpu": none, the table above
# is the CPU's and serves every device without its own). The CNN on CUDA: the fastest recipe to >= 0.990
# measured on an NVIDIA H100 with forward and backward as CUDA graphs and the batched affine augmentation
# (0.9908, min 0.9905 over 3 seeds, in 0.92 s of training; a measurement reported to us, not yet repeated
# here: bench/bench_gpu.py confirms it on 5 seeds where a GPU is available).
DEVICE_RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {},
    "cuda": {"cnn": dict(epochs=14, lr=1.6, bs=512, outliers=0.0, thicken=0.0)},  # marks: unmeasured on CUDA
}

CUDA_GRAPH_MODES = ("auto", "on", "off")  # --cuda-graphs: see train.cuda_graph
PRECISION_NAMES = ("fp32", "bf16")  # --precision; train.accelerate.PRECISIONS maps them to autocast dtypes
# Precisions refused, and why (--precision accepts them only to say so in one line)
REFUSED_PRECISIONS = {
    "fp16": "float16 needs loss scaling (a GradScaler, which reads a flag on the host every step) and "
    "digitlab does not scale: use --precision bf16 (float32's range, no scaling; as fast on Ampere and later)"
}

IMAGE_SUFFIXES = frozenset(
    [".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm"]
)
CORRECTIONS_FOLDER = Path("my-digits")  # where `predict --correct` saves, relative to where the command runs
