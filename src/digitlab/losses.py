"""`digitlab.losses`, the chapter's name for it, kept importable: the code lives in `digitlab.train.losses`."""

from .train.losses import batch_accuracy, cross_entropy, log_softmax, mnist_loss

__all__ = ["batch_accuracy", "cross_entropy", "log_softmax", "mnist_loss"]
