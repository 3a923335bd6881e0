"""Download a file once, atomically, verified, resumably, and safely from many processes.

`fetch(url, dest, checksum)` is the only way digitlab puts a downloaded file on disk. The file
is written to `dest.part`, checked against a `Checksum`, and only then renamed onto `dest`, so
anything found at `dest` was verified when it arrived. An interrupted download keeps its
`.part`, and the next `fetch` asks the server for the rest (HTTP Range).

Every download is bounded: it stops at the expected size when the size is known (else at
`max_bytes`), gives up when under 16 KiB arrive in `timeout` seconds (a stall) and when the whole
download takes longer than `deadline` seconds (a trickle), and a process waiting for another
one's download says so in one line and gives up after `lock_timeout` seconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..core.progress import Log, stderr_log
from ..errors import DownloadError

CHUNK = 64 * 1024
MAX_DOWNLOAD_BYTES = 1024**3  # when the expected size is not known: 1 GiB (digitlab's largest file is 10 MB)
DEADLINE_S = 600.0  # a whole download: 10 MB at 17 KB/s
STALL_MIN_BYTES = 16 * 1024  # fewer bytes than this in `timeout` seconds is a stall (a trickle), not progress
_LOCK_POLL_S = 0.1
FASTAI_PREFIX = 2**20  # fastai checks the md5 of a dataset's first MiB only
_USER_AGENT = "digitlab-download/1"  # some hosts refuse urllib's default agent
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


@dataclass(frozen=True)
class Checksum:
    """What a correct file looks like; a field left as None is not checked."""

    size: int | None = None  # exact byte length, if known
    md5: str | None = None  # hex md5 (of the whole file, or of its first `md5_prefix_bytes`)
    md5_prefix_bytes: int | None = None  # fastai's check: md5 over the first 2**20 bytes only

    def verify(self, path: Path) -> str | None:
        """None when the file at `path` matches, else a short reason it does not."""
        path = Path(path)
        if not path.is_file():
            return "missing"
        actual_size = path.stat().st_size
        if self.size is not None and actual_size != self.size:
            # The cheap check first: a truncated file fails here without being hashed.
            return f"size {actual_size} != {self.size}"
        if self.md5 is not None:
            digest = _md5(path, self.md5_prefix_bytes)
            if digest != self.md5.lower():
                return f"md5 {digest} != {self.md5.lower()}"
        return None


def _md5(path: Path, limit: int | None) -> str:
    """Hex md5 of the file, or of its first `limit` bytes; read in chunks to bound memory."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while limit is None or limit > 0:
            block = f.read(CHUNK if limit is None else min(CHUNK, limit))
            if not block:
                return h.hexdigest()
            h.update(block)
            limit = None if limit is None else limit - len(block)
    return h.hexdigest()


def fetch(
    url: str,
    dest: Path,
    checksum: Checksum,
    *,
    timeout: float = 10.0,
    on_progress: Callable[[int, int | None], None] | None = None,
    deadline: float = DEADLINE_S,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    lock_timeout: float | None = None,
    log: Log = stderr_log,
) -> Path:
    """Download url to dest atomically and verified; return dest.

    timeout: seconds without a byte (connecting, or between reads), or with fewer than STALL_MIN_BYTES,
    before giving up: a stall (the `.part` is kept, to resume).
    deadline: seconds for the whole download before giving up: a trickle (checked between reads).
    max_bytes: the most bytes taken when `checksum.size` is unknown (when known, that size is the bound).
    lock_timeout: seconds to wait for another process downloading the same file (default: its deadline
    plus two stalls, which bound that process's download), said in one line to `log` when waiting starts.
    """
    dest = Path(dest)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DownloadError(f"cannot download {url}: only http:// and https:// URLs are supported")
    if checksum.verify(dest) is None:
        return dest  # already here and correct: no lock, no network
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    # The lock file is never deleted: unlinking it while another process waits on the old
    # inode would let a third process lock a new one, and two writers would share `.part`.
    lock_path = dest.with_name(dest.name + ".lock")
    with open(lock_path, "a") as lock:
        wait = deadline + 2 * timeout if lock_timeout is None else lock_timeout
        _lock(lock, lock_path, dest, wait, log)  # released when the file is closed
        # Another process may have finished this download while we waited for the lock.
        if checksum.verify(dest) is None:
            return dest
        if dest.is_dir():
            raise DownloadError(f"cannot download {url}: {dest} is a folder")
        dest.unlink(missing_ok=True)  # exists but does not verify: never leave it in use
        limit = checksum.size if checksum.size is not None else max_bytes
        _download(url, part, checksum, timeout, on_progress, time.monotonic() + deadline, deadline, limit)
        reason = checksum.verify(part)
        if reason is not None:
            part.unlink(missing_ok=True)  # resuming a corrupt file would never verify
            raise DownloadError(f"download of {url}: downloaded file failed verification ({reason}); deleted")
        os.replace(part, dest)  # atomic: readers see no file or the whole verified file
    return dest


