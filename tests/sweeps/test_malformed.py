"""Every malformed sweep file gets one line naming the file and key, exit 2, nothing written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sweep_runner.cli import main

CORPUS = sorted((Path(__file__).parent / "malformed").glob("*.toml"))


def _expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), path
    return first[len("# expect: "):]


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_expectation_names_a_key_of_its_file(path: Path) -> None:
    """The expected line itself must point at the culprit: its location's sections and
    keys are written in the file (all but the last, which may be the missing one), or
    for a syntax error the line and column."""
    expected = _expected(path)
    where, _, message = expected.partition(": ")
    assert message, expected
    if where == "TOML syntax error":
        assert re.search(r"\(at line \d+, column \d+\)$", message), expected
        return
    if " " in where:  # the whole file (its nesting, its size): no one key to name
        return
    body = path.read_text(encoding="utf-8").split("\n", 1)[1]
    names = [name for name in re.split(r"[.\[\]\d]+", where) if name]
    assert names and all(re.search(rf"\b{re.escape(name)}\b", body) for name in names[:-1] or names), (
        where, body
    )


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_malformed_file_gets_one_line(path: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    status = main(["check", str(path)])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.splitlines() == [f"{path}: {_expected(path)}"]
    assert os.listdir(tmp_path) == []


def test_all_problems_of_a_file_are_listed(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[train]\ndepth = 12\nweight_decay = -1\n[space]\nlearning_rate = [1e-3, 0]\n',
        encoding="utf-8",
    )
    assert main(["check", str(bad)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"{bad}: train.depth: must be 9n+2 (11, 20, 29, …, 56), got 12",
        f"{bad}: train.weight_decay: must be >= 0.0, got -1",
        f"{bad}: space.learning_rate[1]: must be > 0.0, got 0",
    ]


def test_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'nope.toml'}: no such file"


def test_bad_flag_is_one_line_and_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check", "x.toml", "--jsn"])
    assert exit_.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
