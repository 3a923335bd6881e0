"""`digitlab train` never loses a run (--out refused, replaced when complete, locked); bad numbers are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.cli import main
from digitlab.errors import DigitlabError
from digitlab.run.run_folder import RunFolder
from digitlab.run.serialization import load_model


@pytest.fixture
def sample(tmp_path, png_tree) -> Path:
    root = tmp_path / "sample"
    png_tree(root, {"train": 6, "valid": 3})
    return root


def fails(capsys, *argv: str) -> str:
    """A command that must fail with exit 2 and one line on stderr, no traceback; returns that line."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitlab: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_an_out_that_holds_a_run_is_refused_without_overwrite(capsys, tmp_path, sample, train_cli):
    out = tmp_path / "run"
    train_cli(sample, out, "--epochs", "1", "--seed", "1")
    before = (out / "model.json").read_text()
    err = fails(capsys, "train", "--data", str(sample), "--epochs", "1", "--out", str(out), "--quiet")
    assert str(out) in err and "--overwrite" in err
    assert (out / "model.json").read_text() == before
    train_cli(sample, out, "--epochs", "1", "--seed", "2", "--overwrite", "--report")
    assert load_model(out).card.seed == 2 and (out / "report.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "sample"]  # no partial, old or lock left


def test_a_failed_overwrite_leaves_the_old_run_intact(capsys, tmp_path, sample, train_cli, monkeypatch):
    out = tmp_path / "run"
    train_cli(sample, out, "--epochs", "1", "--seed", "1", "--report")
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    import digitlab.pages.report

    def broken(run_dir: Path) -> Path:
        raise DigitlabError("the report failed")

    monkeypatch.setattr("digitlab.cli.train_cmd.write_report", broken)
    args = ["--epochs", "1", "--seed", "2", "--out", str(out), "--overwrite", "--report", "--quiet"]
    assert "the report failed" in fails(capsys, "train", "--data", str(sample), *args)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files
    assert load_model(out).card.seed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "sample"]
    assert digitlab.pages.report.write_report is not broken


def test_a_run_is_written_under_a_temporary_name_until_it_is_complete(tmp_path, sample, train_cli, monkeypatch):
    seen: list[list[str]] = []
    import digitlab.cli.train_cmd as train_cmd

    real = train_cmd.write_report

    def spy(run_dir: Path) -> Path:
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        return real(run_dir)

    monkeypatch.setattr(train_cmd, "write_report", spy)
    train_cli(sample, tmp_path / "run", "--epochs", "1", "--report")
    assert seen == [[".run.lock", ".run.partial", "sample"]]  # nothing named run until the report was written


def test_a_second_process_cannot_write_the_same_folder(capsys, tmp_path, sample):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from digitlab.run.run_folder import RunFolder\n"
            "with RunFolder(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        err = fails(capsys, "train", "--data", str(sample), "--epochs", "1", "--out", str(out), "--quiet")
        assert "being written by another process" in err and f"pid {holder.pid}" in err and str(out) in err
    finally:
        holder.kill()
        holder.wait()
    with RunFolder(out):  # the kernel released the dead holder's lock
        pass


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--lr", "-1", "--lr must be a positive number, got -1.0"),
        ("--lr", "nan", "--lr must be a positive number, got nan"),
        ("--lr", "0", "--lr must be a positive number"),
        ("--threads", "-1", "--threads must be at least 1, got -1"),
        ("--epochs", "0", "--epochs must be at least 1, got 0"),
        ("--bs", "0", "--bs must be at least 1, got 0"),
    ],
)
def test_numbers_that_cannot_train_are_one_line(capsys, tmp_path, sample, flag, value, words):
    err = fails(capsys, "train", "--data", str(sample), flag, value, "--out", str(tmp_path / "run"))
    assert words in err
    assert not (tmp_path / "run").exists()


def test_device_auto_says_which_device_it_picked(capsys, tmp_path, sample, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    out = tmp_path / "run"
    code = main(["train", "--data", str(sample), "--epochs", "1", "--device", "auto", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "--device auto: training on cpu" in captured.err.splitlines()
    assert json.loads(captured.out)["device"] == "cpu"
