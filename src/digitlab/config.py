"""Settings read from the environment in one place, then passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path  # cache root: downloads, extracted archives, decoded datasets
    download_base: str | None = None  # replaces the canonical URLs' folder (a self-hosted mirror, a test server)
    offline: bool = False  # skip downloads entirely, go straight to the offline mirror
    timeout: float = 10.0  # seconds to connect / between bytes; offline machines fail fast anyway
    mnist_files: tuple[Path, ...] = ()  # folders holding the official MNIST IDX files: used before downloading

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """DIGITLAB_HOME (default ~/.cache/digitlab), DIGITLAB_DOWNLOAD_BASE, DIGITLAB_OFFLINE=1,
        DIGITLAB_MNIST_FILES (folders, separated as in PATH)."""
        home = environ.get("DIGITLAB_HOME") or str(Path.home() / ".cache" / "digitlab")
        return cls(
            home=Path(home).expanduser(),
            download_base=environ.get("DIGITLAB_DOWNLOAD_BASE") or None,
            offline=environ.get("DIGITLAB_OFFLINE", "") not in ("", "0", "false", "no"),
            mnist_files=tuple(
                Path(p).expanduser() for p in environ.get("DIGITLAB_MNIST_FILES", "").split(os.pathsep) if p
            ),
        )

    def folder(self, name: str) -> Path:
        """A sub-folder of the cache, created on first use."""
        path = self.home / name
        path.mkdir(parents=True, exist_ok=True)
        return path
