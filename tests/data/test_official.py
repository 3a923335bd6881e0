"""DIGITLAB_MNIST_FILES: official MNIST files already on the machine, checked by content digest,
give `mnist` and exactly fastai's `mnist_sample`. Small stand-in files exercise the checks; the real
files (../shared/data, workspace and CI only) check the counts fastai's MNIST_SAMPLE has."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from digitlab.config import Settings
from digitlab.data import official, sources
from digitlab.data.formats.idx import write_idx
from digitlab.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _write_four(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 10)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))


def test_content_digest_sees_through_gzip(tmp_path):
    plain = tmp_path / "x"
    plain.write_bytes(b"digits" * 1000)
    zipped = tmp_path / "x.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    assert official.content_sha256(plain) == official.content_sha256(zipped)


def test_files_that_are_not_the_official_ones_stop_with_their_name(tmp_path):
    _write_four(tmp_path / "mine")
    with pytest.raises(DataError, match=r"not the official MNIST (t10k|train)-(images|labels) file"):
        official.find_official((tmp_path / "mine",))


def test_missing_files_or_folders_fall_through_to_the_other_sources(tmp_path):
    (tmp_path / "half").mkdir()
    write_idx(tmp_path / "half" / "t10k-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    assert official.find_official((tmp_path / "half", tmp_path / "nowhere")) == {}


def test_settings_read_the_folders_as_a_path_list():
    settings = Settings.from_env({"DIGITLAB_MNIST_FILES": "/a/train:/b/test:", "DIGITLAB_HOME": "/h"})
    assert settings.mnist_files == (Path("/a/train"), Path("/b/test"))


@pytest.mark.skipif(not (SHARED / "mnist-train").is_dir(), reason="the official files are only in the workspace and CI")
def test_the_official_files_rebuild_fastais_mnist_sample(tmp_path):
    settings = Settings(home=tmp_path, offline=True, mnist_files=(SHARED / "mnist-train", SHARED / "mnist-test"))
    lines: list[str] = []
    sample = sources.resolve("mnist_sample", settings, lines.append)
    assert sample.train.counts() == {"3": 6131, "7": 6265} and sample.valid.counts() == {"3": 1010, "7": 1028}
    assert "official MNIST files" in lines[0] and sample.provenance["source"] == "official-files"
    full = sources.resolve("mnist", settings, lines.append)
    assert len(full.train) == 60_000 and len(full.valid) == 10_000
