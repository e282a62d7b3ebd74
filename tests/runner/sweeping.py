"""Driving the `sweep` command as a user would: a real process, real signals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

SWEEP = [sys.executable, "-m", "sweep_runner"]

# Small enough for a test, slow enough (about a second an epoch) to be killed mid-run.
TINY_TRAIN = """
dataset = "digits"
depth = 11
batch_size = 64
train_size = 512
validation_size = 128
flip = false
ema_momentum = 0.9
schedule = {{ breakpoints = "[1, 1][0.1, {epochs}]", relative = true }}
"""


def write_sweep(
    folder: Path, name: str, *, epochs: int = 5, space: str = "weight_decay = [0.05, 0.2]",
    extra: str = "",
) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\n[train]\n{TINY_TRAIN.format(epochs=epochs)}\n{extra}\n[space]\n{space}\n',
        encoding="utf-8",
    )
    return path


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """The command in a process group of its own, as a terminal would start it."""
    return subprocess.Popen(
        [*SWEEP, *args, "--log-format", "jsonl"], cwd=cwd, env=env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*SWEEP, *args], cwd=cwd, env=env(), capture_output=True, text=True)


def wait_for(process: subprocess.Popen, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Reads the JSON-lines log until an event matches; fails if the sweep ends first."""
    assert process.stdout is not None
    for line in process.stdout:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if predicate(event):
            return event
    raise AssertionError(f"the sweep ended (status {process.wait()}) before the event: {process.stderr.read()}")


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()
