"""Mini-batches: the book's `DataLoader` and `DataLoaders`, written here.

SGD looks at a few dozen examples at a time, in a new random order each epoch. Two kinds
of data are accepted:

(a) tensors sharing their first dimension, e.g. `(x, y)` with x (N, 784) and y (N, 1).
    Each epoch draws a permutation `perm` and yields `x[perm[i:i+bs]]`: one gather per batch
    and tensor, no Python work per item (which matters at 60,000 digits), and no permuted
    copy of the whole dataset (it is held once). In-order loaders yield views `x[i:i+bs]`.
(b) the book's `dset = list(zip(train_x, train_y))`, a list of (x, y) tuples of tensors: it
    is stacked once, here, into (X, Y) and then batched as (a), so an epoch runs no Python
    per item; the batches are the same as collating the items one by one.
(c) any other collection, like the book's `DataLoader(range(15), batch_size=5, shuffle=True)`:
    items are fetched one by one and collated, numbers and tensors into tensors, tuples
    field by field, anything else (strings) into lists.

Shuffling uses a private `torch.Generator`: the same `seed` gives the same batches, and
each epoch draws a fresh order from it, so epochs differ but a run repeats exactly.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import DigitlabError


def collate(items: list[Any]) -> Any:
    """One batch from a list of items: numbers/tensors -> tensor, tuples -> tuple per field, else list."""
    first = items[0]
    if isinstance(first, (tuple, list)):
        if any(not isinstance(it, (tuple, list)) or len(it) != len(first) for it in items):
            raise DigitlabError(f"cannot batch items with different numbers of fields (the first has {len(first)})")
        return tuple(collate(list(field)) for field in zip(*items))
    if isinstance(first, (torch.Tensor, np.ndarray)):
        tensors = [torch.as_tensor(it) for it in items]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise DigitlabError(
                "cannot stack tensors of different shapes into one batch; "
                "to batch tensors (x, y) together, pass them as a tuple: DataLoader((x, y))"
            )
        return torch.stack(tensors)
    if all(isinstance(it, numbers.Number) for it in items):
        return torch.tensor(items)  # ints -> int64, floats -> float32, bools -> bool
    return list(items)


def _stacked_records(data: Any) -> Any:
    """A list of (x, y, ...) tuples of same-shaped tensors as one tensor per field; else `data` as it is."""
    if not isinstance(data, list) or not data or not isinstance(data[0], tuple):
        return data
    shapes = tuple(t.shape if isinstance(t, torch.Tensor) else None for t in data[0])
    if None in shapes or any(not isinstance(item, tuple) or len(item) != len(shapes) for item in data):
        return data
    if any(not isinstance(t, torch.Tensor) or t.shape != shape for item in data for t, shape in zip(item, shapes)):
        return data
    return tuple(torch.stack(field) for field in zip(*data))


def first(iterable: Any) -> Any:
    """The first item of anything iterable: `xb, yb = first(dl)` is one batch (fastcore's `first`)."""
    for item in iterable:
        return item
    raise DigitlabError("first() of an empty collection: there is no first item")


def _to(batch: Any, device: torch.device | None) -> Any:
    if device is None:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, tuple):
        return tuple(_to(b, device) for b in batch)
    return batch


