"""fastbook's `gv`: a small graph written in Graphviz's edge syntax, shown inline in Jupyter.

    gv('''init->predict->loss->gradient->step->stop
    step->predict[label=repeat]''')

With Graphviz's `dot` on the PATH the picture is dot's (left to right, as the book's). Without it,
a drawing made here: nodes in columns by their distance from the start, edges that go back (the
"repeat" loop) as arcs under the row, with their labels. Either way an SVG; `repr()` is the text.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html import escape

_STATEMENT = re.compile(r"^\s*([\w\s\->\"]+?)\s*(?:\[(.*)\])?\s*$")
_ATTR = re.compile(r"(\w+)\s*=\s*(\"[^\"]*\"|[^,\s]+)")
DOT_SECONDS = 10  # a tiny graph; anything longer is a broken dot


@dataclass
class Graph:
    """Nodes in first-seen order and edges (from, to, label) parsed from edge statements."""

    source: str
    nodes: list[str] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def _node(self, name: str) -> None:
        if name not in self.nodes:
            self.nodes.append(name)

    def __repr__(self) -> str:
        return "\n".join(f"{a} -> {b}" + (f" [{label}]" if label else "") for a, b, label in self.edges)

    def _repr_svg_(self) -> str:
        return _dot_svg(self.source) or _draw_svg(self)


def gv(source: str) -> Graph:
    """A left-to-right digraph from Graphviz edge statements (`a->b->c`, `b->a[label=again]`), one a line
    or separated by `;`. Raises ValueError naming a statement it cannot read."""
    graph = Graph(source)
    for statement in re.split(r"[;\n]", source):
        if not statement.strip():
            continue
        match = _STATEMENT.match(statement)
        if match is None:
            raise ValueError(f"gv: cannot read {statement.strip()!r}; write edges as a->b->c or a->b[label=text]")
        chain = [name.strip().strip('"') for name in match.group(1).split("->")]
        if any(not name for name in chain):
            raise ValueError(f"gv: an edge without a node in {statement.strip()!r}")
        attrs = {k: v.strip('"') for k, v in _ATTR.findall(match.group(2) or "")}
        for name in chain:
            graph._node(name)
        if len(chain) == 1 and "label" in attrs:
            graph.labels[chain[0]] = attrs["label"]
        for a, b in itertools.pairwise(chain):
            graph.edges.append((a, b, attrs.get("label", "")))
    return graph


def _dot_svg(source: str) -> str | None:
    """dot's SVG, or None when Graphviz is not installed or fails (the drawing here takes over)."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    text = 'digraph G{ rankdir="LR"\n' + source + "\n}"
    try:
        done = subprocess.run([dot, "-Tsvg"], input=text, capture_output=True, text=True, timeout=DOT_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _columns(graph: Graph) -> dict[str, int]:
    """Each node's column: the longest path to it from the first node, over edges that go forward
    (an edge back to a node already on the current path is a loop, drawn as an arc)."""
    forward: list[tuple[str, str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str) -> None:
        state[node] = 1
        for a, b, _ in graph.edges:
            if a == node and state.get(b) != 1:
                forward.append((a, b))
                if b not in state:
                    visit(b)
        state[node] = 2

    for node in graph.nodes:
        if node not in state:
            visit(node)
    column = dict.fromkeys(graph.nodes, 0)
    for _ in graph.nodes:  # relax |nodes| times: longest paths in a DAG
        for a, b in forward:
            column[b] = max(column[b], column[a] + 1)
    return column


def _draw_svg(graph: Graph, gap: int = 110, height: int = 26) -> str:
    column = _columns(graph)
    rows: dict[int, int] = {}
    place: dict[str, tuple[float, float]] = {}
    for node in graph.nodes:
        row = rows.get(column[node], 0)
        rows[column[node]] = row + 1
        place[node] = (50 + gap * column[node], 30 + 2 * height * row)
    width = 100 + gap * max(column.values(), default=0)
    bottom = 30 + 2 * height * max(rows.values(), default=1) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{bottom}" font-family="sans-serif" '
        'font-size="12"><defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>'
    ]
    rx = 44
    for a, b, label in graph.edges:
        (x1, y1), (x2, y2) = place[a], place[b]
        if column[b] > column[a]:
            path = f"M{x1 + rx},{y1} L{x2 - rx},{y2}"
            tx, ty = (x1 + x2) / 2, (y1 + y2) / 2 - 4
        else:  # a loop back: an arc under the nodes
            dip = max(y1, y2) + height + 6
            path = f"M{x1},{y1 + 12} C{x1},{dip} {x2},{dip} {x2},{y2 + 12}"
            tx, ty = (x1 + x2) / 2, dip - 2
        parts.append(f'<path d="{path}" fill="none" stroke="black" marker-end="url(#a)"/>')
        if label:
            parts.append(f'<text x="{tx}" y="{ty}" text-anchor="middle">{escape(label)}</text>')
    for node, (x, y) in place.items():
        text = escape(graph.labels.get(node, node))
        parts.append(f'<ellipse cx="{x}" cy="{y}" rx="{rx}" ry="12" fill="white" stroke="black"/>')
        parts.append(f'<text x="{x}" y="{y + 4}" text-anchor="middle">{text}</text>')
    return "".join(parts) + "</svg>"
