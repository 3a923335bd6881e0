"""The README's shell examples run as written, in order, in a fresh copy of the project after
`make demo`, as a newcomer offline would: each exits as it should and shows what the README says.
Then every `--help` example is read by the command's own parser, and those that do not train or
serve run in the same folder.

Where the README names a newcomer's own files (`mywork.py`, a class's `submissions/`), a line reader
(it trains for minutes) and the official test set (`../shared/data/mnist-test`, the real one where it
sits beside the project), the test writes stand-ins first. One line is interrupted on purpose (the training the README's
next line resumes), and the `serve` lines are stopped once their page answers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import closed_port_url

pytestmark = pytest.mark.slow  # runs the README in a fresh copy: make demo and two CNN trainings (~4 min)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEST_SET = ROOT.parent / "shared" / "data" / "mnist-test"
LINE_LIMIT = 600  # seconds for one command: the longest (a CNN on 8,000 digits, or the demo) takes ~30 s quiet

NOT_RUN = {  # README lines this test does not run, and why
    "make demo": "the set-up: run first, in the copy",
    "make test": "the command that runs this test",
    "make notebook": "installs JupyterLab from the network, opens a browser (test_notebooks.py runs the notebooks)",
    "digitlab train --model line-reader --data mnist --out runs/lines": "trains for minutes: tests/lines/"
    "test_cli_lines.py runs the same command with short epochs",
    "digitlab predict runs/cnn10 samples/meter.jpg --number --lines runs/lines": "needs the line reader above: "
    "tests/lines/test_cli_lines.py runs predict --lines",
    "digitlab train --model cnn --data mnist --photos 0.25 --out runs/cnn10-photos": "photographs 2,000 digits "
    "first (minutes): tests/reading/test_photographed.py runs train --photos on fewer",
}
INTERRUPTED = "digitlab train --model cnn --data mnist --out runs/cnn10 --checkpoints"  # resumed by the next line

# what a README command must show (a regex on its stdout and stderr) and its exit code; others: exit 0
SHOWS: dict[str, tuple[int, str]] = {
    "make demo": (0, r"pictures in samples/"),
    "digitlab data list": (0, r"mnist_sample"),
    "digitlab data info mnist_sample": (0, r"train.*valid"),
    "digitlab baseline": (0, r"0\.9\d{3}"),
    "digitlab show mnist_sample:0 --crop 4:15,4:22 --png three.png": (0, r"saved three\.png"),
    INTERRUPTED: (130, r"--resume runs/cnn10"),
    "digitlab train --resume runs/cnn10": (0, r"accuracy 0\.9[5-9]"),
    "digitlab train --model cnn --data mnist --out runs/cnn10 --checkpoints --overwrite": (0, r"accuracy 0\.9[5-9]"),
    "digitlab evaluate runs/cnn10 --data ../shared/data/mnist-test": (0, r"accuracy 0\.9[5-9]"),
    "digitlab train --model cnn --lr-find --out runs/lr": (0, r"suggested lr"),
    "digitlab predict runs/cnn10 samples/seven.jpg samples/photos/ --top-k 3 --show seen.png": (
        0,
        r"seven\.jpg +7 .*\n(.*photos/(\d)\.jpg +\2 .*\n){10}",  # each photo read as its digit
    ),
    "digitlab predict runs/cnn10 samples/meter.jpg": (0, r"meter\.jpg +2026 +\(read as a number"),
    "digitlab predict runs/cnn10 samples/meter.jpg --number --json": (0, r'"number": "2026"'),
    "digitlab predict runs/cnn10 samples/letter_m.png samples/seven.jpg": (
        0,
        r"letter_m\.png +this does not look like a digit.*\n.*seven\.jpg +7 ",
    ),
    "digitlab predict runs/cnn10 samples/seven.jpg --correct 7": (0, r"my-digits/7/"),
    "digitlab exercises list": (0, r"(?s)mnist_distance.*batch_accuracy"),
    "digitlab exercises check mywork.py": (0, r"1 passed, 0 failed"),
    "digitlab exercises quiz": (0, r"Q1\."),
}


@dataclass
class Ran:
    line: str
    code: int
    output: str


def readme_lines() -> list[str]:
    """The command lines of README.md's ```sh blocks, in order (comment lines dropped)."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def command_of(line: str) -> str:
    """The command without its trailing `# comment`."""
    return re.sub(r"\s+#\s.*$", "", line).strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_project(target: Path) -> None:
    """The files a fresh clone has (tracked, and new files git does not ignore), and the set-up's venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)


def write_test_set(folder: Path, env: dict[str, str]) -> None:
    """A stand-in for the official test files: the mirror's held-out digits as t10k-* IDX files."""
    folder.mkdir(parents=True)
    script = (
        "import sys; from pathlib import Path; from digitlab.data.loading import load_dataset;"
        "from digitlab.data.formats.idx import write_idx; d = load_dataset('mnist').valid; f = Path(sys.argv[1]);"
        "write_idx(f / 't10k-images-idx3-ubyte.gz', d.images.numpy());"
        "write_idx(f / 't10k-labels-idx1-ubyte.gz', d.labels.numpy())"
    )
    subprocess.run([sys.executable, "-c", script, str(folder)], env=env, check=True)


