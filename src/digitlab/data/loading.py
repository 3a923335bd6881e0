"""One entry point for every kind of data a user can name: `load_dataset("mnist_sample")`,
a folder of PNGs, an IDX file or folder, a Keras `mnist.npz`, or an archive of any of them.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path
from typing import Any

from ..config import Settings
from ..core.progress import Log, progress_bar, stderr_log
from ..errors import DataError
from . import cache, sources
from .corrections import is_corrections, load_corrections
from .digits import DigitDataset, Digits, evaluation_split, with_holdout
from .formats.archive import removed_on_failure, safe_extract
from .formats.folders import load_image_folder
from .formats.idx import idx_files, labels_path_for, load_idx_folder, load_idx_pair
from .formats.npz import load_npz


def load_dataset(
    spec: str, settings: Settings | None = None, log: Log = stderr_log, refresh: bool = False
) -> DigitDataset:
    """A named dataset (see `sources.NAMED`) or a path: `load_dataset("mnist_sample")` in a notebook.

    settings: the cache folder and download options (default: `Settings.from_env()`).
    log: where the one-line status messages go (default: stderr; `quiet_log` drops them).
    """
    settings = settings or Settings.from_env()
    if spec in sources.NAMED:
        return sources.resolve(spec, settings, log, refresh=refresh)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"{spec}: no such file or folder, and not a dataset name ({', '.join(sources.NAMED)})")
    return load_path(path, settings, log)


def _is_archive(path: Path) -> bool:
    return zipfile.is_zipfile(path) or (tarfile.is_tarfile(path) and not path.name.endswith(".npz"))


def load_path(path: Path, settings: Settings, log: Log) -> DigitDataset:
    """Detect the format by content and structure, not by trusting the name alone."""
    path = path.resolve()
    if path.is_dir() and is_corrections(path):  # a few digits, one class or more: read as they are, not cached
        return load_corrections(path)
    if path.is_dir():
        return _load_folder(path, settings, log, key=None)
    if path.suffix == ".npz":
        return load_npz(path)
    if _is_archive(path):
        key = cache.file_sha256(path)[:32]

        def decode() -> DigitDataset:
            root = safe_extract(path, settings.folder("extracted") / key)
            with removed_on_failure(root):  # an archive that is not digits leaves nothing in the cache
                dataset = _load_folder(root, settings, log, key=key, name=_stem(path))
            provenance = {**dataset.provenance, "path": str(path), "archive": True}
            return DigitDataset(dataset.name, dataset.train, dataset.valid, provenance)

        return cache.cached(settings.home, key, decode, log, name=path.name)
    if "idx3" in path.name:
        digits = load_idx_pair(path, labels_path_for(path))
        return DigitDataset(_stem(path), digits, None, {"source": "idx", "path": str(path)})
    raise DataError(f"{path}: not a dataset (expected a folder, IDX images file, .npz, .tgz/.tar.gz/.zip)")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".zip", ".tar", ".gz", ".npz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _unwrap(root: Path) -> Path:
    """Descend through single wrapper folders (`mnist_sample/` inside an archive)."""
    while True:
        entries = [p for p in root.iterdir() if not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        else:
            return root


def _load_folder(root: Path, settings: Settings, log: Log, key: str | None, name: str | None = None) -> DigitDataset:
    """key: the cache key the caller stores the result under (an archive's), or None."""
    inner = _unwrap(root)
    folder_name = name or root.name
    if idx_files(inner):
        return load_idx_folder(inner, name=folder_name)
    npz_files = [p for p in inner.iterdir() if p.suffix == ".npz"]
    if len(npz_files) == 1 and not any(p.is_dir() for p in inner.iterdir()):
        return load_npz(npz_files[0], name=folder_name)

    def decode() -> DigitDataset:
        with progress_bar(f"decoding {folder_name}") as on_progress:
            return load_image_folder(inner, name=folder_name, on_progress=on_progress)

    if key is None:  # a plain folder of images: cache by content so the second load is fast
        return cache.cached(settings.home, cache.folder_fingerprint(inner)[:32], decode, log, name=folder_name)
    return decode()


def train_and_valid(
    data: str, valid: str | None, settings: Settings, log: Log
) -> tuple[DigitDataset, Digits, dict[str, Any]]:
    """The data to learn from and the digits to validate on, for `baseline` and `train`.

    Without `valid`, the dataset's own valid split (or a stratified 20% holdout).
    With `valid`, all the training data (holdout included) is learned from and the other
    set is validated on, reduced to the classes the model knows (and said so).
    Returns (dataset whose .train is what to learn from, valid digits, facts for the report).
    """
    dataset = load_dataset(data, settings, log)
    facts = {"data": data, "data_source": dataset.provenance.get("source", "unknown")}
    if valid is None:
        dataset = with_holdout(dataset)
        facts["valid"] = "holdout" if dataset.valid_is_holdout else "valid split"
        assert dataset.valid is not None  # with_holdout always has a valid split
        return dataset, dataset.valid, facts
    train = DigitDataset(dataset.name, dataset.all_training_data(), None, dataset.provenance)
    other = load_dataset(valid, settings, log)
    digits = evaluation_split(other)
    reduced = digits.with_classes(dataset.classes)
    if len(reduced) < len(digits):
        log(
            f"valid: kept the classes the model knows ({', '.join(dataset.classes)}): "
            f"{len(reduced):,} of {len(digits):,} images from {valid}"
        )
    if len(reduced) == 0:
        raise DataError(f"{valid}: has no images of the classes {list(dataset.classes)}")
    facts.update(valid=valid, valid_source=other.provenance.get("source", "unknown"), valid_reduced_from=len(digits))
    return train, reduced, facts
