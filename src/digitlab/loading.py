"""`digitlab.loading`, the chapter's name for it, kept importable: the code lives in `digitlab.data.loading`."""

from .data.loading import load_dataset, load_path, train_and_valid

__all__ = ["load_dataset", "load_path", "train_and_valid"]
