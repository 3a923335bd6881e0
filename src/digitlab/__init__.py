"""digitlab: fastbook chapter 4 ("Under the Hood: Training a Digit Classifier") as a library.

The chapter's names are importable from here: `from digitlab import mnist_loss, Learner, ...`.
"""

__version__ = "0.1.0"

from .accelerate import ChannelsLastCB, CompileCB, MixedPrecisionCB  # noqa: E402
from .baseline import PixelSimilarity, ideal_digits, mnist_distance  # noqa: E402
from .callbacks import DeviceCB, OneCycleCB, ProgressCB, RecorderCB  # noqa: E402
from .dataloader import DataLoader, DataLoaders  # noqa: E402
from .learner import Callback, Learner  # noqa: E402
from .losses import batch_accuracy, cross_entropy, mnist_loss  # noqa: E402
from .models import CNN, init_params, linear1, simple_net  # noqa: E402
from .optim import SGD  # noqa: E402
from .tta import TTACB  # noqa: E402

__all__ = [
    "CNN", "Callback", "ChannelsLastCB", "CompileCB", "DataLoader", "DataLoaders", "DeviceCB", "Learner",
    "MixedPrecisionCB", "OneCycleCB", "PixelSimilarity", "ProgressCB", "RecorderCB", "SGD", "TTACB", "__version__", "batch_accuracy", "cross_entropy", "ideal_digits",
    "init_params", "linear1", "mnist_distance", "mnist_loss", "simple_net",
]
