"""Fixtures of the reliability tests: a small study, and `sweep` run in this process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reliability_support import write_study
from sweep_runner.cli import main

# The reliability matrix drives `sweep` as a user would (testkit/sweeping.py).


@pytest.fixture
def study_db(tmp_path: Path) -> tuple[Path, str]:
    """`(folder, url)`: a study "s" of two complete runs in `folder/sweeps.db`."""
    folder = tmp_path / "work"
    folder.mkdir()
    url = f"sqlite:///{folder / 'sweeps.db'}"
    write_study(url)
    return folder, url


@pytest.fixture
def sweep(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """`sweep(*argv)`: the command in this process, in `tmp_path` (where the default
    storage would go), as `(exit status, stdout, stderr)`."""
    monkeypatch.chdir(tmp_path)

    def call(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse's own errors
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call
