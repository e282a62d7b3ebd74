"""The test suite's own set-up: what `make test` relies on to stay fast."""

from __future__ import annotations

import pytest


@pytest.mark.timeout(10)
@pytest.mark.xdist_group("suite-setup")
def test_loadgroup_keeps_a_group_on_one_worker(request: pytest.FixtureRequest) -> None:
    """`--dist loadgroup` sends a group's tests to one worker by tagging their ids; on
    pytest 9.2 with pytest-xdist 3.8 the tag is lost (pytest-xdist#1386) and every
    worker builds each shared study again, hence the `pytest<9.2` pin."""
    if not request.config.getoption("loadgroup", default=False):
        pytest.skip("run without --dist loadgroup")
    assert request.node.nodeid.endswith("@suite-setup"), (
        f"pytest {pytest.__version__} lost the xdist_group tag of {request.node.nodeid}: "
        "install the pytest that pyproject.toml's test extra allows"
    )


@pytest.mark.timeout(30)
def test_every_property_test_is_marked_fuzz() -> None:
    """`make test-long` runs the property tests at 400 examples by their `fuzz` mark
    (`-m "fuzz or long"`); one without it would never run long."""
    import ast
    from pathlib import Path

    unmarked = []
    for path in sorted(Path(__file__).parent.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if any(d.startswith("given(") for d in decorators) and "pytest.mark.fuzz" not in decorators:
                unmarked.append(f"{path.name}::{node.name}")
    assert unmarked == []
