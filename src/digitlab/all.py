"""The book's one import line: `from digitlab.all import *` where the chapter has
`from fastai.vision.all import *` and `from fastbook import *`.

It gives chapter 4's cells what those two star imports gave them: digitlab's chapter names
(`untar_data`, `URLs`, `tensor`, `DataLoader`, `Learner`, `SGD`, `mnist_loss`, `batch_accuracy`,
`show_image`, ...), the libraries the book uses without importing them (`torch`, `nn`, `F`, `np`,
`array`, `pd`, `plt`, `matplotlib`, `Image`, `Path`, `os`, `math`, `string`), fastcore's `L` and
`Path.ls()` / `Path.BASE_PATH` (put on `pathlib.Path` by this import, and only by it),
`plot_function`, `gv` and `to_np`; and "Going Deeper" with chapter 2's DataBlock (`ImageDataLoaders`,
`cnn_learner`/`vision_learner`, `resnet18`/`resnet34`, `DataBlock`, `get_image_files`, `parent_label`,
`RandomSplitter`, `GrandparentSplitter`, `Resize`). In Jupyter it also puts the mentor's hint under
any cell's error it recognises (train/mentor.py).
"""

from __future__ import annotations

import math
import os
import string
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs; only re-exported
import torch
import torch.nn.functional as F
from numpy import array
from PIL import Image
from torch import nn

import digitlab
from digitlab import *  # noqa: F403  # the chapter's names, as `digitlab.__all__` lists them

from .book import URLs, to_np
from .lists import L
from .paths import add_to_path
from .plots.graph import gv
from .plots.sgd import plot_function
from .resnet import resnet18, resnet34
from .train.mentor import install_notebook_hints
from .vision import (
    CategoryBlock,
    DataBlock,
    GrandparentSplitter,
    ImageBlock,
    ImageDataLoaders,
    PILImage,
    PILImageBW,
    RandomSplitter,
    Resize,
    cnn_learner,
    get_image_files,
    parent_label,
    vision_learner,
)

add_to_path()
install_notebook_hints()  # in Jupyter: the mentor's hint under a cell's error

__all__ = [
    *digitlab.__all__,
    "CategoryBlock",
    "DataBlock",
    "GrandparentSplitter",
    "ImageBlock",
    "ImageDataLoaders",
    "PILImage",
    "PILImageBW",
    "RandomSplitter",
    "Resize",
    "cnn_learner",
    "get_image_files",
    "parent_label",
    "resnet18",
    "resnet34",
    "vision_learner",
    "F",
    "Image",
    "L",
    "Path",
    "URLs",
    "array",
    "gv",
    "math",
    "matplotlib",
    "nn",
    "np",
    "os",
    "pd",
    "plot_function",
    "plt",
    "string",
    "to_np",
    "torch",
]
