"""The web tests' shared pieces: the app served on a real socket, and what the page complains of
(headless chromium itself: tests/conftest.py's browser_page)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def serving(model_dir, **options) -> Iterator[str]:
    """The app on a real socket, run the way `digitlab serve` runs it (web.server: the guarded protocol);
    yields its base URL. options: create_app's (corrections=DIR)."""
    import uvicorn

    from digitlab.web import server as web_server
    from digitlab.web.app import create_app

    sock = web_server.bind("127.0.0.1", 0)
    uv = uvicorn.Server(web_server.config(create_app(model_dir, **options)))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


def complaints(page) -> list[str]:
    """The page's script errors and console errors (a CSP violation, "Refused to ...", is one) as they
    come; not the browser's notes of 4xx answers (the garbage upload's 415, no favicon)."""
    found: list[str] = []
    page.on("pageerror", lambda e: found.append(str(e)))
    page.on(
        "console",
        lambda m: (
            found.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None
        ),
    )
    return found


@pytest.fixture(scope="session")
def serve_model():
    """`with serve_model(model_dir, **options) as url:` the app on a real socket."""
    return serving


@pytest.fixture(scope="session")
def page_complaints():
    """`found = page_complaints(page)`: the page's script and console errors, as they come."""
    return complaints
