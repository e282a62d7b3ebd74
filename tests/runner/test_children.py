"""A child started ahead of its run stops when nobody will hand it one: its worker
ends, Ctrl-C or SIGTERM reach it, or its worker is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sweep_runner.children import Children
from trainer.interrupts import EXIT_INTERRUPTED


def _catches(pid: int, signum: int) -> bool:
    """Whether the process has its own handler for `signum` (it reached `main`).

    Read from /proc: psutil does not report a process's caught signals."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def _until(predicate, seconds: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["worker ends", "ctrl-c", "sigterm"])
def test_an_unused_child_exits_cleanly(how: str) -> None:
    children = Children(ahead=True)
    children.prepare()
    spare = children.spare
    assert spare is not None
    _until(lambda: _catches(spare.process.pid, signal.SIGTERM))
    if how == "worker ends":
        children.close()
    else:
        spare.process.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)
        spare.process.wait(30)
    # Its own handler ended it (no SIGKILL from close()'s fallback, no traceback).
    assert spare.process.returncode in (0, EXIT_INTERRUPTED)
    if how != "worker ends":
        children.close()  # a spare that died is just dropped


@pytest.mark.timeout(120)
def test_an_unused_child_dies_with_its_killed_worker() -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", (
            "import time\nfrom sweep_runner.children import Children\n"
            "c = Children()\nc.prepare()\nprint(c.spare.process.pid, flush=True)\ntime.sleep(120)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )
    assert worker.stdout is not None
    pid = int(worker.stdout.readline())
    _until(lambda: _catches(pid, signal.SIGTERM))  # PR_SET_PDEATHSIG is set by then
    worker.kill()
    worker.wait()
    _until(lambda: _gone(pid), seconds=10)


@pytest.mark.timeout(60)
def test_a_child_that_ends_skips_the_teardown_but_keeps_what_it_printed(tmp_path: Path) -> None:
    """`exit_now` leaves out TensorFlow's slow teardown, not the output still buffered,
    and passes the status on."""
    log = tmp_path / "train.log"
    code = (
        "import sys\n"
        f"sys.stdout = open({str(log)!r}, 'w', buffering=1 << 16)\n"
        "import atexit; atexit.register(lambda: print('teardown ran'))\n"
        "from sweep_runner.child import exit_now\n"
        "print('the last line of the run', end='')\n"
        "exit_now(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50)
    assert done.returncode == 3, done.stderr
    assert log.read_text() == "the last line of the run"  # flushed; no atexit handler ran
