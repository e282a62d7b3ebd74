"""A closed stdout (`sweep run | head`) stops the printing, not the command.

Python ignores SIGPIPE, so a write to a pipe whose reader has gone raises
BrokenPipeError wherever the command happens to print: in the middle of a sweep that
would stop the front process and with it the workers. Here the printing stops instead,
stdout is pointed at /dev/null (so that the interpreter's last flush is quiet too), and
the command carries on: the workers still train, the database and the runs' logs get
everything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class StopPrintingWhenClosed:
    """Wraps a text stream; once its reader has gone, writes are dropped.

    Args:
        stream: the stream (stdout).
        note: a line for stderr when the reader goes, or None.
    """

    def __init__(self, stream: TextIO, note: str | None = None) -> None:
        self._stream = stream
        self._note = note
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _gone(self) -> None:
        self.reader_gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # not a file descriptor (a test's capture): the writes are dropped here anyway
        if self._note:
            try:
                sys.stderr.write(f"{self._note}\n")
                sys.stderr.flush()
            except OSError:
                pass  # stderr is gone too: nothing left to tell


@contextmanager
def closed_stdout_stops_printing(note: str | None = None) -> Iterator[StopPrintingWhenClosed]:
    """`sys.stdout` wrapped for the duration: printing stops when its reader goes.

    Args:
        note: a line for stderr when that happens, e.g. that training goes on.
    """
    original = sys.stdout
    wrapped = StopPrintingWhenClosed(original, note)
    sys.stdout = wrapped  # type: ignore[assignment]
    try:
        yield wrapped
    finally:
        sys.stdout = original
