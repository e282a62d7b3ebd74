"""A fuzz pass over the sweep-file parser: every generated file either validates or
gets one line per problem and exit status 2, never a traceback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweep_runner.cli import main
from sweeps.config import RunConfig
from sweeps.sweep_file import SECTIONS

KEYS = [*RunConfig.model_fields, "label", "comment", "sampler", "n_trials", "low", "high",
        "log", "choices", "threshold", "swing_start", "max_retries", "pruner", "breakpoints", "relative"]
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    TEXT, st.sampled_from(["cifar10", "digits", "[8.e-4, 20][8.e-5, 40]", "test", "auto", "tpe"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=8,
)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is JSON's string syntax
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


@st.composite
def sweep_files(draw: st.DrawFn) -> str:
    """Mostly well-formed TOML with the schema's keys and wrong-ish values, sometimes garbage."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=80))
    lines: list[str] = []
    for section in draw(st.lists(st.sampled_from([*SECTIONS[2:], "spaces"]), max_size=4, unique=True)):
        header = f"[[{section}]]" if section == "runs" else f"[{section}]"
        lines.append(header)
        keys = st.one_of(st.sampled_from(KEYS), TEXT)
        for key, value in draw(st.dictionaries(keys, VALUES, max_size=5)).items():
            lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


# Examples: the profile's (tests/conftest.py): a few dozen, 400 in `make test-long`.
@pytest.mark.fuzz
@given(text=sweep_files())
def test_every_file_validates_or_gets_one_line_per_problem(text: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    status = main(["check", str(path)])
    out, err = capsys.readouterr()
    assert status in (0, 2)
    if status == 2:
        lines = err.splitlines()
        assert lines and all(line.startswith(f"{path}: ") for line in lines), err
        assert "Traceback" not in err and out == ""
