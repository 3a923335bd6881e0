"""A Ctrl-C while `digitlab` starts (its imports take seconds) is one line and exit code 130."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/maps")

ENTRIES = {
    "console script": [str(Path(sys.executable).parent / "digitlab")],
    "python -m digitlab": [sys.executable, "-m", "digitlab"],
}


def _interrupt_once_loaded(command: list[str], library: str) -> subprocess.CompletedProcess[str]:
    """Start `command baseline`, send SIGINT as soon as a shared library whose path holds `library`
    is mapped (so the signal lands during that import), and wait for the end. (`baseline` loads torch
    and PIL as it starts; `data list` and `--help` load neither.)"""
    process = subprocess.Popen(
        [*command, "baseline"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background (`make test &`) ignores SIGINT, and so would the child:
        # Python installs its Ctrl-C handler only where SIGINT is not ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        maps = Path(f"/proc/{process.pid}/maps")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if library in maps.read_text():
                    break
            except OSError:
                pass
            time.sleep(0.005)
        assert process.poll() is None, f"ended before loading {library}"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize("entry", ENTRIES)
def test_ctrl_c_while_the_commands_load(entry):
    # PIL's _imaging is loaded by the command modules, after torch (matplotlib loads only with the
    # commands that draw)
    done = _interrupt_once_loaded(ENTRIES[entry], "PIL/_imaging")
    assert done.returncode == 130 and done.stderr == "digitlab: interrupted\n", done.stderr[-2000:]


def test_ctrl_c_while_torch_loads():
    done = _interrupt_once_loaded(ENTRIES["python -m digitlab"], "libtorch")
    assert done.returncode == 130 and done.stderr == "digitlab: interrupted\n", done.stderr[-2000:]
