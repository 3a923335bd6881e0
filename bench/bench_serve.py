"""Load test of `digitlab serve` on 127.0.0.1: N predictions from C concurrent clients.

Starts the server as a subprocess on a free loopback port, sends canvas-like PNGs (test digits
black on a white 112x112 canvas, the size the page sends), and reports errors, throughput
and latency percentiles. Bounded in count and time; stops the server at the end.

    .venv/bin/python bench/bench_serve.py MODEL_DIR [--requests 2000] [--clients 8] [--workers 2]
        [--client python|ab] [--stalled 500] [--large-every 50]

--client python: 8 Python threads with http.client (one connection each, kept alive), sending
200 different digits; their own CPU use shares the machine's 2 cores with the server.
--client ab: ApacheBench (Debian's apache2-utils), keep-alive, one digit: a client that costs
next to nothing, as a browser on another machine would.

Hostile load (python client): --stalled N holds N stalled connections open during the run (a
third send nothing, a third half their headers, a third their headers and part of a body) and
reopens those the server drops; --large-every K makes every Kth request a 12 MP photo (JPEG)
instead of a drawing. The table then adds the 5xx answers, the connections dropped under the
clients, and the server's resident memory (all its processes) before the load and after it.
"""

from __future__ import annotations

import argparse
import http.client
import io
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitlab.data.formats.idx import load_idx_folder

DEADLINE_S = 300  # the whole test stops by then whatever happens


SEND_SIDE = 112  # what the page sends: its 280 px canvas scaled to 112 px (app.js)


def canvas_pngs(count: int) -> list[bytes]:
    test = load_idx_folder(Path("../shared/data/mnist-test")).train
    pngs = []
    for i in range(count):
        ink = Image.fromarray(255 - test.images[i].numpy()).resize((SEND_SIDE, SEND_SIDE), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        ink.convert("RGBA").save(buffer, "PNG")
        pngs.append(buffer.getvalue())
    return pngs


def large_photo() -> bytes:
    """A 4000 x 3000 photo-like JPEG (12 MP, ~0.5 MB): grey paper, a dark stroke."""
    photo = Image.new("RGB", (4000, 3000), (200, 198, 190))
    ImageDraw.Draw(photo).line([(1500, 600), (2400, 600), (1700, 2400)], fill=(30, 30, 40), width=180)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the server's workers), in MB."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


class Stalled:
    """N stalled connections held open in a thread; those the server drops are reopened."""

    HALF_HEADERS = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Le"

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count, self.dropped = port, count, 0
        self.body = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"\0" * 1000
        self.socks: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.hold, daemon=True)

    def open(self, i: int) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall([b"", self.HALF_HEADERS, self.body][i % 3])
            sock.setblocking(False)
            return sock
        except OSError:
            return None

    def hold(self) -> None:
        slots: list[socket.socket | None] = [self.open(i) for i in range(self.count)]
        while not self.stop.wait(0.5):
            for i, sock in enumerate(slots):
                try:  # an answer (408, 503) or the end of the stream: the server let it go
                    alive = sock is not None and not sock.recv(4096)
                except BlockingIOError:
                    alive = True
                except OSError:
                    alive = False
                if not alive:
                    self.dropped += 1
                    if sock is not None:
                        sock.close()
                    slots[i] = self.open(i)
        for sock in slots:
            if sock is not None:
                sock.close()


