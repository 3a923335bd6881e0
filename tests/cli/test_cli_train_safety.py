"""`digitlab train` never loses a run (--out refused, replaced when complete, locked); bad numbers are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.artifacts.serialization import load_model
from digitlab.cli import main
from digitlab.errors import DigitlabError
from digitlab.jobs.run_folder import RunFolder


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

    monkeypatch.setattr(digitlab.pages.report, "write_report", broken)  # train imports it when --report asks
    args = ["--epochs", "1", "--seed", "2", "--out", str(out), "--overwrite", "--report", "--quiet"]
    assert "the report failed" in fails(capsys, "train", "--data", str(sample), *args)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files
    assert load_model(out).card.seed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "sample"]


def test_a_run_is_written_under_a_temporary_name_until_it_is_complete(tmp_path, sample, train_cli, monkeypatch):
    seen: list[list[str]] = []
    import digitlab.pages.report as report

    real = report.write_report

    def spy(run_dir: Path) -> Path:
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        return real(run_dir)

    monkeypatch.setattr(report, "write_report", spy)
    train_cli(sample, tmp_path / "run", "--epochs", "1", "--report")
    assert seen == [[".run.lock", ".run.partial", "sample"]]  # nothing named run until the report was written


def test_a_second_process_cannot_write_the_same_folder(capsys, tmp_path, sample):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from digitlab.jobs.run_folder import RunFolder\n"
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
        ("--lr", "-1", "--lr must be a positive number at most 1000, got -1.0"),
        ("--lr", "nan", "--lr must be a positive number at most 1000, got nan"),
        ("--lr", "0", "--lr must be a positive number"),
        ("--lr", "1e308", "--lr must be a positive number at most 1000, got 1e+308"),
        ("--threads", "-1", "--threads must be between 1 and"),
        ("--threads", "5000", "--threads must be between 1 and"),
        ("--epochs", "0", "--epochs must be between 1 and 100,000, got 0"),
        ("--bs", "0", "--bs must be between 1 and"),
        ("--seed", str(2**70), f"--seed must be between 0 and {2**63 - 1:,}, got {2**70:,}"),
        ("--seed", "-1", "--seed must be between 0 and"),
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


def test_an_interrupted_run_resumes_to_the_same_weights(
    capsys, tmp_path, sample, train_cli, monkeypatch, interrupt_after
):
    """The CNN recipe (momentum, one-cycle, augmentation): 3 epochs straight, or 2, Ctrl-C, --resume."""
    import torch

    args = ["--model", "cnn", "--epochs", "3", "--checkpoints", "--quiet"]
    train_cli(sample, tmp_path / "straight", *args[:-1])
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2, KeyboardInterrupt())
        assert main(["train", "--data", str(sample), "--out", str(out), *args]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"interrupted; the last checkpoint (epoch 2) is in {tmp_path / '.run.partial' / 'checkpoint'}" in err
    assert f"continue with: digitlab train --resume {out}" in err
    assert not out.exists() and (tmp_path / ".run.partial" / "checkpoint" / "model.json").exists()

    err = fails(capsys, "train", "--data", str(sample), "--out", str(out), *args)
    assert f"--resume {out}" in err and "--overwrite" in err  # a new run would lose the checkpoint

    assert main(["train", "--resume", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert f"resuming {out} after epoch 2 of 3" in captured.err
    result = json.loads(captured.out)
    assert [row["epoch"] for row in result["history"]] == [1, 2, 3] and result["model_path"] == str(
        out / "model.safetensors"
    )
    a, b = load_model(tmp_path / "straight").model.state_dict(), load_model(out).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((out / "checkpoint" / "model.json").read_text())["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "sample", "straight"]
    assert "no interrupted run to resume" in fails(capsys, "train", "--resume", str(out))


def test_a_run_saved_before_the_marks_resumes_without_them(
    capsys, tmp_path, sample, train_cli, monkeypatch, interrupt_after
):
    """A checkpoint whose resume.json has no `outliers` or `thicken` (written before the CNN's recipe had marks
    that are not digits) goes on as it began, without them: the weights of a straight run without them."""
    import torch

    from digitlab.cli.train_resume import RESUME_INFO

    without = ["--outliers", "0", "--thicken", "0"]
    args = ["--model", "cnn", "--epochs", "3", "--checkpoints", "--quiet"]
    train_cli(sample, tmp_path / "straight", *args[:-1], *without)
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2, KeyboardInterrupt())
        assert main(["train", "--data", str(sample), "--out", str(out), *args, *without]) == 130
    info_path = tmp_path / ".run.partial" / "checkpoint" / RESUME_INFO
    info = json.loads(info_path.read_text())
    assert info["config"].pop("outliers") == 0 and info["config"].pop("thicken") == 0
    info_path.write_text(json.dumps(info))
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    a, b = load_model(tmp_path / "straight").model.state_dict(), load_model(out).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_diverged_loss_after_a_checkpoint_names_it(capsys, tmp_path, sample, monkeypatch, interrupt_after):
    from digitlab.train.callbacks import TrainingDiverged

    out = tmp_path / "run"
    interrupt_after(monkeypatch, 1, TrainingDiverged("training diverged at epoch 2"))
    err = fails(capsys, "train", "--data", str(sample), "--epochs", "3", "--checkpoints", "--out", str(out), "--quiet")
    assert "training diverged at epoch 2; the last checkpoint (epoch 1) is in" in err
    assert f"digitlab train --resume {out}" in err


def test_ctrl_c_without_checkpoints_says_nothing_was_saved_and_how_to_keep_it(capsys, tmp_path, sample, monkeypatch):
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("digitlab.jobs.train_run.train_run", interrupted)  # train_cmd imports it when it runs
    out = tmp_path / "run"
    assert main(["train", "--data", str(sample), "--epochs", "3", "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"interrupted; nothing was saved to {out}" in err and "--checkpoints" in err and "--resume" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]  # no partial folder, no lock


def test_resume_without_a_checkpoint_is_one_line(capsys, tmp_path):
    err = fails(capsys, "train", "--resume", str(tmp_path / "nothing"))
    assert "no interrupted run to resume" in err and "--checkpoints" in err


def test_demo_out_is_not_overwritten_by_accident(capsys, tmp_path, sample):
    out = tmp_path / "demo"
    args = ["demo", "--data", str(sample), "--models", "linear", "--out", str(out), "--quiet", "--json"]
    assert main(args) == 0
    capsys.readouterr()
    assert "--overwrite" in fails(capsys, *args)
    assert main([*args, "--overwrite"]) == 0
    assert load_model(out / "linear").card.metrics is not None
    assert sorted(p.name for p in out.iterdir()) == ["linear"]


def test_a_full_disk_while_saving_a_run_is_one_line(capsys, tmp_path, sample, monkeypatch):
    import errno

    import safetensors.torch

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    err = fails(capsys, "train", "--data", str(sample), "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet")
    assert "No space left on device" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]


def test_resume_refuses_settings_of_its_own(capsys, tmp_path):
    err = fails(capsys, "train", "--resume", str(tmp_path / "run"), "--epochs", "5", "--lr-find")
    assert "drop --epochs, --lr-find" in err
    for seed in ("43", "42"):  # a setting written is refused, even with the default's value
        assert "drop --seed" in fails(capsys, "train", "--resume", str(tmp_path / "run"), "--seed", seed)


@pytest.fixture
def small_disk(tmp_path, request):
    """A real filesystem that fills up: a small tmpfs (mounting one needs root, as in CI)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={request.param}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


