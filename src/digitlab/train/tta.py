"""Test-time augmentation during training: the validation callback.

The shifts and their average are plain tensor functions in `digitlab.artifacts.shifts` (inference
uses them without the training loop); they are importable from here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..artifacts.shifts import DEFAULT_SHIFTS, shifted, tta_outputs
from .callback import Callback

__all__ = ["DEFAULT_SHIFTS", "TTACB", "shifted", "tta_outputs"]


class TTACB(Callback):
    """During validation, replace each batch's predictions by their test-time-augmented mean.

    Training batches are untouched; the recorder's validation loss and metrics then measure
    the TTA predictions, as `digitlab evaluate --tta` would.
    """

    order = -2  # after_predict: before the recorder (10) reads preds
    graph_safe = True  # its after_predict acts in validation only: a graphed training step may skip it

    def __init__(self, shifts: Sequence[tuple[int, int]] = DEFAULT_SHIFTS) -> None:
        self.shifts = tuple(shifts)

    def after_predict(self) -> None:
        learn = self.learn
        if not learn.training:
            learn.preds = tta_outputs(learn.model, learn.batch[0], self.shifts, preds=learn.preds)