class DataLoader:
    """Iterates over `data` in batches of `batch_size`; `len(dl)` is the number of batches.

    data: a tensor, a tuple/list of tensors with equal first dimension (fast path, yields
        tensors or tuples of tensors), or any other collection (yields collated items).
        A list made only of tensors is read as fields, like `(x, y)`, not as items: to batch
        a list of single images, `torch.stack` it first.
    shuffle: new random order each epoch, drawn from a generator seeded by `seed`
        (None: seeded from torch's global RNG, so `torch.manual_seed` makes it repeatable).
    drop_last: skip the final short batch (keeps every batch the same size).
    device: where batches live; tensors are moved there once, here, not per batch.
    shard: (rank, world_size) for multi-process training: every rank draws the same
        permutation (same seed) and takes every world_size-th item from `rank` on. Shuffled
        loaders give every rank the same number of items (DistributedDataParallel needs equal
        batch counts); in-order loaders (validation) cover every item exactly once.
    """

    def __init__(
        self,
        data: Any,
        batch_size: int = 64,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        device: str | torch.device | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise DigitlabError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.device = torch.device(device) if device is not None else None
        if seed is None:
            # Only a shuffled loader touches torch's global RNG, so adding an in-order loader
            # (validation) does not change what a seeded run draws elsewhere.
            seed = int(torch.randint(0, 2**62, ()).item()) if shuffle else 0
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)  # advances once per shuffled epoch
        self.rank, self.world_size = shard
        if not 0 <= self.rank < self.world_size:
            raise DigitlabError(f"shard rank {self.rank} is outside 0..{self.world_size - 1}")

        data = _stacked_records(data)
        self._single = isinstance(data, torch.Tensor)
        all_tensors = isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data)
        if self._single or all_tensors:
            tensors = (data,) if self._single else tuple(data)
            if any(t.ndim == 0 for t in tensors):
                raise DigitlabError("DataLoader cannot batch a 0-dim tensor (it has no first dimension to split)")
            lengths = [len(t) for t in tensors]
            if len(set(lengths)) > 1:
                raise DigitlabError(f"DataLoader tensors must have the same length (first dimension), got {lengths}")
            self._tensors: tuple[torch.Tensor, ...] | None = tuple(_to(t, self.device) for t in tensors)
            self.dataset: Any = self._tensors[0] if self._single else self._tensors
            self.n = lengths[0]
        else:
            self._tensors = None
            # Needs len() and indexing; a set or a generator is read into a list once.
            self.dataset = data if isinstance(data, Sequence) else list(data)
            self.n = len(self.dataset)
        if self.world_size > 1 and self._tensors is None:
            raise DigitlabError("sharding needs tensor data, e.g. DataLoader((x, y), shard=(rank, world_size))")

    @property
    def n_local(self) -> int:
        """Items this rank sees per epoch (all of them with one process)."""
        if self.world_size == 1:
            return self.n
        if self.shuffle:
            return self.n // self.world_size
        return len(range(self.rank, self.n, self.world_size))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Where the shuffling stands: what a resumed fit needs for its next epoch's order."""
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._generator.set_state(state["generator"])

    def __len__(self) -> int:
        full, rest = divmod(self.n_local, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _order(self) -> torch.Tensor | None:
        """This epoch's permutation (this rank's part of it), int64, or None for the natural order."""
        order = torch.randperm(self.n, generator=self._generator) if self.shuffle else None
        if self.world_size == 1:
            return order
        if order is None:
            order = torch.arange(self.n)
        return order[self.rank :: self.world_size][: self.n_local]

    def __iter__(self) -> Iterator[Any]:
        stop = len(self) * self.batch_size  # past the end is fine: slices clip
        order = self._order()
        n = self.n_local
        if self._tensors is not None:
            tensors = self._tensors
            # Shuffled: each batch gathers its rows by a slice of the permutation, so the dataset
            # is held once (a permuted copy per epoch would double it). In order: views, no copy.
            order = order.to(tensors[0].device) if order is not None else None
            for i in range(0, min(stop, n), self.batch_size):
                if order is None:
                    batch = tuple(t[i : i + self.batch_size] for t in tensors)
                else:
                    rows = order[i : i + self.batch_size]
                    batch = tuple(t[rows] for t in tensors)
                yield batch[0] if self._single else batch
        else:
            index = order.tolist() if order is not None else range(self.n)
            for i in range(0, min(stop, n), self.batch_size):
                items = [self.dataset[j] for j in index[i : i + self.batch_size]]
                yield _to(collate(items), self.device)

    def __repr__(self) -> str:
        return (
            f"DataLoader(n={self.n}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, batches={len(self)})"
        )


class DataLoaders:
    """A training and a validation `DataLoader`, as `.train`/`.valid` or `[0]`/`[1]` (like fastai)."""

    def __init__(self, train: DataLoader, valid: DataLoader) -> None:
        self.train, self.valid = train, valid

    def __getitem__(self, i: int) -> DataLoader:
        return (self.train, self.valid)[i]

    def __len__(self) -> int:
        return 2

    def __iter__(self) -> Iterator[DataLoader]:
        return iter((self.train, self.valid))

    @classmethod
    def from_tensors(
        cls,
        train_x: torch.Tensor,
        train_y: torch.Tensor,
        valid_x: torch.Tensor,
        valid_y: torch.Tensor,
        batch_size: int = 256,
        seed: int | None = None,
        device: str | torch.device | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> DataLoaders:
        """Shuffled training batches; validation in order and twice as large (no gradients kept there)."""
        train = DataLoader(
            (train_x, train_y), batch_size=batch_size, shuffle=True, seed=seed, device=device, shard=shard
        )
        valid = DataLoader((valid_x, valid_y), batch_size=2 * batch_size, shuffle=False, device=device, shard=shard)
        return cls(train, valid)

    def __repr__(self) -> str:
        return f"DataLoaders(train={self.train!r}, valid={self.valid!r})"
