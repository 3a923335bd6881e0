"""`digitlab exercises list|show|check|quiz`: the chapter's exercises that check themselves."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DigitlabError, check_range
from .common import Commands, Context, add_command, print_json

if TYPE_CHECKING:
    from ..exercises.runner import Verdict
    from ..exercises.sandbox import Limits

EXAMPLES = """\
  digitlab exercises list                          the exercises, in the chapter's order
  digitlab exercises show mnist_distance           what to write, and a skeleton to start from
  digitlab exercises check mywork.py               check every exercise your file (or notebook) defines
  digitlab exercises check ch4.ipynb --only mnist_loss batch_accuracy
  digitlab exercises check --all submissions/ --out class-report    a class: report.html and report.csv
  digitlab exercises quiz                          the chapter's questionnaire, answers on request
  digitlab exercises quiz --reveal --number 9      one question with its model answer

Checking RUNS the submitted code: in a bubblewrap sandbox (no home folder, no other student's files,
no network, its own processes) with time, memory, process and output limits. `--all` refuses to run
other people's code where no sandbox can be had (install bubblewrap) unless told --unsafe.
"""


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "exercises",
        help="the chapter's exercises and questionnaire, checked for you",
        description=f"the chapter's coding exercises and questionnaire, checked for you\n\nexamples:\n{EXAMPLES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=lambda args, ctx: _no_action(parser))
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    add_command(actions, "list", "list the exercises", "  digitlab exercises list --json\n", run_list)
    show = add_command(
        actions, "show", "what an exercise asks, with a skeleton", "  digitlab exercises show is_3\n", run_show
    )
    show.add_argument("name", metavar="NAME", help="an exercise's name (`digitlab exercises list`)")
    check_examples = "\n".join(line for line in EXAMPLES.splitlines() if "exercises check" in line) + "\n"
    check = add_command(actions, "check", "check a file, a notebook, or a class's folder", check_examples, run_check)
    check.add_argument("path", metavar="FILE", nargs="?", type=Path, help="a .py file, a notebook or a folder of them")
    check.add_argument("--all", metavar="FOLDER", type=Path, help="a folder with one submission per student")
    check.add_argument("--out", type=Path, default=Path("class-report"), help="where --all writes report.html/.csv")
    check.add_argument("--only", nargs="+", metavar="NAME", help="check these exercises only")
    check.add_argument("--time-limit", type=float, default=10.0, help="seconds per exercise (default 10)")
    check.add_argument(
        "--load-time-limit", type=float, default=60.0, help="seconds to run a submission's cells first (default 60)"
    )
    check.add_argument("--memory", type=int, default=2048, help="memory limit of the learner's process, MiB")
    check.add_argument(
        "--unsafe", action="store_true",
        help="run the code without the sandbox, as your user (where bubblewrap cannot run): only code you trust",
    )  # fmt: skip
    quiz_examples = (
        "  digitlab exercises quiz                          every question, each answer on request\n"
        "  digitlab exercises quiz --reveal --number 9      one question with its model answer\n"
        "  digitlab exercises quiz --number 21 --figures figs    question 21 and its figure, saved in figs/\n"
    )
    quiz = add_command(actions, "quiz", "the chapter's questionnaire with model answers", quiz_examples, run_quiz)
    quiz.add_argument("--reveal", action="store_true", help="print every answer without asking")
    quiz.add_argument("--number", type=int, nargs="+", metavar="N", help="only these questions")
    quiz.add_argument("--figures", type=Path, metavar="DIR", help="save the questions' figures (PNG) here")


def _no_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    from ..exercises.catalogue import CATALOGUE as table  # the words alone: no torch, no checks

    if args.json:
        print_json({"exercises": [{"name": e.name, "title": e.title} for e in table.values()]})
        return 0
    width = max(map(len, table))
    for e in table.values():
        print(f"{e.name:<{width}}  {e.title}")
    return 0


def run_show(args: argparse.Namespace, ctx: Context) -> int:
    from ..exercises.catalogue import entry

    e = entry(args.name)
    if args.json:
        print_json({"name": e.name, "title": e.title, "task": e.task, "starter": e.starter, "questions": e.questions})
        return 0
    related = f"\nQuestionnaire: {', '.join(map(str, e.questions))} (digitlab exercises quiz --number ...)"
    print(f"{e.name}: {e.title}\n\n{e.task}\n\nStart from:\n\n{e.starter}{related if e.questions else ''}")
    return 0


MAX_SECONDS = 24 * 3600  # a limit per exercise: a day is no limit a class needs


def run_check(args: argparse.Namespace, ctx: Context) -> int:
    from ..exercises import exercises, get
    from ..exercises.classroom import check_path, mnist_data
    from ..exercises.sandbox import Limits

    if (args.path is None) == (args.all is None):
        raise DigitlabError("give one FILE to check, or --all FOLDER for a class")
    check_range("--time-limit", args.time_limit, 0.1, MAX_SECONDS, "seconds")
    check_range("--load-time-limit", args.load_time_limit, 0.1, MAX_SECONDS, "seconds")
    check_range("--memory", args.memory, 512, 2**20, "MiB (torch alone needs ~500)")
    names = list(dict.fromkeys(get(n).name for n in args.only)) if args.only else list(exercises())
    limits = Limits(seconds=args.time_limit, load_seconds=args.load_time_limit, memory=args.memory * 2**20)
    limits = replace(limits, isolate=_sandboxed(args, ctx))
    if args.all is not None:
        return _check_class(args, ctx, names, limits)
    if not args.path.exists():
        raise DigitlabError(f"{args.path}: no such file or folder")
    from ..exercises.source import read_cells

    read_cells(args.path)  # a file that is not Python or a notebook is one line, exit 2, before anything runs
    with mnist_data(names, [args.path], ctx.settings, ctx.log) as (data, judges):
        which = f"{len(names)} exercises" if args.only else f"the exercises it defines, of {len(names)}"
        where = "in a sandbox" if limits.isolate else "in a child process"
        ctx.log(f"checking {args.path}: {which}, {where} ({args.time_limit:g} s each)")
        verdicts = check_path(args.path, names, limits, data, judges)
    left_out = 0
    if not args.only:  # a learner part-way through: exercises not written yet are not failures
        defined = [v for v in verdicts if v.status != "missing"]
        left_out = len(verdicts) - len(defined) if defined else 0
        verdicts = defined or verdicts
    failed = sum(v.status != "passed" for v in verdicts)
    if args.json:
        print_json({"path": str(args.path), "passed": len(verdicts) - failed, "failed": failed,
                    "verdicts": [v.to_dict() for v in verdicts]})  # fmt: skip
    else:
        for v in verdicts:
            print(v.line())
        not_yet = f"; {left_out} not defined yet (left out; --only NAME checks one anyway)" if left_out else ""
        print(f"{len(verdicts) - failed} passed, {failed} failed{not_yet}")
    return 1 if failed else 0


def _sandboxed(args: argparse.Namespace, ctx: Context) -> bool:
    """Whether to run the code in the sandbox; without one, a class is refused unless --unsafe."""
    from ..exercises.isolation import isolation

    if args.unsafe:
        ctx.log("--unsafe: the code runs as your user, with only time, memory and output limits")
        return False
    found = isolation()
    if found.available:
        return True
    if args.all is not None:
        raise DigitlabError(
            f"will not run other people's code without a sandbox: {found.why} (or --unsafe to run it as your user)"
        )
    ctx.log(f"no sandbox here ({found.why}): your file runs as you, with time and memory limits")
    return False


def _check_class(args: argparse.Namespace, ctx: Context, names: list[str], limits: Limits) -> int:
    from ..core.outputs import check_owned_folder
    from ..exercises.class_report import CLASS_REPORT_FILES, write_class_report
    from ..exercises.classroom import check_path, find_submissions, mnist_data

    check_owned_folder(args.out, "--out", CLASS_REPORT_FILES)  # before the checks, not after minutes of them
    submissions = find_submissions(args.all, exclude=args.out)
    results: dict[str, list[Verdict]] = {}
    with mnist_data(names, list(submissions.values()), ctx.settings, ctx.log) as (data, judges):
        for i, (student, path) in enumerate(submissions.items(), start=1):
            verdicts = check_path(path, names, limits, data, judges, within=args.all)
            results[student] = verdicts
            ctx.log(f"{student} ({i}/{len(submissions)}): {sum(v.passed for v in verdicts)} of {len(names)} passed")
    html_path, csv_path = write_class_report(results, args.out)
    summary = {s: sum(v.passed for v in vs) for s, vs in results.items()}
    if args.json:
        print_json({"html": str(html_path), "csv": str(csv_path), "passed": summary})
    else:
        print(f"wrote {html_path} and {csv_path}: {len(results)} students, {len(names)} exercises")
    # as for one file: 1 if a check failed (a missing exercise is not a failure); the report is there either way
    return 1 if any(v.status == "failed" for vs in results.values() for v in vs) else 0


def run_quiz(args: argparse.Namespace, ctx: Context) -> int:
    from ..exercises.quiz import run_quiz as quiz

    return quiz(args.number, reveal=args.reveal or args.json, figures=args.figures, as_json=args.json)
