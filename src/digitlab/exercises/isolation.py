"""Where a submission runs: a bubblewrap sandbox that shows it nothing of the machine it could harm.

In the sandbox a submission sees the system's programs and libraries, Python and digitlab, all
read-only; its own code (read-only); a fresh, size-limited /tmp and working folder; and nothing
else: no home folder, no other student's files, no digitlab cache or data, no environment
variables but a few set here, no network (not even the machine's own 127.0.0.1), its own process
tree (everything it starts dies with it) and a new session (it cannot type into the terminal).
bubblewrap (`bwrap`, Debian/Ubuntu package `bubblewrap`) uses the kernel's user namespaces, so
no root and no container engine are needed.
"""

from __future__ import annotations

import functools
import shutil
import site
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CODE = Path("/checker")  # the submission's cells, read-only
DATA = Path("/data")  # the ten-digit exercise's data file (images and the labels the learner may see), read-only
WORK = Path("/submission")  # its working folder, writable, on a size-limited tmpfs
SCRATCH_BYTES = 256 * 2**20  # each of WORK and /tmp holds at most this much
# The system's top-level folders a Python and its libraries may live in (symlinks are kept as symlinks)
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/nix")
# What of /etc the dynamic loader and time zone need: /etc/passwd, /etc/hostname ... stay out
ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding digitlab/ (the child's PYTHONPATH)


@dataclass(frozen=True)
class Isolation:
    available: bool
    why: str  # when not available: why, in one line, and what to do


def _roots() -> list[Path]:
    """Python, its packages and digitlab: the folders the child needs besides the system's."""
    paths: list[str | Path] = [sys.prefix, sys.base_prefix, sys.exec_prefix, Path(sys.executable).resolve().parents[1]]
    paths += [p for p in sys.path if "-packages" in p]  # site-packages (a venv's, the user's, the system's)
    paths += [*site.getsitepackages(), PACKAGE_ROOT]
    resolved = {Path(p).resolve() for p in paths if p and Path(p).is_dir()}
    # Only the innermost roots outside the system folders, each once; never "/" (that would be everything)
    outside = [p for p in resolved if p != Path("/") and not any(_under(p, Path(s)) for s in SYSTEM)]
    return sorted(p for p in outside if not any(q != p and _under(p, q) for q in outside))


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _system_mounts() -> list[str]:
    args: list[str] = []
    for name in SYSTEM:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    for name in ETC:
        if Path(name).exists():
            args += ["--ro-bind", name, name]
    return args


def sandbox_command(
    command: list[str], code: Path, extra: Iterable[Path] = (), environment: dict[str, str] | None = None
) -> list[str]:
    """`command` run by bwrap: `code` (a folder) appears read-only at CODE, each of `extra` (files) in DATA."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    args += ["--hostname", "sandbox", *_system_mounts(), "--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(SCRATCH_BYTES), "--tmpfs", "/tmp", "--size", str(SCRATCH_BYTES), "--tmpfs", str(WORK)]
    for root in _roots():  # after the tmpfs: a virtual environment under /tmp stays visible
        args += ["--ro-bind", str(root), str(root)]
    args += ["--ro-bind", str(code), str(CODE)]
    for path in extra:
        args += ["--ro-bind", str(path), str(DATA / path.name)]
    args += ["--chdir", str(WORK), "--clearenv"]
    for key, value in (environment or {}).items():
        args += ["--setenv", key, value]
    return [*args, "--", *command]


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    """Whether submissions can run sandboxed here: bwrap exists and starts a Python in a sandbox."""
    if not sys.platform.startswith("linux"):
        return Isolation(False, f"isolation needs Linux's namespaces (this is {sys.platform})")
    if shutil.which("bwrap") is None:
        return Isolation(False, "bubblewrap is not installed: sudo apt-get install bubblewrap")
    probe = sandbox_command([sys.executable, "-c", "import digitlab"], Path(__file__).parent, environment=_env())
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Isolation(False, f"bubblewrap could not start a sandbox ({e})")
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return Isolation(False, f"bubblewrap could not start a sandbox ({why}): user namespaces may be off")
    return Isolation(True, "")


def _env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PACKAGE_ROOT), "HOME": str(WORK), "LANG": "C.UTF-8"}


def sandbox_environment() -> dict[str, str]:
    """The child's whole environment in the sandbox: none of the teacher's variables (tokens, keys) pass."""
    return {
        **_env(), "TMPDIR": "/tmp", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp", "OMP_NUM_THREADS": "1",
        "DIGITLAB_OFFLINE": "1", "DIGITLAB_HOME": "/tmp/digitlab",
    }  # fmt: skip