def write_own_files(project: Path) -> None:
    """A newcomer's own work: an exercise file, and a class of two (one right, one wrong)."""
    right = "def mnist_distance(a, b):\n    return (a - b).abs().mean((-1, -2))\n"
    (project / "mywork.py").write_text(right)
    (project / "submissions").mkdir()
    (project / "submissions" / "ann.py").write_text(right)
    (project / "submissions" / "ben.py").write_text("def mnist_distance(a, b):\n    return (a - b).abs().sum()\n")


def run_line(line: str, project: Path, env: dict[str, str]) -> Ran:
    command = command_of(line)
    if command.startswith("digitlab serve"):
        return serve(line, project, env)
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,  # the quiz reads answers: none here
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if command == INTERRUPTED:  # a Ctrl-C once its first epoch is saved; the next line resumes it
        deadline = time.monotonic() + LINE_LIMIT
        while not (project / "runs" / ".cnn10.partial" / "checkpoint" / "train_state.safetensors").exists():
            assert process.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)  # bash -c runs one command: it is replaced by digitlab's process
    output, _ = process.communicate(timeout=LINE_LIMIT)
    return Ran(line, process.returncode, output)


def serve(line: str, project: Path, env: dict[str, str]) -> Ran:
    """Start the line's server on a free port, ask for its page and health, then stop it as Ctrl-C does."""
    port = free_port()
    process = subprocess.Popen(
        [*shlex.split(command_of(line)), "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    too_slow = threading.Timer(LINE_LIMIT, process.kill)  # never said "serving": stop waiting for it
    too_slow.start()
    seen = []
    try:
        for said in process.stdout:  # type: ignore[union-attr]
            seen.append(said)
            if said.startswith("serving"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
                    seen.append(f"page {page.status} {page.headers['content-type']}\n")
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=30) as health:
                    seen.append(f"health {json.dumps(json.load(health))}\n")
                break
    finally:
        too_slow.cancel()
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    return Ran(line, process.returncode, "".join(seen) + rest)


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory, npm_sharing_home):
    """A copy of the project after `make demo`, the README's lines run in it in order: (folder, env, results)."""
    base = tmp_path_factory.mktemp("newcomer")
    project = base / "digitlab"
    project.mkdir()
    copy_project(project)
    env = {
        **os.environ,
        "HOME": str(base / "home"),
        "DIGITLAB_HOME": str(npm_sharing_home(base / "cache")),
        "DIGITLAB_DOWNLOAD_BASE": closed_port_url(),  # offline: the canonical download fails, the mirror is used
        "OMP_NUM_THREADS": "1",
        "PATH": f"{project / '.venv' / 'bin'}:{os.environ['PATH']}",  # as `source .venv/bin/activate` does
        "COLUMNS": "100",
    }
    env.pop("DIGITLAB_OFFLINE", None)
    env.pop("DIGITLAB_MNIST_FILES", None)
    (base / "home").mkdir()
    test_set = base / "shared" / "data" / "mnist-test"
    if TEST_SET.is_dir():
        test_set.parent.mkdir(parents=True)
        test_set.symlink_to(TEST_SET, target_is_directory=True)
    else:
        write_test_set(test_set, env)
    demo = subprocess.run(  # the venv is the one make test made: not rebuilt (-o: taken as up to date)
        ["make", "-o", ".venv/.installed", "demo"], cwd=project, env=env, capture_output=True, text=True
    )
    results = [Ran("make demo", demo.returncode, demo.stdout + demo.stderr)]
    write_own_files(project)
    for line in readme_lines():
        if line.split("#")[0].strip() in NOT_RUN:
            continue
        results.append(run_line(line, project, env))
    return project, env, results


def expected(command: str) -> tuple[int, str]:
    """(exit code, regex) a README command must give."""
    if command.startswith("digitlab serve"):  # answered, then stopped by a Ctrl-C: exit 0
        corrections = r'.*"corrections": true' if "--corrections" in command else ""
        return 0, r"page 200 text/html(?s:.*)health .*\"ok\"" + corrections + r"(?s:.*)stopped"
    if command.startswith("digitlab exercises check --all"):  # one student of two fails: exit 1
        from digitlab.exercises.isolation import isolation

        return (1, r"ben") if isolation().available else (2, r"--unsafe")  # no sandbox: refused
    return SHOWS.get(command, (0, ""))


def test_every_readme_line_runs_as_written(newcomer):
    _project, _env, results = newcomer
    wrong = []
    for ran in results:
        code, shows = expected(command_of(ran.line))
        if ran.code != code or not re.search(shows, ran.output):
            wrong.append(f"{ran.line}\n  exit {ran.code} (expected {code}), to show {shows!r}:\n{ran.output[-3000:]}")
    assert not wrong, "\n\n".join(wrong)
    ran_lines = {ran.line for ran in results}
    assert all(line in ran_lines or line.split("#")[0].strip() in NOT_RUN for line in readme_lines())


# --help examples not run here (each is read by its parser), and why
HELP_NOT_RUN = {
    "train": "trains a model: the README's lines train every way its examples use",
    "demo": "trains four models: make demo and the README run it",
    "serve": "serves until stopped: the README's serve lines start, ask and stop it",
}

OWN_FILES = """
import json, sys
from pathlib import Path
import numpy as np
from PIL import Image
from digitlab.data.loading import load_dataset

home, project = Path(sys.argv[1]), Path(sys.argv[2])
digits = load_dataset("mnist").valid  # (N, 28, 28) uint8 held-out digits
pick = {d: (digits.labels == d).nonzero().flatten()[:20] for d in range(10)}
png = home / "data" / "mnist_png"
for folder, classes in ((png / "training", range(10)), (png / "testing", range(10)), (home / "my_digits", (1, 4, 8))):
    for d in classes:
        (folder / str(d)).mkdir(parents=True)
        for i in pick[d].tolist():
            Image.fromarray(digits.images[i].numpy()).save(folder / str(d) / f"{i}.png")
chosen = np.concatenate([pick[d].numpy() for d in range(10)])
x, y = digits.images[chosen].numpy(), digits.labels[chosen].numpy().astype(np.uint8)
np.savez(project / "mnist.npz", x_train=x, y_train=y, x_test=x[::2], y_test=y[::2])
cells = [
    "import torch",
    "def mnist_loss(predictions, targets):\\n    predictions = predictions.sigmoid()\\n"
    "    return torch.where(targets == 1, 1 - predictions, predictions).mean()",
    "def batch_accuracy(xb, yb):\\n    return ((xb.sigmoid() > 0.5) == yb).float().mean()",
]
notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "code", "id": str(n), "metadata": {}, "execution_count": None, "outputs": [], "source": c}
    for n, c in enumerate(cells)]}
(project / "ch4.ipynb").write_text(json.dumps(notebook))
from digitlab.artifacts.line_files import save_line_reader
from digitlab.line_reader import LineReader
save_line_reader(LineReader(), project / "runs" / "lines", {"scores": {}})  # untrained: what the line takes
"""


def help_examples() -> list[str]:
    """Every `digitlab ...` example line of every parser's --help (the command, its description cut)."""
    from digitlab.cli import build_parser

    texts: list[str] = []

    def walk(parser: argparse.ArgumentParser) -> None:
        texts.append(parser.description or "")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser())
    found = [m.group(1) for text in texts for m in re.finditer(r"^  (digitlab \S.*?)(?: {2,}\S.*)?$", text, re.M)]
    return list(dict.fromkeys(found))  # an example shown in two places (the group's and its own --help) runs once


def test_help_examples_are_read_by_their_parser():
    from digitlab.cli import build_parser

    examples = help_examples()
    assert len(examples) > 40 and any(e.startswith("digitlab exercises quiz") for e in examples)
    refused = []
    for example in examples:
        # a description one space from its command would be read as arguments (and shown run together)
        assert "'s " not in example and "(" not in example, example
        try:
            build_parser().parse_args(shlex.split(example)[1:])
        except SystemExit:
            refused.append(example)
    assert not refused


def test_help_examples_run_where_the_readme_left_off(newcomer):
    project, env, _results = newcomer
    subprocess.run([sys.executable, "-c", OWN_FILES, env["HOME"], str(project)], env=env, check=True)
    wrong = []
    for example in help_examples():
        command = shlex.split(example)[1]
        if command in HELP_NOT_RUN:
            continue
        ran = run_line(example, project, env)
        code = expected(example)[0] if example.startswith("digitlab exercises check --all") else 0
        if ran.code != code:
            wrong.append(f"{example}\n  exit {ran.code} (expected {code}):\n{ran.output[-2000:]}")
    assert not wrong, "\n\n".join(wrong)
