"""The run lifecycle's rules (one module for the store, the worker, `status`, the ETA),
the database's clock, and writes fenced by the claim's attempt.

Runs on SQLite, and on PostgreSQL too when a server can be had.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from results.store import lifecycle
from results.store.lifecycle import Timing, epochs_left, is_claimable, is_stale, is_unfinished, may_follow
from results.store.models import RUNS, RunState
from results.store.result_store import LostClaim, ResultStore
from sweeps.errors import InputError

CONFIG = {"weight_decay": 0.1, "learning_rate": 8e-4, "epochs": 10}
NOW = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)


def _record(epoch: int, val_acc: float = 0.5) -> dict[str, float]:
    return {"epoch": epoch, "loss": 1.0, "acc": 0.5, "val_loss": 1.1, "val_acc": val_acc,
            "lr": 8e-4, "seconds": 10.0, "images_per_second": 5000.0}


def _run(state: str, *, beat_ago: float | None = None, attempts: int = 1, reason: str | None = None) -> dict:
    return {"state": state, "worker": "far-away/1/x", "attempts": attempts, "failure_reason": reason,
            "heartbeat_at": None if beat_ago is None else NOW - timedelta(seconds=beat_ago),
            "config": CONFIG}


def test_the_rules_of_a_runs_life() -> None:
    assert not may_follow("complete", "running") and may_follow("running", "running")
    assert may_follow("failed", "stopped") and not may_follow("waiting", "complete")
    # Stale only by the given (database) time and the grace period.
    assert not is_stale(_run("running", beat_ago=19), NOW, 20) and is_stale(_run("running", beat_ago=21), NOW, 20)
    assert not is_stale(_run("stopped", beat_ago=999), NOW, 20)
    # Claimable: not final; failed only with retries left and no input error; a stale
    # running run only when takeovers are allowed.
    assert is_claimable(_run("waiting"), NOW, 3) and not is_claimable(_run("complete"), NOW, 3)
    assert is_claimable(_run("failed", attempts=2), NOW, 3) and not is_claimable(_run("failed", attempts=3), NOW, 3)
    assert not is_claimable(_run("failed", reason="input error: no data"), NOW, 3)
    assert is_claimable(_run("running", beat_ago=60), NOW, 3)
    assert not is_claimable(_run("running", beat_ago=60), NOW, 3, takeovers=False)
    assert not is_claimable(_run("running", beat_ago=5), NOW, 3)
    # One rule for "unfinished" and the epochs left (status and the live ETA both use it).
    assert [is_unfinished(s) for s in ("failed", "stopped", "waiting", "running", "complete", "pruned")] == [
        True, True, True, True, False, False]
    assert epochs_left(_run("stopped"), 4) == 6 and epochs_left(_run("failed"), None) == 10
    assert epochs_left(_run("complete"), 4) == 0


def test_timing_is_settable_and_checked() -> None:
    timing = Timing.from_env({"SWEEP_GRACE_PERIOD": "3", "SWEEP_HEARTBEAT_INTERVAL": "0.5", "SWEEP_OUTAGE_LIMIT": "7"})
    assert (timing.grace_period, timing.heartbeat_interval, timing.outage_limit) == (3, 0.5, 7)
    assert Timing.from_env({}).grace_period == lifecycle.GRACE_PERIOD
    with pytest.raises(InputError, match=r"\$SWEEP_GRACE_PERIOD='soon'"):
        Timing.from_env({"SWEEP_GRACE_PERIOD": "soon"})
    with pytest.raises(InputError, match="above twice"):
        Timing.from_env({"SWEEP_GRACE_PERIOD": "4", "SWEEP_HEARTBEAT_INTERVAL": "3"})


def test_claims_and_heartbeats_use_the_databases_clock(store: ResultStore) -> None:
    run_id = store.register_run("s", "k", label="1", comment="", config=CONFIG)
    assert store.claim_run(run_id, worker="w1", host="h1", stale_after=20, max_attempts=3) == 1
    beat = store.get_run(run_id)["heartbeat_at"]
    assert abs((store.now() - beat).total_seconds()) < 5
    # A heartbeat 30 s old by the database's clock is stale, whatever this machine says.
    with store.engine.begin() as connection:
        connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(heartbeat_at=store.now() - timedelta(seconds=30)))
    assert not store.claim_run(run_id, worker="w2", host="h2", stale_after=40, max_attempts=3)
    assert store.claim_run(run_id, worker="w2", host="h2", stale_after=20, max_attempts=3) == 2
    # The first worker's heartbeat no longer holds, the second's does.
    assert not store.heartbeat(run_id, "w1", 1) and store.heartbeat(run_id, "w2", 2)
    assert not store.heartbeat(run_id, "w2", 1)


def test_a_takeover_decided_on_a_read_is_made_once(store: ResultStore) -> None:
    """Two workers read the same run under a dead worker (attempt 1) and both decide to
    take it over at once (`stale_after=0`): the first does, the second finds the run
    claimed since its read and leaves it, and nobody releases the new claim either."""
    run_id = store.register_run("s", "k", label="1", comment="", config=CONFIG)
    assert store.claim_run(run_id, worker="host/1/dead", host="host", stale_after=20, max_attempts=5) == 1
    seen = store.get_run(run_id)["attempts"]
    assert store.claim_run(run_id, worker="host/2/a", host="host", stale_after=0.0, max_attempts=5,
                           attempt_seen=seen) == 2
    assert store.claim_run(run_id, worker="host/3/b", host="host", stale_after=0.0, max_attempts=5,
                           attempt_seen=seen) is None
    assert not store.release_run(run_id, stale_after=0.0, reason="interrupted", attempt_seen=seen)
    assert store.holds(run_id, 2) and store.get_run(run_id)["worker"] == "host/2/a"
    # Read again, the run is the live worker's; a release on that read is allowed.
    assert store.release_run(run_id, stale_after=0.0, reason="interrupted", attempt_seen=2)


def test_writes_are_fenced_by_the_claims_attempt(store: ResultStore) -> None:
    run_id = store.register_run("s", "k", label="1", comment="", config=CONFIG)
    first = store.claim_run(run_id, worker="w1", host="h", stale_after=20, max_attempts=3)
    store.record_epoch(run_id, _record(1, 0.3), attempt=first)
    with store.engine.begin() as connection:
        connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(heartbeat_at=None))
    second = store.claim_run(run_id, worker="w2", host="h", stale_after=20, max_attempts=3)
    assert (first, second) == (1, 2)
    # The writer that lost the run writes nothing: no epoch row, no outcome, no file.
    with pytest.raises(LostClaim, match="attempt 1 no longer holds"):
        store.record_epoch(run_id, _record(2, 0.9), attempt=first)
    with pytest.raises(LostClaim):
        store.finish_run(run_id, "complete", attempt=first)
    with pytest.raises(LostClaim), store.fenced(run_id, first):
        pytest.fail("the block ran for a lost claim")
    assert not store.holds(run_id, first) and store.holds(run_id, second)
    assert [e["epoch"] for e in store.epochs(run_id)] == [1]
    assert store.get_run(run_id)["state"] == "running"
    # The holder writes; a write repeated by the same attempt (a retry after a lost
    # COMMIT) is not another training, the same epoch trained by a new attempt is.
    store.record_epoch(run_id, _record(1, 0.4), attempt=second)
    store.record_epoch(run_id, _record(1, 0.4), attempt=second)
    store.record_epoch(run_id, _record(2, 0.5), attempt=second)
    assert [(e["epoch"], e["val_acc"], e["trainings"]) for e in store.epochs(run_id)] == [(1, 0.4, 2), (2, 0.5, 1)]
    store.finish_run(run_id, "complete", attempt=second)
    # Once ended, even the last holder writes nothing more.
    with pytest.raises(LostClaim):
        store.record_epoch(run_id, _record(3), attempt=second)
    with pytest.raises(KeyError):
        store.finish_run(run_id + 99, "complete", attempt=1)


def test_a_takeover_waits_for_a_fenced_file_write(store: ResultStore, storage_url: str) -> None:
    """The fence holds the run's row while the file is written: a takeover commits
    after the write, never between the check and the write."""
    run_id = store.register_run("s", "k", label="1", comment="", config=CONFIG)
    attempt = store.claim_run(run_id, worker="w1", host="h", stale_after=20, max_attempts=3)
    with store.engine.begin() as connection:
        connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(heartbeat_at=None))
    taken: list[float] = []
    other = ResultStore(storage_url)

    def take_over() -> None:
        assert other.claim_run(run_id, worker="w2", host="h", stale_after=20, max_attempts=3) == 2
        taken.append(time.monotonic())

    with store.fenced(run_id, attempt):
        thread = threading.Thread(target=take_over)
        thread.start()
        time.sleep(1.0)
        written = time.monotonic()
    thread.join(60)
    other.close()
    assert taken and taken[0] >= written
    assert store.get_run(run_id)["attempts"] == 2 and store.get_run(run_id)["state"] == RunState.RUNNING
