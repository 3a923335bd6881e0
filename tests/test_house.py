"""The house: digitlab's modules import each other without cycles, counting every import that
runs, at the top and inside functions (where a cycle is usually hidden); imports under
`if TYPE_CHECKING:` name types for annotations only (a callback is handed its Learner) and never
run, so they do not count. Each module imports only from its own layer or those below (LAYERS). And
every function fits on a screen."""

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
    assert {"digitlab.train", "digitlab.artifacts", "digitlab.jobs"} <= set(graph)
    assert cycles(graph) == []


# The layers, lowest first: a module imports only from its own layer or lower ones. A package is one
# unit (every module in it); a module at the root is its own.
LAYERS = [
    ["digitlab", "digitlab.errors", "digitlab.config", "digitlab.core"],  # nothing about digits
    ["digitlab.data", "digitlab.lists", "digitlab.paths"],  # digits as tensors; fastai's L and Path.ls
    ["digitlab.reading"],  # a photo to 28x28 digits: pure image code
    ["digitlab.models", "digitlab.resnet", "digitlab.line_reader", "digitlab.baseline"],  # networks; pixel similarity
    ["digitlab.artifacts"],  # a model's card, files and input preprocessing
    ["digitlab.plots"],  # figures of all of the above (a training run's too: values in, Figure out)
    ["digitlab.train", *(f"digitlab.{m}" for m in ("learner", "callbacks", "dataloader", "losses", "optim"))],
    ["digitlab.loading", "digitlab.predict"],  # loading: the chapter's name for data.loading
    ["digitlab.jobs"],  # training, artifacts and prediction meet
    ["digitlab.pages", "digitlab.vision", "digitlab.book"],
    ["digitlab.all", "digitlab.web", "digitlab.exercises"],
    ["digitlab.cli"],
    ["digitlab.__main__"],
]


def unit_of(name: str, packages: set[str]) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1] in packages else name


def upward_imports(graph: dict[str, set[str]], packages: set[str]) -> list[str]:
    """Every import of a module from a layer above its own, as a line that says so."""
    rank = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    units = {unit_of(name, packages) for name in graph}
    assert units <= set(rank), f"give these a layer: {sorted(units - set(rank))}"
    return sorted(
        f"{name} (layer {rank[unit_of(name, packages)]}) imports {target} (layer {rank[unit_of(target, packages)]})"
        for name, targets in graph.items()
        for target in targets
        if rank[unit_of(target, packages)] > rank[unit_of(name, packages)]
    )


def test_no_module_imports_from_a_layer_above_its_own():
    """The tree is the architecture: data and reading know nothing of models, training nothing of
    prediction, the library nothing of the command line or the web page."""
    known = modules()
    packages = {name.split(".")[1] for name, path in known.items() if path.name == "__init__.py" and "." in name}
    graph = {name: imported(name, path, known) for name, path in known.items()}
    graph["digitlab"] = set()  # the package's lazy names, as above
    assert upward_imports(graph, packages) == []
    # the rule's own check: a data module that imports the Learner is reported, its import of errors is not
    graph["digitlab.data.rogue"] = {"digitlab.train.learner", "digitlab.errors"}
    assert upward_imports(graph, packages) == ["digitlab.data.rogue (layer 1) imports digitlab.train.learner (layer 6)"]


def test_no_module_imports_another_modules_private_names():
    """A name with a leading underscore is its module's own: one another module needs is public."""
    found = [
        f"{path.relative_to(SRC)}:{node.lineno} imports {alias.name}"
        for path in modules().values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("digitlab"))
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert not found
