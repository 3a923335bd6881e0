"""`digitlab.callbacks`, the chapter's name for it, kept importable: the code lives in `digitlab.train.callbacks`."""

from .train.callbacks import (
    CheckpointCB,
    DeviceCB,
    DivergenceGuardCB,
    OneCycleCB,
    ProgressCB,
    RecorderCB,
    TrainingDiverged,
)

__all__ = [
    "CheckpointCB",
    "DeviceCB",
    "DivergenceGuardCB",
    "OneCycleCB",
    "ProgressCB",
    "RecorderCB",
    "TrainingDiverged",
]
