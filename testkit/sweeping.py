"""Driving the `sweep` command as a user would: a real process, real signals."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testkit.tiny_sweeps import sweep_text

SWEEP = [sys.executable, "-m", "sweep_runner"]
# A subprocess that a test waits for: long enough for a loaded 2-core machine, short
# enough that a hang fails the test before pytest-timeout has to kill it.
RUN_TIMEOUT = 280.0


def write_sweep(
    folder: Path, name: str, *, epochs: int = 5, space: str = "weight_decay = [0.05, 0.2]",
    extra: str = "", train_size: int = 512,
) -> Path:
    """A tiny sweep file (testkit/tiny_sweeps.py): 512 digits images make about a second
    an epoch, slow enough to be killed mid-run; fewer where nothing is killed."""
    path = folder / f"{name}.toml"
    path.write_text(
        sweep_text(name, epochs=epochs, space=space, extra=extra, train_size=train_size),
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


def run(args: list[str], cwd: Path, *, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SWEEP, *args], cwd=cwd, env={**env(), **(extra_env or {})}, capture_output=True,
        text=True, timeout=RUN_TIMEOUT,
    )


def _lines(process: subprocess.Popen) -> queue.Queue:
    """The process' stdout lines, read by a thread (None at the end), so that a wait
    can give up."""
    lines = getattr(process, "_test_lines", None)
    if lines is None:
        lines = queue.Queue()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        process._test_lines = lines  # type: ignore[attr-defined]
    return lines


def wait_for(
    process: subprocess.Popen, predicate: Callable[[dict[str, Any]], bool], timeout: float = 180.0
) -> dict[str, Any]:
    """Reads the JSON-lines log until an event matches.

    Fails, with what it read, if the sweep ends first or no event matches within
    `timeout` seconds (then the sweep's process group is killed).
    """
    lines, seen = _lines(process), []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            raise AssertionError(
                f"the sweep ended (status {process.wait()}) before the event; "
                f"read: {seen[-10:]}; stderr: {process.stderr.read() if process.stderr else ''}"
            )
        seen.append(line.rstrip())
        if line.startswith("{") and predicate(event := json.loads(line)):
            return event
    kill(process)
    raise AssertionError(f"no such event within {timeout:.0f} s; read: {seen[-10:]}")


def kill(process: subprocess.Popen) -> None:
    """SIGKILL to the command's process group (its workers and children too)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def rest_of_stdout(process: subprocess.Popen) -> str:
    """What an ended process printed after the last event `wait_for` read."""
    lines, rest = _lines(process), []
    while (line := lines.get(timeout=30)) is not None:
        rest.append(line)
    return "".join(rest)


def crashing_children(folder: Path, when: str) -> dict[str, str]:
    """The environment of a sweep whose trial children segfault as they read their run
    when `when` holds: a Python expression of `run` (the run's parsed JSON line) and of
    `once()` (true for the first child to ask, across processes). Planted through
    sitecustomize, which every Python process imports at start-up; a child started
    ahead and never handed a run reads nothing, so it never crashes."""
    plant = folder / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(dedent(f"""
        import json, os, signal, sys

        def once():
            try:
                os.close(os.open({str(folder / "crashed-once")!r}, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return False
            return True

        class Stdin:
            def __init__(self, stream):
                self.stream = stream

            def readline(self):
                line = self.stream.readline()
                if line.strip():
                    run = json.loads(line)
                    if {when}:
                        os.kill(os.getpid(), signal.SIGSEGV)
                return line

        if "--parent-pid" in sys.argv:  # a trial's child (it reads its run from stdin)
            sys.stdin = Stdin(sys.stdin)
    """))
    return {"PYTHONPATH": f"{plant}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
