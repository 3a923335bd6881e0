"""digitlab: fastbook chapter 4 ("Under the Hood: Training a Digit Classifier") as a library.

The chapter's names are importable from here, so the book's cells run with one import line:
`from digitlab import DataLoader, DataLoaders, Learner, SGD, mnist_loss, batch_accuracy, ...`.
"""

__version__ = "0.1.0"

from .accelerate import ChannelsLastCB, CompileCB, MixedPrecisionCB  # noqa: E402
from .baseline import PixelSimilarity, ideal_digits, mnist_distance  # noqa: E402
from .book import tensor, untar_data  # noqa: E402
from .basic_loop import calc_grad, train_epoch, train_model, validate_epoch  # noqa: E402
from .callbacks import DeviceCB, OneCycleCB, ProgressCB, RecorderCB  # noqa: E402
from .dataloader import DataLoader, DataLoaders, first  # noqa: E402
from .learner import Callback, CancelBatchException, CancelEpochException, CancelFitException, Learner  # noqa: E402
from .loading import load_dataset  # noqa: E402
from .losses import batch_accuracy, cross_entropy, mnist_loss  # noqa: E402
from .models import CNN, init_params, linear1, simple_net  # noqa: E402
from .optim import SGD, BasicOptim  # noqa: E402
from .tta import TTACB  # noqa: E402

# Pictures load matplotlib (about 0.4 s): imported on first use, so `import digitlab` stays quick.
_LAZY = {"show_image": "digitlab.plots.images", "show_images": "digitlab.plots.images",
         "PixelTable": "digitlab.plots.pixels"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'digitlab' has no attribute {name!r}")


__all__ = [
    "CNN", "PixelTable", "BasicOptim", "Callback", "CancelBatchException", "CancelEpochException", "CancelFitException",
    "ChannelsLastCB", "CompileCB", "DataLoader", "DataLoaders", "DeviceCB", "Learner", "MixedPrecisionCB",
    "OneCycleCB", "PixelSimilarity", "ProgressCB", "RecorderCB", "SGD", "TTACB", "__version__", "batch_accuracy",
    "calc_grad", "cross_entropy", "first", "ideal_digits", "init_params", "linear1", "load_dataset",
    "mnist_distance", "mnist_loss", "show_image", "show_images", "simple_net", "tensor", "train_epoch", "train_model", "untar_data", "validate_epoch",
]
