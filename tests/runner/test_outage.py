"""A database that goes away is waited for, with one line, up to the outage limit; a
lock or a bug is not an outage."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import OperationalError

from results.store.engine import DatabaseUnreachable
from sweep_runner import outage as outage_module
from sweep_runner.outage import DatabaseAway, Outage, is_outage

REFUSED = OperationalError("SELECT 1", {}, Exception("connection refused"))
LOCKED = OperationalError("UPDATE runs", {}, Exception("database is locked"))


@pytest.mark.timeout(30)
def test_an_outage_is_waited_for_with_one_line(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(outage_module, "FIRST_DELAY", 0.01)
    failures = [REFUSED, REFUSED, REFUSED]

    def call() -> str:
        if failures:
            raise failures.pop()
        return "written"

    waiting = Outage(60, "worker w")
    assert waiting.reachable_for() == float("inf")  # no outage seen: nothing to wait out
    with caplog.at_level(logging.WARNING, logger="sweep_runner.outage"):
        assert waiting.call(call) == "written"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "unreachable" in lines[0] and "back after" in lines[1]
    assert waiting.reachable_for() < 5  # takeovers wait a grace period from now


@pytest.mark.timeout(30)
def test_past_the_limit_the_worker_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outage_module, "FIRST_DELAY", 0.01)

    def refused() -> None:
        raise REFUSED

    with pytest.raises(DatabaseAway, match="more than 0.1 s"):
        Outage(0.1, "worker w").call(refused)


def test_a_lock_or_a_bug_is_no_outage() -> None:
    assert is_outage(REFUSED) and is_outage(DatabaseUnreachable("--storage x: refuses connections"))
    assert not is_outage(LOCKED) and not is_outage(KeyError("bug"))
    with pytest.raises(KeyError):
        Outage(60, "w").call(lambda: {}["missing"])
