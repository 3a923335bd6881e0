"""How `digitlab serve` runs uvicorn so that slow, stalled or too many clients cannot take it down.

- The socket is bound (and listening) before anything says "serving": a busy port is one line.
- A connection must send its request line and headers within HEADER_TIMEOUT_S (uvicorn itself
  waits forever for them); an idle kept-alive connection is closed after KEEP_ALIVE_S.
- Past MAX_CONNECTIONS open connections per process (fewer if the open-files limit leaves less
  room; serve() raises the soft limit toward the hard one), a new one is answered 503 with
  Retry-After and closed at once, so stalled connections cannot exhaust file descriptors or memory.
- Each dropped client is one warning line, never a traceback.
The limits on uploads themselves (body deadline, predictions in flight) are in app.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from ..errors import DigitlabError

HEADER_TIMEOUT_S = 10.0  # request line and headers must arrive by then, from the first byte
KEEP_ALIVE_S = 5  # an idle kept-alive connection is closed after this
MAX_CONNECTIONS = 10_000  # open connections per server process (an idle one costs a few KB)
SPARE_FILES = 256  # open files kept free for everything else (the model, logs, sockets of the pool)
BACKLOG = 2048  # connections the kernel queues before the server accepts them
RETRY_AFTER_S = 1  # what a 503 asks the client to wait

log = logging.getLogger("uvicorn.error")  # uvicorn's own logger: its format and level (warning)


def connection_cap() -> int:
    """MAX_CONNECTIONS, or fewer when this process's open-files limit leaves less room."""
    try:
        import resource
    except ImportError:  # not on Windows
        return MAX_CONNECTIONS
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else max(1, min(MAX_CONNECTIONS, soft - SPARE_FILES))


def raise_file_limit() -> None:
    """Lift the soft open-files limit toward MAX_CONNECTIONS + SPARE_FILES, as far as the hard limit
    allows (often 1,024 soft for a much higher hard); worker processes inherit it."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MAX_CONNECTIONS + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def _busy_response(cap: int) -> bytes:
    body = json.dumps({"error": f"the server is busy (over {cap} connections): retry shortly"}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Retry-After: {RETRY_AFTER_S}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline for the request's headers and a cap on connections."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cap = connection_cap()
        if len(self.connections) > cap:
            log.warning("%s: dropped, over %d open connections (answered 503)", self._peer(), cap)
            transport.write(_busy_response(cap))
            transport.close()
            return
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()  # each request on a kept-alive connection gets the same deadline

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.warning("%s: dropped, no complete request headers within %g s", self._peer(), HEADER_TIMEOUT_S)
            self.transport.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line DigitlabError (a busy port, a bad address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise DigitlabError(f"port {port} on {host} is already in use: stop that server or choose --port") from None
        raise DigitlabError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    except (OverflowError, UnicodeError) as e:  # a port outside 0-65535, an unusable host name
        sock.close()
        raise DigitlabError(f"cannot listen on {host}:{port}: {e}") from None
    sock.set_inheritable(True)
    return sock


def config(app: FastAPI | str, workers: int = 1) -> uvicorn.Config:
    """uvicorn's settings for digitlab: the guarded protocol and the timeouts above."""
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        workers=workers,
        http=GuardedProtocol,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=5,
        backlog=BACKLOG,
        server_header=False,
        log_level="warning",
    )


def serve(app: FastAPI | str, sock: socket.socket, workers: int = 1) -> None:
    """Serve on a socket from bind(): app itself in this process, or N worker processes that each
    build the app from an import string ("module:factory")."""
    settings = config(app, workers)
    raise_file_limit()
    if workers == 1:
        uvicorn.Server(settings).run(sockets=[sock])
    else:
        Multiprocess(settings, sockets=[sock]).run()
