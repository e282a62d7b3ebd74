"""Trial processes started ahead: the next run's child imports while the current one trains.

A child spends about 5.5 s importing TensorFlow before it trains. Started once the
previous run's child has imported (`Worker` decides when), it has imported by the
time its run is claimed, and then only waits for its `ChildSpec` on stdin: the start
is hidden, and each run still gets a fresh process (Keras' graphs and the
accelerator's memory are freed after every run).

A child that never gets a run exits as soon as its stdin closes or a signal reaches
it (Ctrl-C, SIGTERM), and dies with its worker (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import tempfile
from typing import IO

from sweep_runner.child import ChildSpec
from sweep_runner.phases import STARTING, write_phase

log = logging.getLogger(__name__)

#: How long a child that is told to stop may take before it is killed: one whose
#: imports are in native code sees its signal only when they return.
STOP_SECONDS = 10.0


class Child:
    """One child process, and what it printed before it was handed a run.

    Args:
        process: the `python -m sweep_runner.child` process, its stdin a pipe.
        early: the file its stdout and stderr go to until it writes to its run's log.
    """

    def __init__(self, process: subprocess.Popen, early: IO[bytes], ready: int | None = None) -> None:
        self.process = process
        self.early = early
        self._ready = ready  # the pipe it writes a byte to once imported; None after

    def wait_imported(self, timeout: float) -> bool:
        """Whether the child has imported (or died: nothing more to wait for), waiting
        up to `timeout` seconds."""
        if self._ready is not None:
            readable, _, _ = select.select([self._ready], [], [], timeout)
            if readable:
                os.read(self._ready, 1)  # b"1", or b"" when it died first
                self._close_ready()
        return self._ready is None

    def _close_ready(self) -> None:
        if self._ready is not None:
            os.close(self._ready)
            self._ready = None

    def hand(self, spec: ChildSpec) -> None:
        """Gives the child its run. A child that died first is seen by its exit status."""
        assert self.process.stdin is not None
        write_phase(spec.checkpoint_dir, STARTING)  # not an earlier attempt's last phase
        try:
            self.process.stdin.write(spec.to_json().encode("utf-8") + b"\n")
            self.process.stdin.close()
        except OSError:  # BrokenPipeError: it died while it waited
            log.warning("child %d died before it was handed its run", self.process.pid)

    def wait(self, log_file: IO[bytes]) -> int:
        """Waits for the child; appends to `log_file` what it printed before it switched
        to its run's log (everything, when it died before), and returns its status."""
        returncode = self.process.wait()
        self._close_ready()
        self.early.seek(0)
        log_file.write(self.early.read())
        log_file.flush()
        self.early.close()
        return returncode

    def stop(self) -> None:
        """Ends a child that has no run: EOF on stdin, SIGTERM, then SIGKILL if need be."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass  # already gone: the pipe's reader closed first
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("child %d did not stop within %g s: killed", self.process.pid, STOP_SECONDS)
                self.process.kill()
                self.process.wait()
        self._close_ready()
        self.early.close()


def start_child() -> Child:
    """A new child: it imports Keras and the trainer, then reads its run from stdin."""
    early = tempfile.TemporaryFile()  # nameless: nothing is left behind by a kill -9
    ready, ready_end = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sweep_runner.child", "--parent-pid", str(os.getpid()),
             "--ready-fd", str(ready_end)],
            stdin=subprocess.PIPE, stdout=early, stderr=subprocess.STDOUT, pass_fds=(ready_end,),
        )
    except BaseException:
        os.close(ready)
        raise
    finally:
        os.close(ready_end)  # the child's end: EOF here once it exits
    return Child(process, early, ready)


class Children:
    """Hands out one child per run, the next one started ahead when `ahead`.

    Args:
        ahead: start the next run's child while the current run trains (costs one idle
            process with TensorFlow imported, a few hundred MB).
    """

    def __init__(self, ahead: bool = True) -> None:
        self.ahead = ahead
        self.spare: Child | None = None

    def take(self) -> Child:
        """The child started ahead if it is alive, else a new one."""
        spare, self.spare = self.spare, None
        if spare is not None and spare.process.poll() is None:
            log.info("run handed to child %d, started ahead", spare.process.pid)
            return spare
        if spare is not None:
            spare.early.seek(0)
            printed = spare.early.read().decode("utf-8", "replace").strip().splitlines()
            log.warning(
                "the child started ahead exited with status %s before its run%s",
                spare.process.returncode, f": {printed[-1]}" if printed else "",
            )
            spare.stop()
        return start_child()

    def prepare(self) -> None:
        """Starts the next run's child now, if started ahead and none is waiting."""
        if self.ahead and self.spare is None:
            self.spare = start_child()
            log.info("child %d started ahead for the next run", self.spare.process.pid)

    def signal_spare(self) -> None:
        """The worker stops taking runs (Ctrl-C, SIGTERM): the spare has none to wait for.
        Safe in a signal handler: it only sends a signal."""
        spare = self.spare
        if spare is not None and spare.process.poll() is None:
            spare.process.terminate()

    def close(self) -> None:
        """Stops the child started ahead, if any: the worker takes no more runs."""
        spare, self.spare = self.spare, None
        if spare is not None:
            log.info("child %d, started ahead, got no run", spare.process.pid)
            spare.stop()
