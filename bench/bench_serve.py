"""Load test of `digitlab serve` on 127.0.0.1: N predictions from C concurrent clients.

Starts the server as a subprocess on a free loopback port, sends canvas-like PNGs (test digits
black on a white 112x112 canvas, the size the page sends), and reports errors, throughput
and latency percentiles. Bounded in count and time; stops the server at the end.

    .venv/bin/python bench/bench_serve.py MODEL_DIR [--requests 2000] [--clients 8] [--workers 2]
        [--client python|ab]

--client python: 8 Python threads with http.client (one connection each, kept alive), sending
200 different digits; their own CPU use shares the machine's 2 cores with the server.
--client ab: ApacheBench (Debian's apache2-utils), keep-alive, one digit: a client that costs
next to nothing, as a browser on another machine would.
"""

from __future__ import annotations

import argparse
import http.client
import io
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

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


def run_ab(png: bytes, port: int, args: argparse.Namespace) -> None:
    import re
    import tempfile

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
    args = parser.parse_args()
    port = free_port()
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
        ]
    )
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
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + DEADLINE_S

        def client(index: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for k in range(index, args.requests, args.clients):
                if time.monotonic() > stop_at:
                    return
                started = time.perf_counter()
                connection.request(
                    "POST", "/api/predict", body=pngs[k % len(pngs)], headers={"Content-Type": "image/png"}
                )
                response = connection.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status != 200:
                        errors.append(f"{response.status}: {body[:100]!r}")
            connection.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        ms = np.array(latencies) * 1000
        print("| workers | requests | clients | errors | throughput req/s | p50 ms | p90 ms | p99 ms | max ms |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        print(
            f"| {args.workers} | {len(latencies):,} | {args.clients} | {len(errors)} | {len(latencies) / wall:.0f} | "
            f"{statistics.median(ms):.1f} | {np.percentile(ms, 90):.1f} | {np.percentile(ms, 99):.1f} | {ms.max():.1f} |"
        )
        if errors:
            print("first errors:", errors[:3])
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
