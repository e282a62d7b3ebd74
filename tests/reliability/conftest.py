"""Fixtures of the reliability tests: a small study written through the store's API,
the files of a folder as bytes, and running `sweep` as a user who may not write."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from results.store import ResultStore
from sweep_runner.cli import main

ROOT = Path(__file__).resolve().parents[2]
# The reliability matrix drives `sweep` as a user would (tests/runner/sweeping.py).
sys.path.insert(0, str(ROOT / "tests" / "runner"))


def record(epoch: int, val_acc: float) -> dict[str, float]:
    return {
        "epoch": epoch, "loss": 1.0 / epoch, "acc": val_acc + 0.05, "val_loss": 1.2 / epoch,
        "val_acc": val_acc, "lr": 8e-4, "seconds": 1.0, "images_per_second": 1000.0,
    }


def write_study(url: str, study: str = "s", labels: tuple[str, ...] = ("1", "2"), comment: str = "") -> None:
    """A study of finished runs with two epochs each, written as the workers write them."""
    from sweeps.config import RunConfig

    with ResultStore(url) as store:
        for i, label in enumerate(labels):
            config = RunConfig(dataset="digits", depth=11, epochs=2, weight_decay=0.1 * (i + 1))
            run_id = store.register_run(
                study, config.run_key, label=label, comment=comment, config=config.model_dump(mode="json")
            )
            for epoch in (1, 2):
                store.record_epoch(run_id, record(epoch, 0.5 + 0.1 * epoch))
            store.finish_run(run_id, "complete")


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder`: a file's SHA-256, a link's target, `dir` for a folder."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            found[key] = "dir"
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[key] = "special"
    return found


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


def run_without_override(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`sweep ARGS` in a process that file permissions bind.

    Root writes whatever the permissions say; as root the command runs without the
    capabilities that let it (`setpriv`), so that a read-only file or folder is one.
    """
    command = [sys.executable, "-m", "sweep_runner", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop write permission")
        command = [
            "setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--inh-caps=-all", *command
        ]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
