"""`digitlab.learner`, the chapter's name for it, kept importable: the code lives in `digitlab.train.learner`."""

from .train.learner import Callback, CancelBatchException, CancelEpochException, CancelFitException, Learner

__all__ = ["Callback", "CancelBatchException", "CancelEpochException", "CancelFitException", "Learner"]
