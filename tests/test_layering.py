"""The layers' one-way data flow: `trainer` knows neither the runner nor the store, and
`results` does not know the runner. Checked on the source, imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {"trainer": {"sweep_runner", "results"}, "results": {"sweep_runner"}}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports anywhere in it (relative imports are its own)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_the_layers_above_it(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    offending = {
        str(path.relative_to(REPO)): sorted(imported_packages(path) & FORBIDDEN[package]) for path in files
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from sweep_runner.worker import Worker\n    import results.store.result_store\n")
    assert imported_packages(module) == {"sweep_runner", "results"}
