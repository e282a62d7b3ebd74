"""A database that went away (a restart, a fail-over, the network) is waited for.

Workers and their children keep training through an outage of up to the outage limit
(`lifecycle.Timing.outage_limit`, 5 minutes by default): one log line says the
database is away, calls are retried with back-off, and one line says when it is back.
Past the limit a worker stops training and leaves its claim to expire. The commands a
person runs (`sweep run`, `status`, …) do not wait: they fail at once (see
`check_reachable`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from results.store import DatabaseUnreachable, is_locked

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: The first and the longest wait between two tries while the database is away.
FIRST_DELAY = 0.5
MAX_DELAY = 10.0


class DatabaseAway(Exception):
    """The database stayed unreachable past the outage limit."""


def is_outage(error: BaseException) -> bool:
    """Whether an error says the database cannot be reached (refused, reset, shut
    down), as opposed to a lock (retried by the store) or a bug (raised)."""
    from optuna.exceptions import StorageInternalError

    if isinstance(error, DatabaseUnreachable):
        return True
    if isinstance(error, StorageInternalError):
        cause = error.__cause__ or error.__context__
        return cause is None or is_outage(cause)
    if isinstance(error, OperationalError):
        return not is_locked(error)
    return isinstance(error, InterfaceError) or (isinstance(error, DBAPIError) and error.connection_invalidated)


class Outage:
    """One process's view of its database: reachable, or away since when.

    Args:
        limit: seconds to wait for a database that is away.
        what: who waits, for the log lines (`worker host/pid`, `run 3A`).
    """

    def __init__(self, limit: float, what: str) -> None:
        self.limit = limit
        self.what = what
        self.away_since: float | None = None
        # Reachable "for ever" until an outage is seen: a process that finds the
        # database at once has no outage to wait out.
        self.reachable_since = float("-inf")
        self._delay = FIRST_DELAY

    def failed(self, error: BaseException) -> None:
        """Notes a call that failed because the database is away (logged once per outage)."""
        if self.away_since is None:
            self.away_since = time.monotonic()
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            log.warning("%s: the database is unreachable (%s); waiting up to %g s for it",
                        self.what, reason, self.limit)

    def reached(self) -> None:
        """Notes a call that reached the database."""
        if self.away_since is not None:
            log.warning("%s: the database is back after %.0f s", self.what, time.monotonic() - self.away_since)
            self.away_since = None
            self.reachable_since = time.monotonic()
            self._delay = FIRST_DELAY

    @property
    def past_limit(self) -> bool:
        """Whether the database has been away longer than the limit."""
        return self.away_since is not None and time.monotonic() - self.away_since > self.limit

    def reachable_for(self) -> float:
        """Seconds since the database was last found reachable again (0 while away)."""
        return 0.0 if self.away_since is not None else time.monotonic() - self.reachable_since

    def pause(self) -> None:
        """Sleeps before the next try, longer each time (up to `MAX_DELAY`).

        Raises:
            DatabaseAway: the outage has lasted past the limit.
        """
        if self.past_limit:
            raise DatabaseAway(f"{self.what}: the database stayed unreachable for more than {self.limit:g} s")
        time.sleep(self._delay)
        self._delay = min(MAX_DELAY, self._delay * 2)

    def call(self, function: Callable[[], _T]) -> _T:
        """`function()`, retried with back-off while the database is away.

        Raises:
            DatabaseAway: it stayed away past the limit.
        """
        while True:
            try:
                result = function()
            except Exception as error:
                if not is_outage(error):
                    raise
                self.failed(error)
                self.pause()
                continue
            self.reached()
            return result


__all__ = ["DatabaseAway", "Outage", "is_outage"]
