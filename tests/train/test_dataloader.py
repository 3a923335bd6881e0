"""DataLoader: batches cover the data once per epoch, in an order a seed fixes."""

from __future__ import annotations

import string

import pytest
import torch

from digitlab.errors import DigitlabError
from digitlab.train.dataloader import DataLoader, DataLoaders, collate, first


def xy(n: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 4)  # (n, 4), row i is all i
    y = torch.arange(n)  # (n,) so we can check x and y stay paired
    return x, y


def first_column_order(dl: DataLoader) -> list[int]:
    return [int(v) for xb, _ in dl for v in xb[:, 0]]


def test_tensor_batches_are_paired_slices_in_order() -> None:
    x, y = xy(10)
    batches = list(DataLoader((x, y), batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    for xb, yb in batches:
        assert isinstance(xb, torch.Tensor) and xb.shape[1:] == (4,)
        assert torch.equal(xb[:, 0].long(), yb)
    assert torch.equal(torch.cat([b[1] for b in batches]), y)


def test_every_item_once_per_epoch_and_paired_when_shuffled() -> None:
    x, y = xy(103)
    dl = DataLoader((x, y), batch_size=10, shuffle=True, seed=0)
    for _ in range(3):
        seen = []
        for xb, yb in dl:
            assert torch.equal(xb[:, 0].long(), yb)  # the same permutation for x and y
            seen += yb.tolist()
        assert sorted(seen) == list(range(103))


def test_same_seed_same_batches_different_seed_different_order() -> None:
    x, y = xy(50)
    a, b = DataLoader((x, y), 8, shuffle=True, seed=1), DataLoader((x, y), 8, shuffle=True, seed=1)
    c = DataLoader((x, y), 8, shuffle=True, seed=2)
    for _ in range(2):  # two epochs: the sequence of epochs repeats too
        assert first_column_order(a) == first_column_order(b)
    assert first_column_order(a) != first_column_order(c)


def test_epochs_differ() -> None:
    x, y = xy(50)
    dl = DataLoader((x, y), 8, shuffle=True, seed=0)
    assert first_column_order(dl) != first_column_order(dl)


def test_no_seed_follows_torch_manual_seed() -> None:
    x, y = xy(50)
    torch.manual_seed(5)
    a = first_column_order(DataLoader((x, y), 8, shuffle=True))
    torch.manual_seed(5)
    assert first_column_order(DataLoader((x, y), 8, shuffle=True)) == a


def test_unshuffled_is_in_order() -> None:
    x, y = xy(20)
    assert first_column_order(DataLoader((x, y), 6)) == list(range(20))


@pytest.mark.parametrize(
    "n, bs, drop_last, expected",
    [(10, 4, False, 3), (10, 4, True, 2), (12, 4, True, 3), (12, 4, False, 3), (3, 4, True, 0), (0, 4, False, 0)],
)
def test_len_and_drop_last(n: int, bs: int, drop_last: bool, expected: int) -> None:
    x, y = xy(n)
    dl = DataLoader((x, y), batch_size=bs, drop_last=drop_last, shuffle=True, seed=0)
    batches = list(dl)
    assert len(dl) == len(batches) == expected
    if drop_last:
        assert all(len(b[0]) == bs for b in batches)


def test_single_tensor_yields_tensors() -> None:
    x, _ = xy(10)
    batches = list(DataLoader(x, batch_size=5))
    assert all(isinstance(b, torch.Tensor) and b.shape == (5, 4) for b in batches)


def test_batches_are_views_when_not_shuffled() -> None:
    x, y = xy(10)
    xb, _ = next(iter(DataLoader((x, y), batch_size=5)))
    assert xb.data_ptr() == x.data_ptr()  # a slice, not a copy


def test_device_and_dataset() -> None:
    x, y = xy(10)
    dl = DataLoader([x, y], batch_size=5, device="cpu")
    assert dl.dataset[0] is x or torch.equal(dl.dataset[0], x)
    assert all(b.device.type == "cpu" for batch in dl for b in batch)


def test_book_range_example() -> None:
    # coll = range(15); dl = DataLoader(coll, batch_size=5, shuffle=True); list(dl)
    dl = DataLoader(range(15), batch_size=5, shuffle=True)
    batches = list(dl)
    assert len(dl) == 3 and len(batches) == 3
    assert all(isinstance(b, torch.Tensor) and b.shape == (5,) and b.dtype == torch.int64 for b in batches)
    assert sorted(torch.cat(batches).tolist()) == list(range(15))


def test_book_string_example() -> None:
    # ds = L(enumerate(string.ascii_lowercase)); dl = DataLoader(ds, batch_size=6, shuffle=True)
    ds = list(enumerate(string.ascii_lowercase))
    batches = list(DataLoader(ds, batch_size=6, shuffle=True, seed=0))
    assert [len(b[0]) for b in batches] == [6, 6, 6, 6, 2]
    for numbers, letters in batches:
        assert isinstance(numbers, torch.Tensor) and isinstance(letters, list)
        assert [string.ascii_lowercase[i] for i in numbers.tolist()] == letters  # still paired
    assert sorted(c for _, letters in batches for c in letters) == list(string.ascii_lowercase)


def test_plain_string_gives_lists_of_characters() -> None:
    batches = list(DataLoader(string.ascii_lowercase, batch_size=10))
    assert batches == [list("abcdefghij"), list("klmnopqrst"), list("uvwxyz")]


def test_book_zip_dataset_collates_per_field() -> None:
    # dset = list(zip(train_x, train_y)): a list of (image (784,), label (1,)) tuples
    x, y = torch.rand(10, 784), torch.randint(0, 2, (10, 1)).float()
    batches = list(DataLoader(list(zip(x, y)), batch_size=4))
    xb, yb = batches[0]
    assert xb.shape == (4, 784) and yb.shape == (4, 1)
    assert torch.equal(torch.cat([b[0] for b in batches]), x)
    assert torch.equal(torch.cat([b[1] for b in batches]), y)


def test_book_zip_dataset_is_stacked_once_and_shuffles_like_its_items() -> None:
    # A list of (x, y) tuples becomes the tensor fast path: the same batches as collating the
    # items one by one (checked against collate with the same seed), without Python per item.
    x, y = torch.rand(50, 784), torch.randint(0, 2, (50, 1))
    dl = DataLoader(list(zip(x, y)), batch_size=8, shuffle=True, seed=3)
    assert dl._tensors is not None  # stacked: batches are gathers, not per-item collation
    order = torch.randperm(50, generator=torch.Generator().manual_seed(3))
    for i, (xb, yb) in enumerate(dl):
        rows = order[i * 8 : (i + 1) * 8]
        expected = collate([(x[j], y[j]) for j in rows.tolist()])
        assert torch.equal(xb, expected[0]) and torch.equal(yb, expected[1])
    mixed = [(x[0], y[0]), (x[1][:10], y[1])]  # shapes differ: left to per-item collation, which says why
    with pytest.raises(DigitlabError, match="different shapes"):
        list(DataLoader(mixed, batch_size=2))


def test_first_is_one_batch() -> None:
    x, y = xy(10)
    xb, yb = first(DataLoader((x, y), batch_size=4))
    assert xb.shape == (4, 4) and yb.tolist() == [0, 1, 2, 3]
    assert first(range(3, 9)) == 3
    with pytest.raises(DigitlabError, match="empty"):
        first([])


def test_collate() -> None:
    assert torch.equal(collate([1, 2, 3]), torch.tensor([1, 2, 3]))
    assert collate([0.5, 1.5]).dtype == torch.float32
    assert collate(["a", "b"]) == ["a", "b"]
    nums, names = collate([(1, "a"), (2, "b")])
    assert torch.equal(nums, torch.tensor([1, 2])) and names == ["a", "b"]
    with pytest.raises(DigitlabError, match="different shapes"):
        collate([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(DigitlabError, match="different numbers of fields"):
        collate([(1, 2), (3,)])


def test_dataloaders_from_tensors() -> None:
    x, y = xy(100)
    dls = DataLoaders.from_tensors(x[:80], y[:80], x[80:], y[80:], batch_size=16, seed=0)
    assert dls[0] is dls.train and dls[1] is dls.valid
    assert dls.train.shuffle and not dls.valid.shuffle
    assert dls.train.batch_size == 16 and dls.valid.batch_size == 32
    assert len(dls.train) == 5 and len(dls.valid) == 1
    assert first_column_order(dls.valid) == list(range(80, 100))
    again = DataLoaders.from_tensors(x[:80], y[:80], x[80:], y[80:], batch_size=16, seed=0)
    assert first_column_order(dls.train) == first_column_order(again.train)


def test_errors() -> None:
    with pytest.raises(DigitlabError, match=r"same length.*\[10, 9\]"):
        DataLoader((torch.zeros(10, 2), torch.zeros(9)))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(DigitlabError, match="batch_size must be a whole number >= 1"):
            DataLoader(range(5), batch_size=bad)
    with pytest.raises(DigitlabError, match="0-dim"):
        DataLoader(torch.tensor(3.0))


def test_shards_split_each_epoch_between_ranks():
    x = torch.arange(103)
    loaders = [DataLoader((x, x), batch_size=8, shuffle=True, seed=5, shard=(rank, 3)) for rank in range(3)]
    for _ in range(2):  # two epochs: a new shared permutation each time
        seen = [torch.cat([xb for xb, _ in dl]) for dl in loaders]
        assert [len(s) for s in seen] == [34, 34, 34] and len({len(dl) for dl in loaders}) == 1
        together = torch.cat(seen)
        assert len(together.unique()) == 102  # disjoint; one item left over this epoch
    valid = [DataLoader((x, x), batch_size=8, shard=(rank, 3)) for rank in range(3)]
    assert sorted(torch.cat([xb for dl in valid for xb, _ in dl]).tolist()) == list(range(103))


def test_shard_errors():
    with pytest.raises(DigitlabError, match="outside"):
        DataLoader((torch.arange(4),), shard=(2, 2))
    with pytest.raises(DigitlabError, match="tensor data"):
        DataLoader(range(4), shard=(0, 2))


def test_a_shuffled_epoch_never_copies_the_whole_dataset() -> None:
    from torch.utils._python_dispatch import TorchDispatchMode

    class LargestOutput(TorchDispatchMode):
        """Records the most rows any tensor op produced while active."""

        rows = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor) and t.dim() and t.dtype != torch.int64:  # data, not indices
                    self.rows = max(self.rows, len(t))
            return out

    x, y = xy(1000)
    dl = DataLoader((x, y.float()), batch_size=32, shuffle=True, seed=0)
    with LargestOutput() as mode:
        batches = list(dl)
    assert mode.rows == 32  # each gather makes one batch; the (1000, 4) data is never copied
    assert sorted(int(v) for xb, _ in batches for v in xb[:, 0]) == list(range(1000))
