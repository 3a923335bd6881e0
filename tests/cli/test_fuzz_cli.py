"""Fuzz the CLI: every option of every command, given hostile values of its kind, is answered without a
traceback or a signal (a one-line error and exit 2, or the command's work).

The cases come from the parser itself (`build_parser`), so an option added later is fuzzed too. They
run in a child process that calls `digitlab.cli.main` once per case (start-up is paid once); a case
that kills the child (a segmentation fault, as `--threads 5000` did) is reported by name, and the
child is started again after it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # hundreds of CLI processes with hostile values

INTS = ["-1", "0", "5000", str(2**70), str(-(2**70)), "99999999999", "nan", "1.5"]
FLOATS = ["nan", "inf", "-inf", "1e308", "-1", "0", "5e-324"]
# Paths and other text: nothing there, a file where a folder goes and the reverse, unwritable or
# special places, a name too long for the file system, and text that is not a path at all. Not "/":
# as root, a command that rightly makes a new folder in it (demo --out /) would write there
# (test_nothing_lost has `train --out /`)
TEXTS = [
    "",
    "/proc",
    "/proc/digitlab-fuzz",
    "FILE",
    "FILE/under",
    "FOLDER",
    "/no/such/place",
    "a" * 300,
    "-",
    "9:9,99:x",
]
SKIP = {"help", "json", "quiet", "debug", "version"}  # no value, or the same for every command

# Per command, values that make it valid and quick; each case replaces one of them (or adds an option)
BASES: dict[str, dict[str, str]] = {
    "data": {"action": "info", "target": "SAMPLE"},
    "baseline": {"data": "SAMPLE"},
    "show": {"source": "SAMPLE:0"},
    "train": {"data": "SAMPLE", "epochs": "1", "out": "NEW"},
    "evaluate": {"model_path": "RUN", "data": "SAMPLE"},
    "demo": {"data": "SAMPLE", "models": "linear", "out": "NEW"},
    "report": {"run_dir": "RUN"},
    "explain": {"data": "SAMPLE", "out": "NEW"},
    "predict": {"model_path": "RUN", "images": "PHOTO"},
    "serve": {"model_path": "RUN", "port": "0"},
    "exercises list": {},
    "exercises show": {"name": "is_3"},
    "exercises check": {"path": "SUBMISSION", "only": "double_odds", "out": "NEW"},
    "exercises quiz": {"number": "1"},
}
# Options that exclude part of their command's base (--resume takes the run's own settings, --all is
# instead of a FILE): fuzzed with this base instead, so their values reach the code that reads them
OWN_BASES: dict[tuple[str, str], dict[str, str]] = {
    ("train", "resume"): {},
    ("train", "init"): {"data": "SAMPLE", "epochs": "1", "out": "NEW"},
    ("exercises check", "all"): {"only": "double_odds", "out": "NEW"},
}


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_commands(sub, f"{prefix}{name} "))
    if not found and prefix:
        found[prefix.strip()] = parser
    return found


def _values(action: argparse.Action) -> list[str]:
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return ["not-a-choice", ""]
    if action.type is int:
        return INTS
    if action.type is float:
        return FLOATS
    if action.type not in (None, str, Path):  # a parser of its own (--threads: a number or auto): all of them
        return INTS + FLOATS + TEXTS
    return TEXTS


def cases() -> list[dict[str, object]]:
    """[{"name", "argv"}]: each value-taking option of each command, each hostile value of its kind."""
    from digitlab.cli import build_parser

    found = []
    for command, parser in _commands(build_parser()).items():
        base = BASES[command]  # a command without a base here fails: give it one
        actions = [a for a in parser._actions if a.dest not in SKIP and a.nargs != 0]
        for fuzzed in actions:
            base = OWN_BASES.get((command, fuzzed.dest), BASES[command])
            for value in _values(fuzzed):
                argv = command.split()
                for action in actions:
                    given = value if action is fuzzed else base.get(action.dest)
                    if given is None:
                        continue
                    argv += [given] if not action.option_strings else [action.option_strings[-1], given]
                found.append({"name": f"{command} {fuzzed.dest}={value[:20]!r}", "argv": argv})
    return found


def _place(arg: str, places: dict[str, str]) -> str:
    """SAMPLE:0 -> /tmp/.../sample:0, FILE/under -> /tmp/.../file/under: a placeholder prefix, replaced."""
    for key, path in places.items():
        if arg == key or arg.startswith((f"{key}/", f"{key}:")):
            return path + arg[len(key) :]
    return arg


CASE_SECONDS = 120  # a case is refused or done in seconds (the slowest, demo, in ~5): longer is a missing bound


class CaseTimeout(BaseException):
    """Raised in the child by SIGALRM: past CASE_SECONDS (`--epochs 2**70` trained on and on)."""


def _time_out(signum: int, frame: object) -> None:
    raise CaseTimeout(f"still running after {CASE_SECONDS} s")


def _drive(cases_file: str, done_file: str, places: dict[str, str]) -> None:
    """The child: run each case not yet done, appending {"name", "code", "problem"} to done_file."""
    import signal

    from digitlab.cli import main
    from digitlab.web import server

    signal.signal(signal.SIGALRM, _time_out)

    server.serve = lambda *args, **kwargs: None  # `serve` would listen until stopped: it binds, then returns
    todo = json.loads(Path(cases_file).read_text())
    done = {json.loads(line)["name"] for line in Path(done_file).read_text().splitlines()}
    for i, case in enumerate(todo):
        if case["name"] in done:
            continue
        with open(done_file, "a") as log:  # the case being run: a crash leaves it as the last line
            log.write(json.dumps({"name": case["name"], "started": True}) + "\n")
        argv = [_place(arg, {**places, "NEW": f"{places['NEW']}-{i}"}) for arg in case["argv"]]
        err, problem = io.StringIO(), None
        signal.alarm(CASE_SECONDS)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code: object = main(argv)
        except SystemExit as e:
            code = e.code
        except BaseException:  # what the fuzz looks for
            code, problem = None, traceback.format_exc(limit=-3)
        finally:
            signal.alarm(0)
        if problem is None and "Traceback" in err.getvalue():
            problem = err.getvalue()[-800:]
        if problem is None and code not in (0, 1, 2):
            problem = f"exit code {code!r}: {err.getvalue()[-400:]}"
        with open(done_file, "a") as log:
            log.write(json.dumps({"name": case["name"], "code": code, "problem": problem, "argv": argv}) + "\n")


@pytest.fixture
def places(tmp_path, png_tree, train_cli) -> dict[str, str]:
    from PIL import Image, ImageDraw

    png_tree(tmp_path / "sample", {"train": 6, "valid": 3})
    train_cli(tmp_path / "sample", tmp_path / "run", "--epochs", "1")
    image = Image.new("L", (60, 60), 255)
    ImageDraw.Draw(image).line((30, 8, 30, 52), fill=0, width=6)
    image.save(tmp_path / "photo.png")
    (tmp_path / "file").write_text("a user's file\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("a user's folder\n")
    (tmp_path / "work.py").write_text("def double_odds(xs):\n    return [2 * x for x in xs if x % 2]\n")
    return {
        "SAMPLE": str(tmp_path / "sample"),
        "RUN": str(tmp_path / "run"),
        "PHOTO": str(tmp_path / "photo.png"),
        "FILE": str(tmp_path / "file"),
        "FOLDER": str(tmp_path / "folder"),
        "SUBMISSION": str(tmp_path / "work.py"),
        "NEW": str(tmp_path / "new"),
    }


def test_every_command_is_fuzzed():
    from digitlab.cli import build_parser

    assert set(_commands(build_parser())) == set(BASES)
    assert len(cases()) > 300


def test_no_hostile_value_makes_a_traceback_or_a_signal(tmp_path, places, monkeypatch):
    monkeypatch.setenv("DIGITLAB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    only = os.environ.get("DIGITLAB_FUZZ_ONLY", "")  # a developer's focus: cases whose name holds this
    all_cases = [case for case in cases() if only in str(case["name"])]
    cases_file, done_file = tmp_path / "cases.json", tmp_path / "done.jsonl"
    cases_file.write_text(json.dumps(all_cases))
    done_file.write_text("")
    crashes: list[str] = []
    for _ in range(len(all_cases)):
        child = subprocess.run(
            [sys.executable, __file__, str(cases_file), str(done_file), json.dumps(places)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        lines = [json.loads(line) for line in done_file.read_text().splitlines()]
        if child.returncode == 0:
            break
        crashed = lines[-1]["name"]  # started, never finished
        crashes.append(f"{crashed}: killed by signal {-child.returncode}" if child.returncode < 0 else crashed)
        with open(done_file, "a") as log:
            log.write(json.dumps({"name": crashed, "code": child.returncode, "problem": "crashed"}) + "\n")
    finished = [line for line in lines if "started" not in line]
    problems = [f"{line['name']}: {line['problem']}" for line in finished if line["problem"]]
    assert {line["name"] for line in finished} == {case["name"] for case in all_cases}
    assert not crashes and not problems, "\n\n".join(crashes + problems)
    assert (Path(places["FOLDER"]) / "notes.txt").read_text() == "a user's folder\n"
    assert Path(places["FILE"]).read_text() == "a user's file\n"


if __name__ == "__main__":
    _drive(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
