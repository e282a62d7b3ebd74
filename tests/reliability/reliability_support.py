"""Helpers of the reliability tests: a small study written through the store's API,
the entries of a folder, and running `sweep` as a user whom permissions bind."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from results.store.result_store import ResultStore

ROOT = Path(__file__).resolve().parents[2]


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
