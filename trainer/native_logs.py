"""TensorFlow's own log lines (absl's "All log messages before absl::InitializeLog()",
oneDNN's notice, CUDA's registrations) kept out of a command's output.

They are written by C++ straight to file descriptor 2, before and after
`TF_CPP_MIN_LOG_LEVEL` is read (absl's early messages ignore it), so they are caught
at the descriptor: fd 2 points at a log file while TensorFlow works, and Python's
`sys.stderr` keeps writing to the terminal (our messages, tracebacks). A worker's
trial child needs none of this: its fd 2 is already the run's log.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

#: TensorFlow's C++ log level: warnings and errors only (its INFO lines are noise).
QUIET_LEVEL = "1"


def quiet_tensorflow_env() -> None:
    """Sets `TF_CPP_MIN_LOG_LEVEL` unless the user chose one; call before TensorFlow
    is imported (it reads it once)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LEVEL)


def _stderr_is_fd2() -> bool:
    try:
        return sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False  # a test's capture, not the descriptor


@contextmanager
def native_logs_to(log: BinaryIO) -> Iterator[None]:
    """Inside: whatever is written to fd 2 goes to `log`; `sys.stderr` still reaches
    the terminal.

    Args:
        log: an open binary file (the run's log, or a nameless temporary file).
    """
    quiet_tensorflow_env()
    previous = sys.stderr
    previous.flush()
    saved = os.dup(2)
    swapped = _stderr_is_fd2()
    if swapped:
        sys.stderr = io.TextIOWrapper(
            io.FileIO(saved, "w", closefd=False), encoding=previous.encoding,
            errors="backslashreplace", write_through=True,
        )
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = previous


@contextmanager
def native_logs_shown_on_failure() -> Iterator[None]:
    """`native_logs_to` a nameless file, whose lines are printed only if the block
    fails: a crash in TensorFlow still says why."""
    import tempfile

    with tempfile.TemporaryFile() as log:
        try:
            with native_logs_to(log):
                yield
        except Exception:  # not Ctrl-C: that one is quiet
            log.seek(0)
            sys.stderr.write(log.read().decode("utf-8", "replace"))
            raise
