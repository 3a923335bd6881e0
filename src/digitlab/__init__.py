"""digitlab: fastbook chapter 4 ("Under the Hood: Training a Digit Classifier") as a library.

The chapter's names are importable from here, so the book's cells run with one import line:
`from digitlab import DataLoader, DataLoaders, Learner, SGD, mnist_loss, batch_accuracy, ...`.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING

# Every name loads on first use: `import digitlab` (and the `digitlab` command, whose Ctrl-C guard
# must be in place before torch's seconds-long import) costs nothing until a name is asked for.
_LAZY = {
    "PixelSimilarity": "digitlab.baseline",
    "ideal_digits": "digitlab.baseline",
    "mnist_distance": "digitlab.baseline",
    "tensor": "digitlab.book",
    "untar_data": "digitlab.book",
    "load_dataset": "digitlab.data.loading",
    "CNN": "digitlab.models",
    "init_params": "digitlab.models",
    "linear1": "digitlab.models",
    "simple_net": "digitlab.models",
    "show_image": "digitlab.plots.images",
    "show_images": "digitlab.plots.images",
    "PixelTable": "digitlab.plots.pixels",
    "ChannelsLastCB": "digitlab.train.accelerate",
    "CompileCB": "digitlab.train.accelerate",
    "MixedPrecisionCB": "digitlab.train.accelerate",
    "calc_grad": "digitlab.train.basic_loop",
    "train_epoch": "digitlab.train.basic_loop",
    "train_model": "digitlab.train.basic_loop",
    "validate_epoch": "digitlab.train.basic_loop",
    "DeviceCB": "digitlab.train.callbacks",
    "OneCycleCB": "digitlab.train.callbacks",
    "ProgressCB": "digitlab.train.callbacks",
    "RecorderCB": "digitlab.train.callbacks",
    "DataLoader": "digitlab.train.dataloader",
    "DataLoaders": "digitlab.train.dataloader",
    "first": "digitlab.train.dataloader",
    "Callback": "digitlab.train.learner",
    "CancelBatchException": "digitlab.train.learner",
    "CancelEpochException": "digitlab.train.learner",
    "CancelFitException": "digitlab.train.learner",
    "Learner": "digitlab.train.learner",
    "accuracy": "digitlab.train.losses",
    "batch_accuracy": "digitlab.train.losses",
    "error_rate": "digitlab.train.losses",
    "cross_entropy": "digitlab.train.losses",
    "mnist_loss": "digitlab.train.losses",
    "BasicOptim": "digitlab.train.optim",
    "SGD": "digitlab.train.optim",
    "TTACB": "digitlab.train.tta",
    "Predictor": "digitlab.predict.predictor",
}

if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from .baseline import PixelSimilarity, ideal_digits, mnist_distance
    from .book import tensor, untar_data
    from .data.loading import load_dataset
    from .models import CNN, init_params, linear1, simple_net
    from .plots.images import show_image, show_images
    from .plots.pixels import PixelTable
    from .predict.predictor import Predictor
    from .train.accelerate import ChannelsLastCB, CompileCB, MixedPrecisionCB
    from .train.basic_loop import calc_grad, train_epoch, train_model, validate_epoch
    from .train.callbacks import DeviceCB, OneCycleCB, ProgressCB, RecorderCB
    from .train.dataloader import DataLoader, DataLoaders, first
    from .train.learner import Callback, CancelBatchException, CancelEpochException, CancelFitException, Learner
    from .train.losses import accuracy, batch_accuracy, cross_entropy, error_rate, mnist_loss
    from .train.optim import SGD, BasicOptim
    from .train.tta import TTACB


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'digitlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


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
    "Predictor",
    "ProgressCB",
    "RecorderCB",
    "__version__",
    "accuracy",
    "batch_accuracy",
    "calc_grad",
    "cross_entropy",
    "error_rate",
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
