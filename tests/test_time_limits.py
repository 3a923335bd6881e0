"""The per-test time limit (conftest.py): a test that hangs fails, named, with its limit in the message."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from time_limits import TimeLimitExceeded, time_limit


def test_a_body_past_its_limit_is_stopped_and_the_alarm_is_cleared():
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match=r"the body ran past its 0.2 s limit"), time_limit(0.2, "the body"):
        time.sleep(5)
    assert time.monotonic() - started < 2
    with time_limit(1, "a quick body"):
        pass
    time.sleep(1.2)  # the alarm was cleared: nothing fires after the body


def test_a_hung_test_fails_named_in_a_run_of_pytest(tmp_path):
    """In a pytest run with the real hooks: the hung test fails and the run goes on to the next."""
    here = Path(__file__).parent
    (tmp_path / "conftest.py").write_text((here / "conftest.py").read_text().replace('"other": 120', '"other": 1'))
    (tmp_path / "time_limits.py").write_text((here / "time_limits.py").read_text())
    (tmp_path / "test_hang.py").write_text(
        "import time\n\ndef test_hangs():\n    time.sleep(30)\n\ndef test_after():\n    assert True\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout
    assert "1 failed, 1 passed" in run.stdout and "test_hangs ran past its 1 s limit" in run.stdout