# Sizes that run out at different points of a CNN run (seen with torch 2.13): the first checkpoint,
# a later checkpoint's fit state, the final model, the report's pictures. Whichever it is, the old
# run stays as it was and the error is one line.
@pytest.mark.parametrize("small_disk", ["64k", "400k", "1200k"], indirect=True)
@pytest.mark.parametrize("checkpoints", [True, False], ids=["checkpoints", "no-checkpoints"])
def test_a_really_full_disk_keeps_the_old_run(capsys, sample, small_disk, checkpoints):
    out = small_disk / "run"
    assert main(["train", "--data", str(sample), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    free = os.statvfs(small_disk).f_bavail
    args = ["--model", "cnn", "--epochs", "2", "--report", "--overwrite", "--out", str(out), "--quiet"]
    code = main(["train", "--data", str(sample), *args, *(["--checkpoints"] if checkpoints else [])])
    err = capsys.readouterr().err
    if code == 0:  # it all fit (the last size, without checkpoints): the new run replaced the old
        assert load_model(out).card.architecture.name == "cnn"
        return
    assert code == 2 and err.startswith("digitlab: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "No space left on device" in err and str(small_disk) in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files
    assert load_model(out).card.architecture.name == "linear"
    if (small_disk / ".run.partial").exists():  # an epoch's checkpoint was kept, and the error says so
        assert checkpoints and "the last checkpoint (epoch 1)" in err and f"digitlab train --resume {out}" in err
    else:  # nothing of the failed run is left behind
        assert sorted(p.name for p in small_disk.iterdir()) == ["run"]
        assert os.statvfs(small_disk).f_bavail == free
