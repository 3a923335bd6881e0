"""fetch() against a local HTTP server that can fail, cut responses short and ignore Range."""

from __future__ import annotations

import hashlib
import multiprocessing
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from digitlab.data.download import Checksum, fetch
from digitlab.errors import DigitlabError, DownloadError


def blob(n: int, seed: int = 0) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32) + b"x" * (n % 32)


def full(data: bytes) -> Checksum:
    return Checksum(size=len(data), md5=hashlib.md5(data).hexdigest())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_success_with_size_and_md5_reports_progress(server, tmp_path):
    base, st = server
    data = blob(200_000)
    st.files["/a.bin"] = data
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "sub" / "a.bin"
    got = fetch(f"{base}/a.bin", dest, full(data), on_progress=lambda d, t: seen.append((d, t)))
    assert got == dest
    assert dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin", "a.bin.lock"]
    assert seen[-1] == (len(data), len(data)) and len(seen) >= 4  # 64 KiB chunks at most
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_md5_prefix_checks_only_the_first_mib(server, tmp_path):
    base, st = server
    data = blob(2**20 + 5000, seed=1)
    st.files["/big.tgz"] = data
    head_md5 = hashlib.md5(data[: 2**20]).hexdigest()
    prefix = Checksum(size=len(data), md5=head_md5, md5_prefix_bytes=2**20)
    dest = fetch(f"{base}/big.tgz", tmp_path / "big.tgz", prefix)
    assert dest.read_bytes() == data
    whole_md5 = Checksum(md5=hashlib.md5(data).hexdigest(), md5_prefix_bytes=2**20)
    assert whole_md5.verify(dest).startswith("md5 ")
    assert Checksum(size=3214948).verify(dest) == f"size {len(data)} != 3214948"
    assert Checksum().verify(tmp_path / "nope") == "missing"


def test_existing_valid_dest_makes_no_request(server, tmp_path):
    base, st = server
    data = blob(1000)
    dest = tmp_path / "a.bin"
    dest.write_bytes(data)
    assert fetch(f"{base}/a.bin", dest, full(data)) == dest
    assert st.requests == []


def test_corrupt_existing_dest_is_replaced(server, tmp_path):
    base, st = server
    data = blob(1000)
    st.files["/a.bin"] = data
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"garbage" * 143)  # 1001 bytes: wrong size
    fetch(f"{base}/a.bin", dest, full(data))
    assert dest.read_bytes() == data and len(st.requests) == 1


def test_checksum_mismatch_raises_and_keeps_nothing(server, tmp_path):
    base, st = server
    st.files["/a.bin"] = blob(1000)
    dest = tmp_path / "a.bin"
    reason = r"failed verification \(md5 [0-9a-f]{32} != 0{32}\); deleted"
    with pytest.raises(DownloadError, match=reason) as e:
        fetch(f"{base}/a.bin", dest, Checksum(size=1000, md5="0" * 32))
    assert f"{base}/a.bin" in str(e.value) and "\n" not in str(e.value)
    assert not dest.exists() and not (tmp_path / "a.bin.part").exists()


@pytest.mark.parametrize("path,code", [("/missing", 404), ("/broken", 503)])
def test_http_error_raises_with_status(server, tmp_path, path, code):
    base, st = server
    st.errors["/broken"] = 503
    dest = tmp_path / "x.bin"
    with pytest.raises(DownloadError, match=f"HTTP {code} ") as e:
        fetch(f"{base}{path}", dest, Checksum())
    assert isinstance(e.value, DigitlabError) and f"{base}{path}" in str(e.value)
    assert not dest.exists() and not (tmp_path / "x.bin.part").exists()


