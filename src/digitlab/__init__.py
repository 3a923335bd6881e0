"""digitlab: fastbook chapter 4 ("Under the Hood: Training a Digit Classifier") as a library.

The chapter's names are importable from here, so the book's cells run with one import line:
`from digitlab import DataLoader, DataLoaders, Learner, SGD, mnist_loss, batch_accuracy, ...`.
"""

__version__ = "0.1.0"

from .baseline import PixelSimilarity, ideal_digits, mnist_distance
from .book import tensor, untar_data
from .data.loading import load_dataset
from .models import CNN, init_params, linear1, simple_net
from .train.accelerate import ChannelsLastCB, CompileCB, MixedPrecisionCB
from .train.basic_loop import calc_grad, train_epoch, train_model, validate_epoch
from .train.callbacks import DeviceCB, OneCycleCB, ProgressCB, RecorderCB
from .train.dataloader import DataLoader, DataLoaders, first
from .train.learner import Callback, CancelBatchException, CancelEpochException, CancelFitException, Learner
from .train.losses import batch_accuracy, cross_entropy, mnist_loss
from .train.optim import SGD, BasicOptim
from .train.tta import TTACB

# Pictures load matplotlib (about 0.4 s): imported on first use, so `import digitlab` stays quick.
_LAZY = {
    "show_image": "digitlab.plots.images",
    "show_images": "digitlab.plots.images",
    "PixelTable": "digitlab.plots.pixels",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'digitlab' has no attribute {name!r}")


__all__ = [
    "CNN",
    "SGD",
    "TTACB",
    "BasicOptim",
    "Callback",
    "CancelBatchException",
    "CancelEpochException",
    "CancelFitException",
    "ChannelsLastCB",
    "CompileCB",
    "DataLoader",
    "DataLoaders",
    "DeviceCB",
    "Learner",
    "MixedPrecisionCB",
    "OneCycleCB",
    "PixelSimilarity",
    "PixelTable",
    "ProgressCB",
    "RecorderCB",
    "__version__",
    "batch_accuracy",
    "calc_grad",
    "cross_entropy",
    "first",
    "ideal_digits",
    "init_params",
    "linear1",
    "load_dataset",
    "mnist_distance",
    "mnist_loss",
    "show_image",
    "show_images",
    "simple_net",
    "tensor",
    "train_epoch",
    "train_model",
    "untar_data",
    "validate_epoch",
]
