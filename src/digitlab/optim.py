"""`digitlab.optim`, the chapter's name for it, kept importable: the code lives in `digitlab.train.optim`."""

from .train.optim import SGD, BasicOptim

__all__ = ["SGD", "BasicOptim"]
