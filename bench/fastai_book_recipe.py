"""fastai's own recipe from the chapter's end, for `bench_full_mnist.py --loops fastai` to run beside digitlab.

Runs with a Python that has fastai (it cannot share a virtual environment with digitlab's torch: fastai needs
torchvision, whose wheels pin their own torch), so it imports nothing of digitlab and prints one JSON line:

    FOLDER  a folder in fastai's MNIST layout (training/<label>/*.png, testing/<label>/*.png), as
            `digitlab.book.untar_data("mnist")` writes it

The recipe is the book's, word for word but for the folder names: `ImageDataLoaders.from_folder`, a resnet18
from `vision_learner` without pretrained weights, `fit_one_cycle(epochs, 0.1)`, fastai's default batch size
(64) and workers. Training seconds are the training passes alone (a callback times each, validation apart).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from fastai.callback.core import Callback
from fastai.vision.all import ImageDataLoaders, Path, accuracy, resnet18, set_seed, vision_learner


class TrainSeconds(Callback):  # type: ignore[misc]
    """Seconds spent in training passes, summed over epochs (validation apart)."""

    seconds = 0.0

    def before_train(self) -> None:
        self.started = time.perf_counter()

    def after_train(self) -> None:
        self.seconds += time.perf_counter() - self.started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    dls = ImageDataLoaders.from_folder(args.folder, train="training", valid="testing")
    timer = TrainSeconds()
    learn = vision_learner(dls, resnet18, pretrained=False, loss_func=F.cross_entropy, metrics=accuracy, cbs=timer)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(args.epochs, 0.1)
    _, acc = learn.recorder.values[-1][1:3]
    print(json.dumps({"accuracy": float(acc), "train_seconds": timer.seconds, "torch": torch.__version__,
                      "workers": dls.train.fake_l.num_workers, "train": len(dls.train_ds), "valid": len(dls.valid_ds)}))  # fmt: skip


if __name__ == "__main__":
    main()