def _lock(lock: IO[str], lock_path: Path, dest: Path, wait: float, log: Log) -> None:
    """Take the download's lock; if another process holds it, say so once and wait at most `wait` s."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    log(f"{dest.name}: waiting (at most {wait:.0f} s) for another process downloading it ({lock_path} is locked)")
    give_up = time.monotonic() + wait
    while True:
        time.sleep(_LOCK_POLL_S)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= give_up:
                raise DownloadError(
                    f"{dest}: gave up after {wait:.0f} s waiting for another process downloading it "
                    f"({lock_path} is still locked); try again when it has finished"
                ) from None


def _download(
    url: str,
    part: Path,
    checksum: Checksum,
    timeout: float,
    on_progress: Progress | None,
    give_up: float,
    deadline: float,
    limit: int,
) -> None:
    """Bring `part` to the server's full file, resuming from what is already there.

    give_up: the time.monotonic() past which the download stops (`deadline` s after it began);
    limit: the most bytes `part` may hold.
    """
    offset = part.stat().st_size if part.is_file() else 0
    if checksum.size is not None and offset >= checksum.size:
        if offset == checksum.size and checksum.verify(part) is None:
            return  # an earlier run got every byte but stopped before the rename
        offset = 0  # longer than the file, or complete but wrong: nothing to resume from
    # At most two requests: a resume the server refuses (416, or a range starting elsewhere)
    # is retried once from byte 0, which needs no server cooperation.
    while True:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 416 and offset:
                offset = 0  # our part is no prefix of what the server has now
                continue
            raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise DownloadError(f"cannot download {url}: {_reason(e.reason)}") from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            # Timeouts before the headers come as bare TimeoutError; bad URLs as ValueError.
            raise DownloadError(f"cannot download {url}: {_reason(e)}") from None
        with response:
            length = response.headers.get("Content-Length")
            body = int(length) if length and length.isdigit() else None
            if offset and response.status == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != offset:
                    offset = 0
                    continue
                if total is None and body is not None:
                    total = offset + body
                mode = "ab"
            else:
                offset, total, mode = 0, body, "wb"  # 200: the server ignored Range
            if total is not None and total > limit:
                raise DownloadError(
                    f"cannot download {url}: the server announces {total:,} bytes, more than the "
                    f"{limit:,} expected; refused"
                )
            bounds = _Bounds(give_up, deadline, limit, timeout)
            _copy(url, response, part, mode, offset, total, checksum, on_progress, bounds)
            return


def _copy(
    url: str,
    response: http.client.HTTPResponse,
    part: Path,
    mode: str,
    offset: int,
    total: int | None,
    checksum: Checksum,
    on_progress: Progress | None,
    bounds: _Bounds,
) -> None:
    """Append the response body to `part`; raise if the connection ends before `total` bytes.

    Stops (and deletes `part`) past `bounds.limit` bytes; stops (keeping `part`, to resume) at the
    deadline, or when fewer than STALL_MIN_BYTES arrive in `bounds.stall` seconds.
    """
    shown_total = total if total is not None else checksum.size
    report = None if on_progress is None else (lambda done: on_progress(done, shown_total))
    try:
        with open(part, mode) as out:
            done, stop = _stream(response, out, offset, bounds, report)
            out.flush()
            os.fsync(out.fileno())  # the rename must not land before the bytes do
    except OSError as e:
        raise DownloadError(f"cannot download {url}: writing {part} failed: {_reason(e)}") from None
    if stop == TOO_BIG:
        part.unlink(missing_ok=True)  # not the file we expected: nothing of it is worth resuming
        raise DownloadError(
            f"download of {url}: the server sent more than the {bounds.limit:,} bytes expected; stopped"
        )
    if stop == TOO_LONG:
        raise DownloadError(
            f"download of {url} took longer than its {bounds.deadline:.0f} s deadline ({done:,} bytes so far); "
            "run again to resume"
        )
    # http.client returns b"" rather than raising when a connection closes early, so a
    # short body is only visible by counting against Content-Length.
    if stop is None and total is not None and done < total:
        stop = f"got {done} of {total} bytes"
    if stop is not None:
        raise DownloadError(f"download of {url} was interrupted ({stop}); run again to resume")


TOO_BIG, TOO_LONG = "too big", "too long"  # why _stream stopped, besides an interruption in words


def _stream(
    response: http.client.HTTPResponse,
    out: IO[bytes],
    done: int,
    bounds: _Bounds,
    report: Callable[[int], None] | None,
) -> tuple[int, str | None]:
    """Write the body to `out` from byte `done` on: (bytes done, None at the body's end, else why it stopped:
    TOO_BIG past bounds.limit, TOO_LONG past the deadline, or the interruption in words)."""
    window_start, window_bytes = time.monotonic(), 0
    while True:
        now = time.monotonic()
        if now > bounds.give_up:
            return done, TOO_LONG
        if now - window_start >= bounds.stall:
            if window_bytes < STALL_MIN_BYTES:
                return done, f"stalled: {window_bytes:,} bytes in the last {now - window_start:.1f} s"
            window_start, window_bytes = now, 0
        try:
            block = response.read1(CHUNK)  # whatever has arrived: a trickle cannot hold one read
        except (OSError, http.client.HTTPException) as e:
            return done, _reason(e)  # reset, timeout (a stall), or a broken chunked body
        if not block:
            return done, None
        if done + len(block) > bounds.limit:
            return done, TOO_BIG
        out.write(block)
        done += len(block)
        window_bytes += len(block)
        if report is not None:
            report(done)


@dataclass(frozen=True)
class _Bounds:
    give_up: float  # time.monotonic() past which the download stops
    deadline: float  # the seconds that give_up stands for, for messages
    limit: int  # the most bytes `.part` may hold
    stall: float  # a window of this many seconds must bring STALL_MIN_BYTES


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, full size) from 'bytes 100-999/1000'; None for a part that is absent or '*'."""
    try:
        unit, _, spec = (value or "").partition(" ")
        span, _, size = spec.partition("/")
        if unit != "bytes":
            return None, None
        return int(span.partition("-")[0]), (None if size == "*" else int(size))
    except ValueError:
        return None, None


def _reason(error: object) -> str:
    """One line from an exception or a URLError reason (which may be a string)."""
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    elif isinstance(error, TimeoutError):
        text = "timed out"  # socket timeouts carry no strerror
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())
