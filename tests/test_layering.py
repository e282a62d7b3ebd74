"""The packages' structure, read from the source (imports inside functions too):

- data flows one way: `sweeps` imports none of the others, `trainer` only `sweeps`,
  `results` never `sweep_runner`, and none imports `testkit`, `tests` or `benchmarks`;
- no module imports itself back through any chain of imports (no cycle);
- `sweep_runner` reaches `results` and `trainer` only through their public names (what
  `results`, `results.store`, `results.report` and `trainer` export), never a module
  inside them; `results` reaches `trainer` (the epoch fields) the same way.
"""

from __future__ import annotations

import ast
import functools
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sweeps", "trainer", "results", "sweep_runner")
#: What the product never imports: the tests' and the benchmarks' helpers.
_NOT_PRODUCT = {"testkit", "tests", "benchmarks"}
FORBIDDEN = {
    "sweeps": {"trainer", "results", "sweep_runner", *_NOT_PRODUCT},
    "trainer": {"sweep_runner", "results", *_NOT_PRODUCT},
    "results": {"sweep_runner", *_NOT_PRODUCT},
    "sweep_runner": _NOT_PRODUCT,
}
#: The public doors `sweep_runner` imports `results` and `trainer` through.
DOORS = ("results", "results.store", "results.report", "trainer")


def module_name(path: Path, root: Path = REPO) -> str:
    """`results/store/models.py` → `results.store.models`; a package's `__init__` is the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def lazy_targets(tree: ast.Module) -> set[str]:
    """The modules a door's `_PUBLIC` table names (it imports them on first use)."""
    targets = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_PUBLIC" for t in node.targets):
            for value in ast.literal_eval(node.value).values():
                targets.add(value if isinstance(value, str) else value[0])
    return targets


@functools.cache
def bound_names(path: Path) -> set[str]:
    """The names a package's `__init__` binds at its top level, its lazy ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
            if any(getattr(target, "id", None) == "_PUBLIC" for target in node.targets):
                names |= set(ast.literal_eval(node.value))
    return names


def imports_of(path: Path, modules: dict[str, Path], root: Path = REPO) -> set[tuple[str, str | None]]:
    """What a module imports anywhere in it: (module, name) pairs, where the name is the
    one taken from the module by `from module import name` (None for `import module`,
    and for a submodule the package does not bind a name over, which then is the module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[tuple[str, str | None]] = {(target, None) for target in lazy_targets(tree)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name, None) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                is_bound = base in modules and alias.name in bound_names(modules[base])
                found.add((full, None) if full in modules and not is_bound else (base, alias.name))
    return found


def project_modules(root: Path = REPO) -> dict[str, Path]:
    """Every module of the four packages, by dotted name."""
    return {
        module_name(path, root): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    }


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Each project module → the project modules it imports (anywhere in it)."""
    modules = project_modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {module for module, _ in imports_of(path, modules, root)}
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as the modules along it (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_never_imports_the_layers_above_it(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    modules = project_modules()
    offending = {
        str(path.relative_to(REPO)): sorted(
            {module.partition(".")[0] for module, _ in imports_of(path, modules)} & FORBIDDEN[package]
        )
        for path in files
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_no_module_imports_itself_back() -> None:
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize(("package", "reached"), [("sweep_runner", ("results", "trainer")), ("results", ("trainer",))])
def test_packages_import_results_and_trainer_through_their_public_names_only(package: str, reached: tuple) -> None:
    modules = project_modules()
    public = {door: _public_names(door) for door in DOORS}
    offending = []
    for path in sorted((REPO / package).rglob("*.py")):
        for module, name in sorted(imports_of(path, modules), key=str):
            if module.partition(".")[0] not in reached:
                continue
            if module not in DOORS or (name is not None and name not in public[module]):
                offending.append(f"{path.relative_to(REPO)}: {module}{'.' + name if name else ''}")
    assert offending == []


def _public_names(door: str) -> set[str]:
    return set(importlib.import_module(door).__all__)


@pytest.mark.timeout(60)
def test_a_trials_child_imports_neither_pandas_nor_plotly_nor_matplotlib() -> None:
    """Every import of `sweep_runner.child`, those inside its functions too, run in a
    fresh interpreter: the reports' libraries stay out of every trial's process."""
    child = REPO / "sweep_runner" / "child.py"
    statements = [
        ast.unparse(node) for node in ast.walk(ast.parse(child.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", "") != "__future__"
    ]
    assert any("results.store" in line for line in statements)  # the scan sees the lazy imports
    script = "\n".join([
        "import sys", "import sweep_runner.child", *statements,
        "print(sorted({m.partition('.')[0] for m in sys.modules} & {'pandas', 'plotly', 'matplotlib'}))",
    ])
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=50,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_scan_sees_imports_inside_functions_and_through_doors(tmp_path: Path) -> None:
    _write(tmp_path, {
        "sweeps/__init__.py": "",
        "sweeps/a.py": "def f():\n    from results.store.models import X\n",
        "trainer/__init__.py": "",
        "sweep_runner/__init__.py": "",
        "results/__init__.py": "",
        "results/store/__init__.py": "_PUBLIC = {'X': 'results.store.models'}\n",
        "results/store/models.py": "def g():\n    from sweeps import a\n",
    })
    graph = import_graph(tmp_path)
    assert graph["sweeps.a"] == {"results.store.models"}
    assert graph["results.store"] == {"results.store.models"}
    assert find_cycle(graph) == ["results.store.models", "sweeps.a", "results.store.models"]
    (tmp_path / "sweeps/a.py").write_text("from . import b\n")
    (tmp_path / "sweeps/b.py").write_text("import sweeps.a\n")
    assert find_cycle(import_graph(tmp_path)) == ["sweeps.a", "sweeps.b", "sweeps.a"]
