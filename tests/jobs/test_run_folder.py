"""RunFolder: a complete run replaces the old one in one step; a kill at any point leaves a run, never a hole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.core.durable import exchange
from digitlab.errors import DigitlabError
from digitlab.jobs.run_folder import REPLACED, RunFolder


def write_run(folder: RunFolder, text: str) -> None:
    """What a training writes into the partial folder: a card, weights and a checkpoint."""
    (folder.partial / "model.json").write_text(text)
    (folder.partial / "model.safetensors").write_text(text)
    folder.checkpoint.mkdir()
    (folder.checkpoint / "model.json").write_text(text)


def commit_run(out: Path, text: str, overwrite: bool = True) -> None:
    with RunFolder(out, overwrite=overwrite) as folder:
        write_run(folder, text)
        folder.commit()


def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "from-a").touch()
    (tmp_path / "b").mkdir()
    assert exchange(tmp_path / "a", tmp_path / "b")  # Linux, ext4/tmpfs: supported
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["from-a"]
    assert list((tmp_path / "a").iterdir()) == []
    with pytest.raises(FileNotFoundError):
        exchange(tmp_path / "a", tmp_path / "missing")


def test_an_overwrite_leaves_only_the_new_run(tmp_path):
    out = tmp_path / "run"
    commit_run(out, "one", overwrite=False)
    commit_run(out, "two")
    assert (out / "model.json").read_text() == "two" and not (out / REPLACED).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_reader_never_sees_the_run_missing_while_it_is_replaced(tmp_path):
    out = tmp_path / "run"
    commit_run(out, "0", overwrite=False)
    # A second process stats OUT/model.json as fast as it can while this one replaces the run 40 times;
    # two renames would leave moments with no OUT at all.
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\nmissing = 0\nprint('ready', flush=True)\n"
            "while not os.path.exists(sys.argv[2]):\n"
            "    missing += not os.path.exists(sys.argv[1])\n"
            "print(missing)",
            str(out / "model.json"),
            str(tmp_path / "stop"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None and watcher.stdout.readline().strip() == "ready"
    for i in range(1, 41):
        commit_run(out, str(i))
    (tmp_path / "stop").touch()
    out_text, _ = watcher.communicate(timeout=60)
    assert out_text.strip() == "0"
    assert (out / "model.json").read_text() == "40"


def test_a_kill_after_the_exchange_leaves_the_new_run_and_the_next_run_cleans_up(tmp_path, monkeypatch):
    out = tmp_path / "run"
    commit_run(out, "old", overwrite=False)

    def killed(path: Path, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # stands for a kill -9 between the exchange and the deletion

    monkeypatch.setattr("digitlab.jobs.run_folder.shutil.rmtree", killed)
    with pytest.raises(KeyboardInterrupt), RunFolder(out, overwrite=True) as folder:
        write_run(folder, "new")
        folder.commit()
    monkeypatch.undo()
    assert (out / "model.json").read_text() == "new"
    partial = tmp_path / ".run.partial"
    assert (partial / REPLACED).exists() and (partial / "checkpoint").exists()  # the old run, marked
    # The next run deletes it instead of offering to resume it (it holds a checkpoint)
    with pytest.raises(DigitlabError, match="no interrupted run to resume"), RunFolder(out, resume=True):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_kill_after_marking_but_before_the_exchange_keeps_the_old_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    commit_run(out, "old", overwrite=False)

    def killed(a: Path, b: Path) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr("digitlab.jobs.run_folder.exchange", killed)
    with pytest.raises(KeyboardInterrupt), RunFolder(out, overwrite=True) as folder:
        write_run(folder, "new")
        folder.commit()
    monkeypatch.undo()
    assert (out / "model.json").read_text() == "old" and (out / REPLACED).exists()
    with pytest.raises(DigitlabError, match="already holds a trained run"), RunFolder(out):
        pass
    assert not (out / REPLACED).exists()  # unmarked: it is the run again


def test_without_an_atomic_exchange_two_renames_still_replace_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr("digitlab.jobs.run_folder.exchange", lambda a, b: False)
    out = tmp_path / "run"
    commit_run(out, "old", overwrite=False)
    commit_run(out, "new")
    assert (out / "model.json").read_text() == "new" and not (out / REPLACED).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
