"""The heartbeat thread retries a passing database error, logging it, and stops the
child on any other: a worker that cannot beat must not train on unseen."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from sweep_runner import worker as worker_module


class _Store:
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors, self.beats = errors, 0

    def heartbeat(self, run_id: int, worker: str, attempt: int | None = None) -> bool:
        self.beats += 1
        if self.errors:
            raise self.errors.pop(0)
        return True


def _beat(monkeypatch, errors: list[BaseException]) -> tuple[worker_module._Heartbeat, _Store, subprocess.Popen]:  # noqa: ANN001
    store = _Store(errors)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    fake = SimpleNamespace(
        opened=SimpleNamespace(store=store, trials=SimpleNamespace(heartbeat=lambda trial_id: None)),
        id="host/1/x", child=child,
        timing=SimpleNamespace(heartbeat_interval=0.01), outage=worker_module.Outage(300.0, "worker host/1/x"),
    )
    return worker_module._Heartbeat(fake, 1, 1, 1), store, child


@pytest.mark.timeout(60)
def test_a_passing_database_error_is_logged_and_retried(monkeypatch, caplog) -> None:  # noqa: ANN001
    beat, store, child = _beat(monkeypatch, [OperationalError("UPDATE runs", {}, Exception("database is locked"))])
    with caplog.at_level(logging.WARNING, logger="sweep_runner.worker"):
        beat.start()
        while store.beats < 3:
            time.sleep(0.01)
        beat.stop()
    assert not beat.lost and child.poll() is None
    assert "heartbeat failed, retrying" in caplog.text and "database is locked" in caplog.text
    child.kill()
    child.wait()


@pytest.mark.timeout(60)
def test_an_unexpected_error_stops_the_child(monkeypatch, caplog) -> None:  # noqa: ANN001
    beat, store, child = _beat(monkeypatch, [KeyError("surprise")])
    monkeypatch.setattr("threading.excepthook", lambda args: None)  # the re-raise, already logged
    with caplog.at_level(logging.ERROR, logger="sweep_runner.worker"):
        beat.start()
        assert child.wait(30) != 0
        beat.stop()
    assert beat.lost
    assert "heartbeat stopped" in caplog.text and "surprise" in caplog.text


@pytest.mark.timeout(60)
def test_a_claim_beats_before_its_trial_is_open(monkeypatch) -> None:  # noqa: ANN001
    """The worker starts beating at the claim: opening the trial can take seconds."""
    beat, store, child = _beat(monkeypatch, [])
    trial_beats: list[int] = []
    beat.worker.opened.trials = SimpleNamespace(heartbeat=trial_beats.append)
    beat.trial_id = None
    beat.start()
    try:
        while store.beats < 3:
            time.sleep(0.01)
        assert trial_beats == []  # no trial yet: the run's claim beats alone
        beat.trial_id = 7
        while not trial_beats:
            time.sleep(0.01)
    finally:
        beat.stop()
        child.kill()
        child.wait()
    assert set(trial_beats) == {7} and not beat.lost


@pytest.mark.timeout(60)
def test_a_trial_that_cannot_open_for_a_refused_connection_is_waited_for(monkeypatch) -> None:  # noqa: ANN001
    """A server at its connection limit while a claimed run's trial opens: the worker
    waits (its claim beating), instead of giving the claim up to expire and spending
    an attempt; a bug still fails the run at once."""
    from sweep_runner import outage as outage_module

    monkeypatch.setattr(outage_module, "FIRST_DELAY", 0.01)
    refusals = [OperationalError("connect", {}, Exception("FATAL: sorry, too many clients already"))] * 2
    finished: list[tuple[int, str]] = []

    def open_trial(row: dict) -> tuple[int, dict]:
        if refusals:
            raise refusals.pop()
        return 40 + row["id"], row

    fake = SimpleNamespace(
        outage=worker_module.Outage(60.0, "worker w"), _open_trial=open_trial,
        opened=SimpleNamespace(store=SimpleNamespace(
            finish_run=lambda run_id, state, failure_reason, attempt: finished.append((run_id, failure_reason)))),
    )
    beats = [SimpleNamespace(trial_id=None), SimpleNamespace(trial_id=None)]
    claims = [({"id": 1, "label": "1"}, 3), ({"id": 2, "label": "2"}, 5)]
    opened = worker_module.Worker._open_trials(fake, claims, beats)
    assert [(row["id"], trial, token) for row, trial, token in opened] == [(1, 41, 3), (2, 42, 5)]
    assert [beat.trial_id for beat in beats] == [41, 42] and not finished and not refusals

    def broken(row: dict) -> tuple[int, dict]:
        raise KeyError("a bug")

    fake._open_trial = broken
    assert worker_module.Worker._open_trials(fake, claims, beats) is None
    assert [run_id for run_id, _ in finished] == [1, 2] and "could not start" in finished[0][1]
