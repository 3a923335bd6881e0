"""`digitlab.callbacks`, the chapter's name, kept importable (the code: `digitlab.train.callbacks`, `.resume`)."""

from .train.callbacks import (
    DeviceCB,
    DivergenceGuardCB,
    OneCycleCB,
    ProgressCB,
    RecorderCB,
    TrainingDiverged,
)
from .train.resume import CheckpointCB

__all__ = [
    "CheckpointCB",
    "DeviceCB",
    "DivergenceGuardCB",
    "OneCycleCB",
    "ProgressCB",
    "RecorderCB",
    "TrainingDiverged",
]
