"""Heartbeats between workers: a worker whose run was taken from it kills its child,
and a run whose worker on another host fell silent is taken over after the grace
period by a worker that joins the study with `sweep worker`."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import psutil
import pytest

from sqlalchemy import update

from results.store.models import RUNS
from results.store.result_store import ResultStore
from sweep_runner.storage import GRACE_PERIOD, HEARTBEAT_INTERVAL
from testkit.sweeping import kill, run, start, wait_for, write_sweep


@pytest.mark.long
@pytest.mark.timeout(300)
def test_a_worker_that_lost_its_run_kills_the_child(tmp_path: Path) -> None:
    # Twenty epochs: the run could not end by itself before the next heartbeat.
    sweep = write_sweep(tmp_path, "lost", epochs=20, space="weight_decay = [0.1]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start(["run", str(sweep), "--storage", url], tmp_path)
    try:
        wait_for(process, lambda e: e["event"] == "epoch" and e["epoch"] == 1)
        with ResultStore(url) as store:
            (mine,) = store.runs("lost")
            children = [p for p in psutil.Process(process.pid).children(recursive=True)
                        if "sweep_runner.child" in p.cmdline()]
            # The one training this run (a child started ahead for the next run would
            # not name it).
            training = [p for p in children if mine["run_key"] in " ".join(p.cmdline())] or children
            assert len(training) == 1, [p.cmdline() for p in children]
            # Another worker claims the run, as if this one had been presumed dead.
            assert store.claim_run(mine["id"], worker="elsewhere/1/thief", host="elsewhere",
                                   stale_after=0.0, max_attempts=5)
        _gone, alive = psutil.wait_procs(training, timeout=HEARTBEAT_INTERVAL + 20)
        assert alive == [], "the child trained on after its worker lost the run"
        assert process.poll() is None  # the worker lives on: only the child was stopped
        with ResultStore(url) as store:
            (after,) = store.runs("lost")
            epochs = [e["epoch"] for e in store.epochs(after["id"])]
    finally:
        kill(process)
    # The run stays the other worker's: no outcome was recorded over its claim.
    assert (after["state"], after["worker"]) == ("running", "elsewhere/1/thief")
    assert len(epochs) < 20


@pytest.mark.long
@pytest.mark.timeout(300)
def test_a_joining_worker_takes_over_a_silent_hosts_run_after_the_grace_period(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "joined", epochs=2, space="weight_decay = [0.1]", train_size=256)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    created = run(["run", str(sweep), "--storage", url, "--max-trials", "0"], tmp_path)
    assert created.returncode == 0, created.stderr
    with ResultStore(url) as store:
        (silent,) = store.runs("joined")
        # Within the grace period a run is nobody else's: another host's fresh claim holds.
        assert store.claim_run(silent["id"], worker="far-away/4242/gone", host="far-away",
                               stale_after=0.0, max_attempts=5)
        assert not store.claim_run(silent["id"], worker="here/1/x", host="here",
                                   stale_after=float(GRACE_PERIOD), max_attempts=5)
        # Then that worker fell silent a minute ago (by the database's clock, which
        # decides): its last heartbeat set back rather than waited for.
        with store.engine.begin() as connection:
            connection.execute(update(RUNS).where(RUNS.c.id == silent["id"]).values(
                heartbeat_at=store.now() - timedelta(seconds=60)))
        before = store.get_run(silent["id"])

    joined = run(["worker", "joined", "--storage", url, "--log-format", "plain"], tmp_path)
    assert joined.returncode == 0, joined.stderr
    with ResultStore(url) as store:
        taken = store.get_run(silent["id"])
        rows = [(e["epoch"], e["trainings"]) for e in store.epochs(silent["id"])]
    assert taken["state"] == "complete" and taken["attempts"] == before["attempts"] + 1
    assert taken["host"] == socket.gethostname() and taken["worker"] != before["worker"]
    assert rows == [(1, 1), (2, 1)]
