"""A run's life in one place: its states and transitions, and when a run is stale,
claimable, unfinished or interrupted, with the epochs it has left.

The store's SQL, the worker, the live progress of `sweep run`, `sweep status`, the ETA
and the report all ask here, so that they never disagree about a run.

Time: whether a heartbeat is old is decided by the database server's clock, never a
worker's (`server_now`, `older_than`), so that a machine whose clock is off by minutes
neither steals runs nor loses its own. On SQLite every worker shares one machine and
one clock, so the rule holds there by construction; SQLite's own `julianday('now')`
is used all the same.

Fencing: each claim increments the run's `attempts`; that number is the claim's token.
A write for a run (`holds`) is conditional on the run still being "running" at that
attempt: a writer whose run was taken over (or put back) writes nothing.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ColumnElement, and_, func, literal, or_, type_coerce

from results.store.liveness import is_dead_local
from results.store.models import FINAL_STATES, RUNS, RunState, UTCDateTime
from sweeps.errors import InputError

#: Seconds between a worker's heartbeats.
HEARTBEAT_INTERVAL = 5.0
#: Seconds without a heartbeat after which a run's worker is presumed dead and its run
#: may be taken over; also how long a database must have been reachable again after an
#: outage before any run is taken over, so that the holders beat first.
GRACE_PERIOD = 20.0
#: Seconds a worker waits for a database that went away (a restart, a fail-over, the
#: network) before it stops training and leaves its claim to expire.
OUTAGE_LIMIT = 300.0

#: The environment variables that set the three (seconds), for clusters and tests.
TIMING_ENV = {
    "heartbeat_interval": "SWEEP_HEARTBEAT_INTERVAL",
    "grace_period": "SWEEP_GRACE_PERIOD",
    "outage_limit": "SWEEP_OUTAGE_LIMIT",
}

#: Which state may follow which. A running run goes back to running when another
#: worker takes it over (a new attempt); failed and stopped runs are claimed again
#: (failed ones while they have retries, or after `sweep retry` puts them back as
#: stopped). Final states are never left.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.WAITING: frozenset({RunState.RUNNING}),
    RunState.RUNNING: frozenset({
        RunState.RUNNING, RunState.COMPLETE, RunState.DIVERGED, RunState.PRUNED,
        RunState.FAILED, RunState.STOPPED,
    }),
    RunState.FAILED: frozenset({RunState.RUNNING, RunState.STOPPED}),
    RunState.STOPPED: frozenset({RunState.RUNNING, RunState.STOPPED}),
    RunState.COMPLETE: frozenset(),
    RunState.DIVERGED: frozenset(),
    RunState.PRUNED: frozenset(),
}
#: States whose claim does not spend a retry: not started yet, or stopped on purpose
#: (Ctrl-C, a pre-empted job, a worker that died and was released).
FREE_CLAIM_STATES = (RunState.WAITING, RunState.STOPPED)
#: The start of the failure reason of a run whose input is wrong: never retried.
INPUT_ERROR = "input error: "


class Timing(BaseModel):
    """The lifecycle's clocks, in seconds.

    Args:
        heartbeat_interval: between a worker's heartbeats.
        grace_period: silence after which a run is taken over; also the time a
            database must have been reachable again before any takeover.
        outage_limit: how long a worker waits for an unreachable database.
    """

    model_config = ConfigDict(frozen=True)

    heartbeat_interval: float = Field(HEARTBEAT_INTERVAL, gt=0)
    grace_period: float = Field(GRACE_PERIOD, gt=0)
    outage_limit: float = Field(OUTAGE_LIMIT, ge=0)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Timing:
        """The defaults, overridden by `SWEEP_HEARTBEAT_INTERVAL`, `SWEEP_GRACE_PERIOD`
        and `SWEEP_OUTAGE_LIMIT`.

        Raises:
            InputError: a value that is not a number of seconds, or a grace period not
                above twice the heartbeat interval.
        """
        environ = dict(os.environ if environ is None else environ)
        given = {field: environ[name] for field, name in TIMING_ENV.items() if environ.get(name)}
        try:
            timing = cls(**given)  # type: ignore[arg-type]
        except ValidationError as error:
            problem = error.errors()[0]
            name = TIMING_ENV[str(problem["loc"][0])]
            raise InputError(f"${name}={environ[name]!r}: {problem['msg']} (seconds)") from None
        if timing.grace_period <= 2 * timing.heartbeat_interval:
            raise InputError(
                f"${TIMING_ENV['grace_period']}={timing.grace_period:g}: must be above twice "
                f"${TIMING_ENV['heartbeat_interval']} ({timing.heartbeat_interval:g} s), or a "
                "live worker's run is taken over between two beats"
            )
        return timing


def may_follow(before: str, after: str) -> bool:
    """Whether a run may go from state `before` to `after`."""
    return RunState(after) in TRANSITIONS[RunState(before)]


def is_final(state: str) -> bool:
    """Complete, diverged or pruned: never trained again."""
    return state in FINAL_STATES


def is_unfinished(state: str) -> bool:
    """Not final: the study is not done while such a run is left (a failed run too:
    it needs a retry, or `sweep retry`). The one rule behind every ETA and count."""
    return not is_final(state)


def age_seconds(moment: Any, now: datetime) -> float:
    """Seconds from a timestamp (naive ones are UTC) to `now`, the database's time;
    inf for none."""
    if moment is None or moment != moment:  # None, NaT
        return float("inf")
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if hasattr(moment, "to_pydatetime"):
        moment = moment.to_pydatetime()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (now - moment).total_seconds()


def is_stale(run: dict[str, Any], now: datetime, grace_period: float = GRACE_PERIOD) -> bool:
    """A "running" run whose worker is gone: silent for `grace_period` seconds by the
    database's clock (`now`), or a process of this machine that no longer exists."""
    return run["state"] == RunState.RUNNING and (
        age_seconds(run["heartbeat_at"], now) > grace_period or is_dead_local(run["worker"])
    )