def test_interrupted_download_keeps_part_and_resumes(server, tmp_path):
    base, st = server
    data = blob(300_000, seed=2)
    st.files["/a.bin"], st.cut["/a.bin"] = data, 100_000
    dest = tmp_path / "a.bin"
    reason = r"interrupted \(got 100000 of 300000 bytes\); run again to resume"
    with pytest.raises(DownloadError, match=reason):
        fetch(f"{base}/a.bin", dest, full(data))
    part = tmp_path / "a.bin.part"
    assert not dest.exists() and part.read_bytes() == data[:100_000]
    seen: list[tuple[int, int | None]] = []
    fetch(f"{base}/a.bin", dest, full(data), on_progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == data and not part.exists()
    assert st.requests == [("/a.bin", None), ("/a.bin", "bytes=100000-")]
    assert seen[0][0] > 100_000 and seen[-1] == (300_000, 300_000)


def test_interrupted_without_known_size_still_detected(server, tmp_path):
    base, st = server
    data = blob(5000)
    st.files["/a.bin"], st.cut["/a.bin"] = data, 10
    with pytest.raises(DownloadError, match="interrupted"):
        fetch(f"{base}/a.bin", tmp_path / "a.bin", Checksum())  # Content-Length is the guide
    fetch(f"{base}/a.bin", tmp_path / "a.bin", Checksum())
    assert (tmp_path / "a.bin").read_bytes() == data


def test_server_ignoring_range_starts_over(server, tmp_path):
    base, st = server
    data = blob(100_000, seed=3)
    st.files["/a.bin"] = data
    st.ignore_range.add("/a.bin")
    (tmp_path / "a.bin.part").write_bytes(b"stale bytes that must be truncated")
    fetch(f"{base}/a.bin", tmp_path / "a.bin", full(data))
    assert (tmp_path / "a.bin").read_bytes() == data
    assert st.requests == [("/a.bin", "bytes=34-")]


def test_416_restarts_from_zero(server, tmp_path):
    base, st = server
    data = blob(1000)
    st.files["/a.bin"] = data
    (tmp_path / "a.bin.part").write_bytes(b"z" * 2000)  # longer than the server's file
    fetch(f"{base}/a.bin", tmp_path / "a.bin", Checksum(md5=hashlib.md5(data).hexdigest()))
    assert (tmp_path / "a.bin").read_bytes() == data
    assert st.requests == [("/a.bin", "bytes=2000-"), ("/a.bin", None)]


def test_part_longer_than_expected_size_starts_over_without_range(server, tmp_path):
    base, st = server
    data = blob(1000)
    st.files["/a.bin"] = data
    (tmp_path / "a.bin.part").write_bytes(b"z" * 2000)
    fetch(f"{base}/a.bin", tmp_path / "a.bin", full(data))
    assert (tmp_path / "a.bin").read_bytes() == data and st.requests == [("/a.bin", None)]


def test_complete_part_is_renamed_without_request(server, tmp_path):
    base, st = server
    data = blob(1000)
    (tmp_path / "a.bin.part").write_bytes(data)  # an earlier run died before the rename
    fetch(f"{base}/a.bin", tmp_path / "a.bin", full(data))
    assert (tmp_path / "a.bin").read_bytes() == data and st.requests == []


def test_connection_refused_fails_fast(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/a.bin"
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="refused") as e:
        fetch(url, tmp_path / "a.bin", Checksum())
    assert time.monotonic() - t0 < 3 and url in str(e.value)
    assert not (tmp_path / "a.bin").exists()


def test_silent_server_times_out(tmp_path):
    with socket.socket() as s:  # accepts connections (backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="timed out"):
            url = f"http://127.0.0.1:{s.getsockname()[1]}/a"
            fetch(url, tmp_path / "a", Checksum(), timeout=0.3)
        assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("url", ["ftp://example.com/a", "file:///etc/passwd", "http://", "mnist.tgz"])
def test_only_http_and_https(tmp_path, url):
    with pytest.raises(DownloadError, match="only http"):
        fetch(url, tmp_path / "a", Checksum())


def test_concurrent_threads_download_once(server, tmp_path):
    base, st = server
    data = blob(400_000, seed=4)
    st.files["/a.bin"], st.delay = data, 0.01  # slow enough that both fetches overlap
    dest = tmp_path / "a.bin"
    barrier = threading.Barrier(2)
    results: list[object] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(fetch(f"{base}/a.bin", dest, full(data)))
        except Exception as e:  # surfaced by the assertion below
            results.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [dest, dest]
    assert dest.read_bytes() == data
    assert len(st.requests) == 1  # the second waited on the lock, then found dest done


def test_concurrent_processes(server, tmp_path):
    base, st = server
    data = blob(400_000, seed=5)
    st.files["/a.bin"], st.delay = data, 0.01
    dest = tmp_path / "a.bin"
    ctx = multiprocessing.get_context("spawn")  # no fork of a process running server threads
    procs = [ctx.Process(target=fetch, args=(f"{base}/a.bin", dest, full(data))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
    assert [p.exitcode for p in procs] == [0, 0]
    assert dest.read_bytes() == data
    assert len(st.requests) == 1


# ---- bounds: a server that sends forever, one that trickles, a second process on the lock ----


class _Misbehaving(BaseHTTPRequestHandler):
    """GET /forever: 200 without Content-Length, zeros until the client hangs up.
    GET /huge: announces 10 GiB.
    GET /trickle: Content-Length 1 MB, 100 bytes every 20 ms (never a stall, always slow)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        if self.path == "/huge":
            self.send_header("Content-Length", str(10 * 2**30))
        elif self.path == "/trickle":
            self.send_header("Content-Length", str(10**6))
        self.end_headers()
        block, pause = (bytes(100), 0.02) if self.path == "/trickle" else (bytes(65536), 0.0)
        try:
            for _ in range(100_000):  # ~6.5 GB at most, should a client never hang up
                self.wfile.write(block)
                if pause:
                    time.sleep(pause)
        except OSError:  # the client hung up: what a bounded download does
            pass


@pytest.fixture
def bad_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Misbehaving)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_a_server_sending_forever_is_stopped_at_the_expected_size(bad_server, tmp_path):
    dest = tmp_path / "a.bin"
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"sent more than the 200,000 bytes expected; stopped") as e:
        fetch(f"{bad_server}/forever", dest, Checksum(size=200_000))
    assert time.monotonic() - t0 < 5 and "\n" not in str(e.value)
    assert not dest.exists() and not (tmp_path / "a.bin.part").exists()


def test_without_a_known_size_max_bytes_bounds_the_download(bad_server, tmp_path):
    with pytest.raises(DownloadError, match=r"more than the 1,000,000 bytes expected"):
        fetch(f"{bad_server}/forever", tmp_path / "a.bin", Checksum(), max_bytes=10**6)
    assert not (tmp_path / "a.bin.part").exists()


def test_an_announced_size_over_the_bound_is_refused_before_reading(bad_server, tmp_path):
    with pytest.raises(DownloadError, match=r"announces 10,737,418,240 bytes, more than the 3,214,948 expected"):
        fetch(f"{bad_server}/huge", tmp_path / "a.tgz", Checksum(size=3214948))
    assert not (tmp_path / "a.tgz.part").exists() and not (tmp_path / "a.tgz").exists()


def test_a_trickle_is_stopped_at_the_deadline_and_can_resume(bad_server, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"took longer than its 1 s deadline .* run again to resume") as e:
        fetch(f"{bad_server}/trickle", tmp_path / "a.bin", Checksum(size=10**6), deadline=1.0)
    assert time.monotonic() - t0 < 3 and "\n" not in str(e.value)
    assert 0 < (tmp_path / "a.bin.part").stat().st_size < 10**6  # kept: the next run resumes from it


_HOLD_LOCK = """
import fcntl, sys, time
lock = open(sys.argv[1], "a")
fcntl.flock(lock, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_waiter_on_another_process_lock_says_so_and_gives_up(server, tmp_path):
    base, st = server
    data = blob(1000)
    st.files["/a.bin"] = data
    dest = tmp_path / "a.bin"
    lock = tmp_path / "a.bin.lock"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        heard: list[str] = []
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match=r"gave up after 1 s waiting for another process") as e:
            fetch(f"{base}/a.bin", dest, full(data), lock_timeout=1.0, log=heard.append)
        assert 0.9 < time.monotonic() - t0 < 3 and str(dest) in str(e.value) and "\n" not in str(e.value)
        assert len(heard) == 1 and "waiting (at most 1 s) for another process downloading it" in heard[0]
        assert str(lock) in heard[0] and st.requests == []
    finally:
        holder.kill()
        holder.wait(10)
    assert fetch(f"{base}/a.bin", dest, full(data), lock_timeout=1.0).read_bytes() == data  # the lock died with it


def test_a_trickle_under_the_stall_rate_is_a_stall_and_can_resume(bad_server, tmp_path):
    t0 = time.monotonic()  # 5 KB/s: a byte always arrives within the timeout, but under 16 KiB per timeout
    with pytest.raises(
        DownloadError, match=r"interrupted \(stalled: [\d,]+ bytes in the last [\d.]+ s\); run again"
    ) as e:
        fetch(f"{bad_server}/trickle", tmp_path / "a.bin", Checksum(size=10**6), timeout=0.5)
    assert time.monotonic() - t0 < 3 and "\n" not in str(e.value)
    assert (tmp_path / "a.bin.part").stat().st_size < 16 * 1024
