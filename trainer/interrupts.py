"""Ctrl-C in two stages: the first stops after the current epoch, the second at once.

One handler for `sweep train` and for the runner's processes (the runner imports it
from here: the trainer never imports the runner). A terminal's Ctrl-C reaches every
process of the foreground group, and the runner also forwards it to its own children
(for a `kill -INT` aimed at the runner alone): presses that arrive within `DEBOUNCE`
seconds of each other count as one.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

DEBOUNCE = 0.5
EXIT_INTERRUPTED = 130


class Interrupts:
    """Counts Ctrl-C presses (SIGINT; SIGTERM counts as a first press, as a pre-emption).

    Args:
        on_first: called at the first press (e.g. forward it to a child).
        on_second: called at the second press; by default the process exits with 130.
    """

    def __init__(
        self,
        on_first: Callable[[], None] | None = None,
        on_second: Callable[[], None] | None = None,
    ) -> None:
        self.presses = 0
        self._last = -DEBOUNCE
        self.on_first = on_first
        self.on_second = on_second
        self._previous: dict[int, object] = {}

    @property
    def stopping(self) -> bool:
        return self.presses >= 1

    def install(self) -> None:
        """Handles SIGINT and SIGTERM from now on (main thread only, as Python requires)."""
        self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)
        self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handle_term)

    def uninstall(self) -> None:
        """Puts back the handlers `install` replaced."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle_term(self, _signum: int, _frame: object) -> None:
        if self.presses == 0:
            self._handle(_signum, _frame)

    def _handle(self, _signum: int, _frame: object) -> None:
        now = time.monotonic()
        if now - self._last < DEBOUNCE:
            return
        self._last = now
        self.presses += 1
        if self.presses == 1:
            if self.on_first:
                self.on_first()
        elif self.on_second:
            self.on_second()
        else:
            os._exit(EXIT_INTERRUPTED)
