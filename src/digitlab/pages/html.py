"""The pieces every self-contained page shares: one style sheet, embedded images, tables, the page itself."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #eee}
.big{font-size:1.4em;font-weight:bold}.note{color:#666;font-size:.9em}"""


def embedded_png(path: Path, alt: str) -> str:
    """A PNG embedded as a data URI: the page opens from disk, with no network and no side files."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def table(rows: Sequence[tuple[object, ...]], header: tuple[str, ...] | None = None) -> str:
    head = "<tr>" + "".join(f'<th class="l">{html.escape(str(h))}</th>' for h in header) + "</tr>" if header else ""
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i == 0 else ""}">{html.escape(str(v))}</td>' for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"


def page(path: Path, title: str, body: str) -> Path:
    """Write `body` (HTML, already escaped) as a complete page titled `title` to `path`; return `path`."""
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
    path.write_text(document, encoding="utf-8")
    return path
