"""What the front process shows, whatever the numbers: a diverged run's NaN, None and
inf in every progress output, and a run under a dead worker as interrupted."""

from __future__ import annotations

import io
import json
import math
import socket
from pathlib import Path

import pytest
from rich.console import Console

from results.report.status import overview, study_status
from results.store.result_store import ResultStore
from sweep_runner.monitor import Monitor

CONFIG = {"epochs": 3, "learning_rate": 0.001, "weight_decay": 0.1, "ema_momentum": 0.99}
DIVERGED = {"epoch": 1, "loss": math.inf, "acc": 0.1, "val_loss": math.nan, "val_acc": math.nan,
            "lr": 0.001, "seconds": 1.0, "images_per_second": 100.0}


def _store(tmp_path: Path) -> tuple[ResultStore, int]:
    store = ResultStore(f"sqlite:///{tmp_path / 'sweeps.db'}")
    run_id = store.register_run("lr", "key-1", label="1", comment=None, config=CONFIG)
    return store, run_id


def _render(renderable) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(renderable)
    return out.getvalue()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("log_format", ["plain", "jsonl", "rich"])
def test_a_diverged_epoch_shows_in_every_progress_format(tmp_path: Path, log_format: str) -> None:
    store, run_id = _store(tmp_path)
    store.claim_run(run_id, worker=f"{socket.gethostname()}/1/x", host="h", stale_after=20, max_attempts=3)
    out = io.StringIO()  # not a terminal, as under Slurm, nohup or `| tee`
    with Monitor(store, "lr", log_format, out=out) as monitor:
        monitor.poll()
        store.record_epoch(run_id, DIVERGED)
        monitor.poll()
        store.finish_run(run_id, "diverged", failure_reason="diverged at epoch 1")
    text = out.getvalue()
    if log_format == "plain":
        # The ETA from the first epoch: two epochs left at its 1 s.
        assert "run 1: epoch 1/3 loss inf acc 0.1000 val_loss nan val_acc nan lr 0.001 · ETA 2s\n" in text
        assert "run 1: diverged (diverged at epoch 1)\n" in text
    elif log_format == "jsonl":
        events = [json.loads(line) for line in text.splitlines()]  # strict JSON: no NaN
        (epoch,) = [e for e in events if e["event"] == "epoch"]
        assert epoch["loss"] is None and epoch["val_acc"] is None and epoch["acc"] == 0.1
        assert events[-1]["event"] == "diverged"
    else:
        assert "run 1: diverged (diverged at epoch 1)" in text
    store.close()


@pytest.mark.timeout(60)
def test_the_log_has_every_epoch_when_a_poll_comes_after_several(tmp_path: Path) -> None:
    """A fast run stores two epochs between two polls: the log still has both, in order."""
    store, run_id = _store(tmp_path)
    store.claim_run(run_id, worker=f"{socket.gethostname()}/1/x", host="h", stale_after=20, max_attempts=3)
    out = io.StringIO()
    with Monitor(store, "lr", "jsonl", out=out) as monitor:
        monitor.poll()
        for epoch, val_acc in ((1, 0.25), (2, 0.5), (3, 0.75)):
            store.record_epoch(run_id, {**DIVERGED, "epoch": epoch, "loss": 1.0, "val_loss": 1.0,
                                        "val_acc": val_acc})
            if epoch != 2:  # epochs 2 and 3 land before one poll
                monitor.poll()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    epochs = [(e["epoch"], e["val_acc"]) for e in events if e["event"] == "epoch"]
    assert epochs == [(1, 0.25), (2, 0.5), (3, 0.75)]
    store.close()


@pytest.mark.timeout(60)
def test_status_takes_a_diverged_run(tmp_path: Path) -> None:
    store, run_id = _store(tmp_path)
    store.claim_run(run_id, worker="elsewhere/1/x", host="elsewhere", stale_after=20, max_attempts=3)
    store.record_epoch(run_id, DIVERGED)
    text = _render(study_status(store, "lr", threshold=0.92))
    assert "Running" in text and "1/3" in text  # the live worker's run, its epoch shown
    store.finish_run(run_id, "diverged", failure_reason="diverged at epoch 1")
    assert "diverged" in _render(study_status(store, "lr", threshold=0.92))
    assert "lr" in _render(overview(store))
    store.close()


@pytest.mark.timeout(60)
def test_a_run_under_a_dead_worker_shows_as_interrupted(tmp_path: Path) -> None:
    store, run_id = _store(tmp_path)
    dead = f"{socket.gethostname()}/{2**22 + 12345}/x"  # beyond pid_max: no such process
    store.claim_run(run_id, worker=dead, host=socket.gethostname(), stale_after=20, max_attempts=3)
    store.record_epoch(run_id, {**DIVERGED, "loss": 1.0, "val_loss": 1.0, "val_acc": 0.5})

    text = _render(study_status(store, "lr", threshold=0.92, storage="sqlite:///x.db"))
    assert "interrupted" in text and "Running" not in text
    assert "continue with `sweep resume lr --storage sqlite:///x.db`" in text
    table = _render(overview(store))
    assert "interrupted" in table and "running" not in table
    store.close()


@pytest.mark.timeout(60)
def test_the_front_sees_what_workers_write_after_it_opened_the_store_twice(tmp_path: Path) -> None:
    """`sweep run` opens the store twice (the study, then the monitor). Checking the
    file by hand the second time dropped SQLite's locks of the first: a worker's last
    connection deleted the WAL, and the monitor saw its runs "waiting" for ever."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    first, run_id = _store(tmp_path)
    monitor_store = ResultStore(url)
    assert monitor_store.runs("lr")[0]["state"] == "waiting"
    worker = (
        "from results.store.result_store import ResultStore; import sys; "
        "s = ResultStore(sys.argv[1]); s.finish_run(s.runs('lr')[0]['id'], 'failed', failure_reason='x')"
    )
    subprocess.run([sys.executable, "-c", worker, url], check=True)
    assert monitor_store.runs("lr")[0]["state"] == "failed"
    first.close()
    monitor_store.close()
