"""The class report: one self-contained HTML page (a table of students x exercises, then each student's
feedback) and a CSV of the same rows, for a teacher's spreadsheet."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

from ..core.outputs import check_owned_folder, make_folder
from ..pages.html import page, table
from .runner import FAILED, MISSING, PASSED, Verdict

MARKS = {PASSED: "✓", FAILED: "✗", MISSING: "–"}
COLUMNS = ("student", "exercise", "status", "seconds", "feedback", "output")
# The grid's exercise names stand upright and a wide grid scrolls in its own box: 18 exercises made
# the page 2,506 px wide in a 1,200 px window
STYLE = (
    "<style>.passed{background:#dff3df}.failed{background:#f8dede}.missing{color:#999}"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere}.scroll{overflow-x:auto;max-width:100%}"
    "#grid th:not(.l){writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;padding:.3em .2em}"
    "td{white-space:nowrap}td:last-child{white-space:normal;text-align:left;overflow-wrap:anywhere}</style>"
)


def csv_text(results: dict[str, list[Verdict]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for student, verdicts in results.items():
        for v in verdicts:
            row = (student, v.exercise, v.status, f"{v.seconds:.2f}", v.feedback, v.output)
            writer.writerow([inert(cell) for cell in row])
    return buffer.getvalue()


def inert(cell: str) -> str:
    """A cell a spreadsheet shows as text: a student's "=HYPERLINK(...)" (file name or output) is not run."""
    return "'" + cell if cell.startswith(("=", "+", "-", "@", "\t", "\r")) else cell


def _grid(results: dict[str, list[Verdict]], names: list[str]) -> str:
    """Students down, exercises across, one coloured mark per cell, pass counts in the last row and column."""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for student, verdicts in results.items():
        cells = "".join(
            f'<td class="{v.status}" title="{html.escape(v.feedback)}">{MARKS[v.status]}</td>' for v in verdicts
        )
        passed = sum(v.passed for v in verdicts)
        rows.append(f'<tr><th class="l">{html.escape(student)}</th>{cells}<td>{passed}/{len(verdicts)}</td></tr>')
    counts = [sum(vs[i].passed for vs in results.values()) for i in range(len(names))]
    total = "".join(f"<td>{c}</td>" for c in counts)
    foot = f'<tr><th class="l">passed</th>{total}<td></td></tr>'
    grid = f'<table id="grid"><tr><th class="l">student</th>{head}<th>passed</th></tr>{"".join(rows)}{foot}</table>'
    return f'<div class="scroll">{grid}</div>'


def _student(student: str, verdicts: list[Verdict]) -> str:
    rows = [(v.exercise, v.status, f"{v.seconds:.2f} s", v.feedback) for v in verdicts]
    outputs = "".join(
        f"<p>What {html.escape(v.exercise)} printed:</p><pre>{html.escape(v.output)}</pre>"
        for v in verdicts
        if v.output
    )
    passed = sum(v.passed for v in verdicts)
    title = f"{student}: {passed} of {len(verdicts)} passed in {sum(v.seconds for v in verdicts):.1f} s"
    return f"<h2>{html.escape(title)}</h2>{table(rows, ('exercise', 'status', 'time', 'feedback'))}{outputs}"


# What write_class_report puts in its folder (the two temporary names included): `--out` may hold only these
CLASS_REPORT_FILES = frozenset({"report.html", "report.csv", ".report.html.tmp", ".report.csv.tmp"})


def write_class_report(results: dict[str, list[Verdict]], out: Path) -> tuple[Path, Path]:
    """out/report.html and out/report.csv; each written to a temporary file, then renamed into place."""
    check_owned_folder(out, "--out", CLASS_REPORT_FILES)
    make_folder(out, "--out")
    names = [v.exercise for v in next(iter(results.values()), [])]
    body = (
        f"{STYLE}<h1>Class report: {len(results)} students, {len(names)} exercises</h1>"
        '<p class="note">✓ passed, ✗ failed, – not attempted. Hover a mark for its feedback.</p>'
        f"{_grid(results, names)}{''.join(_student(s, vs) for s, vs in results.items())}"
    )
    html_path, csv_path = out / "report.html", out / "report.csv"
    page(out / ".report.html.tmp", "digitlab class report", body).replace(html_path)
    temp = out / ".report.csv.tmp"
    temp.write_text(csv_text(results), encoding="utf-8", newline="")
    temp.replace(csv_path)
    return html_path, csv_path