def run_ab(png: bytes, port: int, args: argparse.Namespace) -> None:
    import re

    with tempfile.NamedTemporaryFile(suffix=".png") as body:
        body.write(png)
        body.flush()
        out = subprocess.run(
            [
                "ab",
                "-k",
                "-q",
                "-n",
                str(args.requests),
                "-c",
                str(args.clients),
                "-p",
                body.name,
                "-T",
                "image/png",
                f"http://127.0.0.1:{port}/api/predict",
            ],
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        ).stdout

    def value(pattern: str) -> str:
        return re.search(pattern, out, re.M)[1]

    non_2xx = re.search(r"^Non-2xx responses:\s+(\d+)", out, re.M)
    errors = int(value(r"^Failed requests:\s+(\d+)")) + (int(non_2xx[1]) if non_2xx else 0)
    rate = float(value(r"^Requests per second:\s+([\d.]+)"))
    p50, p90, p99, top = (value(rf"^\s+{q}%\s+(\d+)") for q in (50, 90, 99, 100))
    print("| workers | requests | clients | errors | throughput req/s | p50 ms | p90 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.workers} | {args.requests:,} | {args.clients} (ab) | {errors} | {rate:.0f} | {p50} | {p90} | {p99} | {top} |"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="server processes (digitlab serve --workers)")
    parser.add_argument("--client", choices=["python", "ab"], default="python")
    parser.add_argument("--stalled", type=int, default=0, help="stalled connections held during the load")
    parser.add_argument("--large-every", type=int, default=0, help="every Kth request a 12 MP photo (0: none)")
    args = parser.parse_args()
    port = free_port()
    # a file, not a pipe: a full pipe would stall the server; closed with the process
    server_log = tempfile.TemporaryFile("w+")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digitlab",
            "serve",
            str(args.model),
            "--port",
            str(port),
            "--quiet",
            "--workers",
            str(args.workers),
        ],
        stderr=server_log,
    )
    stalled = Stalled(port, args.stalled)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        pngs = canvas_pngs(200)
        if args.client == "ab":
            run_ab(pngs[0], port, args)
            return
        photo = large_photo() if args.large_every else b""
        for png in pngs[:20]:  # warm-up: the model's first calls, before memory is measured
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", "/api/predict", body=png)
            connection.getresponse().read()
            connection.close()
        rss_before = rss_mb(server.pid)
        if args.stalled:
            stalled.thread.start()
            time.sleep(2)  # all of them open before the clients start
        latencies: list[float] = []
        errors: list[str] = []
        server_errors = [0]
        dropped = [0]
        lock = threading.Lock()
        stop_at = time.monotonic() + DEADLINE_S

        def client(index: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for k in range(index, args.requests, args.clients):
                if time.monotonic() > stop_at:
                    return
                large = args.large_every and k % args.large_every == args.large_every - 1
                body = photo if large else pngs[k % len(pngs)]
                started = time.perf_counter()
                try:
                    connection.request(
                        "POST",
                        "/api/predict",
                        body=body,
                        headers={"Content-Type": "image/jpeg" if large else "image/png"},
                    )
                    response = connection.getresponse()
                    answer = response.read()
                except (OSError, http.client.HTTPException) as e:
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    with lock:
                        dropped[0] += 1
                        errors.append(f"{type(e).__name__}: {e}")
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status >= 500:
                        server_errors[0] += 1
                    if response.status != 200:
                        errors.append(f"{response.status}: {answer[:100]!r}")
            connection.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        rss_after = rss_mb(server.pid)
        ms = np.array(latencies) * 1000
        hostile = args.stalled or args.large_every
        print(
            "| workers | requests | clients | errors | throughput req/s | p50 ms | p90 ms | p99 ms | max ms |"
            + (
                " stalled | large every | 5xx | dropped | stalled dropped | RSS before MB | RSS after MB |"
                if hostile
                else ""
            )
        )
        print("| --- " * (16 if hostile else 9) + "|")
        print(
            f"| {args.workers} | {len(latencies):,} | {args.clients} | {len(errors)} | {len(latencies) / wall:.0f} | "
            f"{statistics.median(ms):.1f} | {np.percentile(ms, 90):.1f} | {np.percentile(ms, 99):.1f} | {ms.max():.1f} |"
            + (
                f" {args.stalled} | {args.large_every or '-'} | {server_errors[0]} | {dropped[0]} | {stalled.dropped} | "
                f"{rss_before:.0f} | {rss_after:.0f} |"
                if hostile
                else ""
            )
        )
        if errors:
            print("first errors:", errors[:3])
    finally:
        stalled.stop.set()
        if stalled.thread.is_alive():
            stalled.thread.join(10)
        server.terminate()
        server.wait(15)
        server_log.seek(0)
        lines = server_log.read().splitlines()
        print(f"server log: {len(lines)} lines, {sum('Traceback' in line for line in lines)} tracebacks")
        for line in lines[:3]:
            print("  ", line)
        server_log.close()


if __name__ == "__main__":
    main()
