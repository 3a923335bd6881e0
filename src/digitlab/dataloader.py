"""`digitlab.dataloader`, the chapter's name for it, kept importable: the code lives in `digitlab.train.dataloader`."""

from .train.dataloader import DataLoader, DataLoaders, collate, first

__all__ = ["DataLoader", "DataLoaders", "collate", "first"]
