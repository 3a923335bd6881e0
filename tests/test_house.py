"""The house: digitlab's modules import each other without cycles, counting every import that
runs, at the top and inside functions (where a cycle is usually hidden); imports under
`if TYPE_CHECKING:` name types for annotations only (a callback is handed its Learner) and never
run, so they do not count. And every function fits on a screen."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def modules() -> dict[str, Path]:
    """'digitlab.train.learner' -> its file, for every module of the package."""
    found = {}
    for path in (SRC / "digitlab").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of the tree but those under `if TYPE_CHECKING:`."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The digitlab modules that module `name` imports, anywhere in its file."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: list[str] = []
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets += [f"{module}.{alias.name}" for alias in node.names]  # a submodule, or a name in module
    found = set()
    for target in targets:
        while target and target not in known:  # `from .learner import Callback` -> digitlab.train.learner
            target = target.rpartition(".")[0]
        if target.startswith("digitlab") and target != name:
            found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_module_imports_itself_through_others():
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    graph["digitlab"] = set()  # the package's lazy names load on first use, by name (`__getattr__`)
    assert len(graph) > 100 and "digitlab.train.callback" in graph["digitlab.train.learner"]
    assert "digitlab.pages.report" in graph["digitlab.cli.report_cmd"]  # imported inside its run(): read too
    assert cycles(graph) == []


def test_no_package_imports_itself_through_others():
    """The same with each subpackage (data, train, run, jobs, plots, ...) as one node: `run` (a model's
    files) and `train` (learning) no longer import each other; `jobs` is where they meet."""
    known = modules()
    packages = {name.split(".")[1] for name, path in known.items() if path.name == "__init__.py" and "." in name}

    def unit(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 and parts[1] in packages else name

    graph: dict[str, set[str]] = {unit(name): set() for name in known}
    for name, path in known.items():
        if name != "digitlab":  # the package's lazy names, as above
            graph[unit(name)] |= {unit(target) for target in imported(name, path, known)} - {unit(name)}
    graph["digitlab"] = set()
    assert {"digitlab.train", "digitlab.run", "digitlab.jobs"} <= set(graph)
    assert cycles(graph) == []


def test_every_function_fits_on_a_screen():
    """No function of the package is over 60 lines (signature, docstring and body): a longer one is
    sections that want names of their own."""
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in modules().values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60
    ]
    assert not long
