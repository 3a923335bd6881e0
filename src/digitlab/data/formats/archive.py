"""Unpack downloaded dataset archives (.tgz, .tar.gz, .tar, .zip) without trusting them.

Every member is checked before anything is written: no absolute paths, drive letters,
`..` components, links, devices or FIFOs, and nothing whose destination lies outside the
target folder. Only regular files and folders are written, by our own code (not
`tarfile.extractall`), into a temporary sibling folder that is renamed to `target` at the
end, so an interrupted extraction never leaves a half-filled `target` behind; a failed one
leaves nothing, and the temporary folders of killed extractions are removed at the next start.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ...errors import DataError
from .. import scratch

MAX_TOTAL_BYTES = 2 * 1024**3  # 2 GiB uncompressed: MNIST in PNGs is ~100 MB, so this only stops bombs
MAX_MEMBERS = 200_000  # mnist_png has ~70k files
_CHUNK = 1024 * 1024  # bytes copied per read
_DRIVE = re.compile(r"^[A-Za-z]:")
# errors that mean "the archive itself is broken" (bad gzip/zip data, truncation, bad headers)
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)

# (member name, is_dir, opener or None for dirs, declared size in bytes)
_Entry = tuple[str, bool, Callable[[], IO[bytes]] | None, int]


def safe_extract(archive: Path, target: Path) -> Path:
    """Extract `archive` into `target` (created whole or not at all) and return `target`.

    If `target` already exists it is returned untouched: a finished extraction is reused.
    Raises DataError (naming the archive, and the member when one is at fault) for
    anything unsafe, oversized, corrupt or not a tar/zip archive.
    """
    archive, target = Path(archive), Path(target)
    scratch.remove_stale(target.parent, _partial_prefix(target))  # left by killed extractions
    if target.exists():
        return target
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found")
    try:
        if tarfile.is_tarfile(archive):  # tar first: a tar may *contain* a zip near its end
            with tarfile.open(archive, "r:*") as tar:
                return _extract(archive, target, _tar_entries(archive, tar))
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return _extract(archive, target, _zip_entries(archive, zf))
    except DataError:
        raise
    except _READ_ERRORS as e:  # reads and writes interleave: one message for broken archive or full disk
        raise DataError(
            f"{archive}: cannot extract to {target}: corrupt or truncated archive, or "
            f"write failed ({type(e).__name__}: {e})"
        ) from e
    raise DataError(f"{archive}: not a tar or zip archive (expected .tgz, .tar.gz, .tar or .zip)")


@contextlib.contextmanager
def removed_on_failure(extracted: Path) -> Iterator[None]:
    """Remove an extraction when the work on it fails (a 1 GiB archive that is not digits)."""
    try:
        yield
    except BaseException:
        shutil.rmtree(extracted, ignore_errors=True)
        raise


def _partial_prefix(target: Path) -> str:
    return f".{target.name}.partial-"


def _check_name(archive: Path, name: str) -> None:
    """Refuse names that could land outside the target on any OS."""
    if not name or name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise DataError(f"{archive}: unsafe member {name!r} (absolute path)")
    if ".." in re.split(r"[/\\]", name):
        raise DataError(f"{archive}: unsafe member {name!r} ('..' in path)")
    if "\x00" in name:
        raise DataError(f"{archive}: unsafe member {name!r} (NUL in name)")


def _tar_entries(archive: Path, tar: tarfile.TarFile) -> list[_Entry]:
    entries: list[_Entry] = []
    for count, member in enumerate(tar, start=1):  # iterating reads every header: truncation shows here
        if count > MAX_MEMBERS:
            raise DataError(f"{archive}: more than {MAX_MEMBERS} members, refusing (archive bomb?)")
        _check_name(archive, member.name)
        if member.issym() or member.islnk():
            raise DataError(f"{archive}: unsafe member {member.name!r} (link to {member.linkname!r})")
        if member.isdir():
            entries.append((member.name, True, None, 0))
        elif member.isreg():
            entries.append((member.name, False, _tar_opener(tar, member), member.size))
        else:  # char/block device, FIFO, or anything else exotic
            raise DataError(f"{archive}: unsafe member {member.name!r} (not a regular file or folder)")
    return entries


def _tar_opener(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        file = tar.extractfile(member)
        assert file is not None  # None only for members that are not regular files (checked: isreg)
        return file

    return open_member


def _zip_entries(archive: Path, zf: zipfile.ZipFile) -> list[_Entry]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise DataError(f"{archive}: more than {MAX_MEMBERS} members, refusing (archive bomb?)")
    entries: list[_Entry] = []
    for info in infos:
        _check_name(archive, info.filename)
        mode = info.external_attr >> 16  # Unix st_mode, 0 when written on Windows
        if stat.S_ISLNK(mode):
            raise DataError(f"{archive}: unsafe member {info.filename!r} (symlink)")
        if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise DataError(f"{archive}: unsafe member {info.filename!r} (not a regular file or folder)")
        if info.flag_bits & 0x1:
            raise DataError(f"{archive}: member {info.filename!r} is encrypted")
        if info.is_dir():
            entries.append((info.filename, True, None, 0))
        else:
            entries.append((info.filename, False, functools.partial(zf.open, info), info.file_size))
    return entries


def _extract(archive: Path, target: Path, entries: list[_Entry]) -> Path:
    # All checks first: nothing is written until every member has passed.
    base = os.path.realpath(target)
    total = 0
    for name, _, _, size in entries:
        resolved = os.path.normpath(os.path.join(base, name))
        if os.path.commonpath([base, resolved]) != base:
            raise DataError(f"{archive}: unsafe member {name!r} (would be written outside {target})")
        total += size
        if total > MAX_TOTAL_BYTES:
            raise DataError(f"{archive}: more than {MAX_TOTAL_BYTES:,} bytes uncompressed, refusing (archive bomb?)")

    tmp = scratch.make(target.parent, _partial_prefix(target))
    try:
        written = 0
        for name, is_dir, opener, size in entries:
            dest = tmp / name.replace("\\", "/").strip("/")
            if is_dir:
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            assert opener is not None
            n = 0
            with opener() as src, open(dest, "wb") as out:
                while chunk := src.read(_CHUNK):
                    n += len(chunk)
                    written += len(chunk)
                    if n > size or written > MAX_TOTAL_BYTES:  # sizes in headers must not lie
                        raise DataError(f"{archive}: member {name!r} is larger than its header says")
                    out.write(chunk)
            if n != size:
                raise DataError(f"{archive}: member {name!r} is truncated ({n} of {size} bytes)")
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.exists():  # a concurrent extraction that finished first is fine
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        return target
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
