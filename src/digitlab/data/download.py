"""Download a file once, atomically, verified, resumably, and safely from many processes.

`fetch(url, dest, checksum)` is the only way digitlab puts a downloaded file on disk. The file
is written to `dest.part`, checked against a `Checksum`, and only then renamed onto `dest`, so
anything found at `dest` was verified when it arrived. An interrupted download keeps its
`.part`, and the next `fetch` asks the server for the rest (HTTP Range).
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError

CHUNK = 64 * 1024
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
) -> Path:
    """Download url to dest atomically and verified; return dest."""
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
    with open(dest.with_name(dest.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        # Another process may have finished this download while we waited for the lock.
        if checksum.verify(dest) is None:
            return dest
        if dest.is_dir():
            raise DownloadError(f"cannot download {url}: {dest} is a folder")
        dest.unlink(missing_ok=True)  # exists but does not verify: never leave it in use
        _download(url, part, checksum, timeout, on_progress)
        reason = checksum.verify(part)
        if reason is not None:
            part.unlink(missing_ok=True)  # resuming a corrupt file would never verify
            raise DownloadError(f"download of {url}: downloaded file failed verification ({reason}); deleted")
        os.replace(part, dest)  # atomic: readers see no file or the whole verified file
    return dest


def _download(url: str, part: Path, checksum: Checksum, timeout: float, on_progress: Progress | None) -> None:
    """Bring `part` to the server's full file, resuming from what is already there."""
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
            _copy(url, response, part, mode, offset, total, checksum, on_progress)
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
) -> None:
    """Append the response body to `part`; raise if the connection ends before `total` bytes."""
    done = offset
    shown_total = total if total is not None else checksum.size
    interrupted: str | None = None
    try:
        with open(part, mode) as out:
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    interrupted = _reason(e)  # reset, timeout, or a broken chunked body
                    break
                if not block:
                    break
                out.write(block)
                done += len(block)
                if on_progress is not None:
                    on_progress(done, shown_total)
            out.flush()
            os.fsync(out.fileno())  # the rename must not land before the bytes do
    except OSError as e:
        raise DownloadError(f"cannot download {url}: writing {part} failed: {_reason(e)}") from None
    # http.client returns b"" rather than raising when a connection closes early, so a
    # short body is only visible by counting against Content-Length.
    if interrupted is None and total is not None and done < total:
        interrupted = f"got {done} of {total} bytes"
    if interrupted is not None:
        raise DownloadError(f"download of {url} was interrupted ({interrupted}); run again to resume")


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