#: A stale run as `sweep status` and the report show it: it trains no more.
is_interrupted = is_stale


def shown_state(run: dict[str, Any], now: datetime, grace_period: float = GRACE_PERIOD) -> str:
    """The run's state for a person: "interrupted" for a stale "running" run."""
    return "interrupted" if is_stale(run, now, grace_period) else str(run["state"])


def is_retryable(run: dict[str, Any], max_attempts: int) -> bool:
    """Whether a failed run may be claimed again: retries left, and not an input error
    (another attempt would fail alike)."""
    return run["attempts"] < max_attempts and not (run.get("failure_reason") or "").startswith(INPUT_ERROR)


def is_claimable(
    run: dict[str, Any], now: datetime, max_attempts: int, *, grace_period: float = GRACE_PERIOD,
    takeovers: bool = True,
) -> bool:
    """Whether a worker may claim the run now (the store's claim decides for good).

    Args:
        run: the run's row.
        now: the database's time.
        max_attempts: the study's retries plus one.
        grace_period: the heartbeat silence after which a running run is taken over.
        takeovers: whether stale runs may be taken over now (not until the database
            has been reachable for a whole grace period after an outage).
    """
    state = run["state"]
    if is_final(state):
        return False
    if state == RunState.RUNNING:
        return takeovers and is_stale(run, now, grace_period) and run["attempts"] < max_attempts
    if state == RunState.FAILED:
        return is_retryable(run, max_attempts)
    return True


def epochs_left(run: dict[str, Any], last_epoch: int | None) -> int:
    """A run's planned epochs after its last stored one; 0 for a final run.

    Args:
        run: the run's row (its `config` holds the planned `epochs`).
        last_epoch: its last stored epoch, None for none.
    """
    if is_final(run["state"]):
        return 0
    planned = (run.get("config") or {}).get("epochs")
    done = int(last_epoch or 0)
    if not isinstance(planned, (int, float)):
        return 0
    return max(0, int(planned) - done)


# -- in SQL, by the database's clock ---------------------------------------------


def server_now(dialect: str) -> ColumnElement[datetime]:
    """The database server's time as the statement runs, read back as an aware UTC
    datetime: PostgreSQL's `clock_timestamp()`, SQLite's `now` to the millisecond."""
    if dialect == "postgresql":
        expression: ColumnElement[Any] = func.clock_timestamp()
    else:
        expression = func.strftime("%Y-%m-%d %H:%M:%f", "now")
    return type_coerce(expression, UTCDateTime())


def older_than(column: Any, seconds: float, dialect: str) -> ColumnElement[bool]:
    """`column` is more than `seconds` before the database server's time."""
    if dialect == "postgresql":
        return column < func.clock_timestamp() - func.make_interval(0, 0, 0, 0, 0, 0, literal(float(seconds)))
    return func.julianday(column) < func.julianday("now") - literal(float(seconds) / 86400.0)


def claimable_where(
    *, worker: str, stale_after: float, max_attempts: int, dialect: str
) -> ColumnElement[bool]:
    """The SQL form of `is_claimable` for one claiming worker: not final; retries left
    unless waiting or stopped; and not running, or running with a heartbeat older than
    `stale_after` by the database's clock, or running for this very worker (a
    restarted worker takes its own run back)."""
    return and_(
        RUNS.c.state.not_in(FINAL_STATES),
        or_(RUNS.c.state.in_(FREE_CLAIM_STATES), RUNS.c.attempts < max_attempts),
        or_(
            RUNS.c.state != RunState.RUNNING,
            RUNS.c.heartbeat_at.is_(None),
            older_than(RUNS.c.heartbeat_at, stale_after, dialect),
            RUNS.c.worker == worker,
        ),
    )


def holds(run_id: int, attempt: int) -> ColumnElement[bool]:
    """The fence: the run is still "running" at the claim `attempt`."""
    return and_(RUNS.c.id == run_id, RUNS.c.attempts == attempt, RUNS.c.state == RunState.RUNNING)


def unclaimed_since(attempt_seen: int | None) -> list[ColumnElement[bool]]:
    """No claim came since the caller read the run at `attempt_seen` attempts (every
    claim counts one more), as a list of conditions; none for None."""
    return [] if attempt_seen is None else [RUNS.c.attempts == attempt_seen]


def stale_where(stale_after: float, dialect: str) -> ColumnElement[bool]:
    """A running run with a heartbeat older than `stale_after` by the database's clock."""
    return and_(RUNS.c.state == RunState.RUNNING, older_than(RUNS.c.heartbeat_at, stale_after, dialect))


__all__ = [
    "FREE_CLAIM_STATES", "GRACE_PERIOD", "HEARTBEAT_INTERVAL", "INPUT_ERROR", "OUTAGE_LIMIT",
    "TIMING_ENV", "TRANSITIONS", "Timing", "age_seconds", "claimable_where", "epochs_left",
    "holds", "is_claimable", "is_final", "is_interrupted", "is_retryable", "is_stale",
    "is_unfinished", "may_follow", "older_than", "server_now", "shown_state", "stale_where", "unclaimed_since",
]
