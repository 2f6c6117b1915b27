"""No import cycle among the jobs modules: read from the code, and proved by importing each
module first thing in a fresh interpreter (where a cycle would show as an ImportError)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "jobs"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for p in sorted(JOBS.rglob("*.py"))
        if "migrations" not in p.parts and "__pycache__" not in p.parts
    }


def _top_level_imports(statements: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: at its top level, including inside
    top-level if/try blocks, but not inside functions or classes (nor `if TYPE_CHECKING`)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in statements:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                found += _top_level_imports(node.body) + _top_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _top_level_imports(block)
    return found


def _imported(module: str, path: Path, node: ast.Import | ast.ImportFrom, known) -> set[str]:
    """The jobs modules an import statement needs finished.

    Importing a.b.c runs a, a.b and a.b.c; but a package that encloses `module` is already
    being imported when `module` runs, so it counts only when `module` takes names from it
    (`from . import Recipe`: the classic package-submodule cycle), not for its submodules."""
    enclosing = {module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1)}
    loaded: set[str] = set()

    def needs(name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known and prefix != module and (prefix == name or prefix not in enclosing):
                loaded.add(prefix)

    if isinstance(node, ast.Import):
        for alias in node.names:
            needs(alias.name)
        return loaded
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in known:
            needs(submodule)  # a submodule: an enclosing package need not be finished
        else:
            needs(base)  # a name defined in `base`: it must have run to the end
    return loaded


def _all_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import, also those deferred into a function (which only hide a cycle)."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def import_graph(*, deferred: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        nodes = _all_imports(tree) if deferred else _top_level_imports(tree.body)
        graph[name] = set().union(*(_imported(name, path, n, modules) for n in nodes))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle as a path [a, b, ..., a], or [] when there is none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_cycle_finder_finds_the_cycle_that_was_there():
    old = {
        "jobs.faults": {"jobs.queue"},
        "jobs.queue": {"jobs.tasks"},
        "jobs.tasks": {"jobs.faults"},
    }
    assert find_cycle(old) == ["jobs.faults", "jobs.queue", "jobs.tasks", "jobs.faults"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_graph_reads_relative_and_absolute_imports():
    graph = import_graph()

    assert "jobs.hostkeys" in graph["jobs.tasks"]  # flag_host_key lives on its own
    assert "jobs.faults" not in graph["jobs.tasks"]
    assert "jobs.queue" in graph["jobs.faults"]
    assert "jobs.states" in graph["jobs.launch"]
    assert "jobs.models" in graph["jobs.states"]
    assert graph["jobs.recipes.system"] >= {"jobs.recipes.base", "jobs.ssh"}
    assert "jobs.recipes" not in graph["jobs.recipes.system"]  # the package imports it


def test_a_submodule_taking_names_from_its_package_is_a_cycle():
    modules = {"jobs.recipes": Path("jobs/recipes/__init__.py")}
    modules["jobs.recipes.system"] = Path("jobs/recipes/system.py")
    init = ast.parse("from . import system").body[0]
    child = ast.parse("from . import Recipe").body[0]
    graph = {
        "jobs.recipes": _imported("jobs.recipes", modules["jobs.recipes"], init, modules),
        "jobs.recipes.system": _imported(
            "jobs.recipes.system", modules["jobs.recipes.system"], child, modules
        ),
    }
    assert find_cycle(graph) == ["jobs.recipes", "jobs.recipes.system", "jobs.recipes"]


def test_there_is_no_import_cycle_among_the_jobs_modules():
    assert find_cycle(import_graph()) == []


def test_nor_one_hidden_by_an_import_deferred_into_a_function():
    """The old cycle faults -> queue -> tasks -> faults hid behind an import inside
    `queue.enqueue`; the queue now names the task by its dotted path."""
    graph = import_graph(deferred=True)

    assert "jobs.tasks" not in graph["jobs.queue"]
    assert find_cycle(graph) == []


def _import_alone(module: str) -> tuple[int, str]:
    script = (
        "import importlib, sys, django\n"
        "django.setup(set_prefix=False)\n"
        "importlib.import_module(sys.argv[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, module],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, (done.stdout + done.stderr)[-1500:]


def test_each_jobs_module_imports_first_thing_in_a_fresh_interpreter():
    from concurrent.futures import ThreadPoolExecutor

    modules = sorted(_modules())
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(modules, pool.map(_import_alone, modules), strict=True))

    assert len(modules) > 10
    assert {m: out for m, (code, out) in results.items() if code != 0} == {}
