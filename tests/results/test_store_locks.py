"""A process that opens the same SQLite database twice keeps seeing other processes'
writes: checking the storage URL must not drop SQLite's locks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from results.store.result_store import ResultStore
from sweeps.config import RunConfig


@pytest.mark.timeout(120)
def test_a_second_store_in_one_process_does_not_freeze_the_first(sqlite_url: str) -> None:
    config = RunConfig(dataset="digits", depth=11, epochs=1)
    first = ResultStore(sqlite_url)
    run_id = first.register_run("s", config.run_key, label="1", comment=None, config=config.model_dump(mode="json"))
    assert first.get_run(run_id)["state"] == "waiting"
    # `sweep run`'s front process: its study's store is open when it opens another one.
    second = ResultStore(sqlite_url)
    claim = (
        "from results.store.result_store import ResultStore;"
        f"assert ResultStore({sqlite_url!r}).claim_run({run_id}, worker='w', host='h', stale_after=60, max_attempts=3)"
    )
    subprocess.run([sys.executable, "-c", claim], check=True)
    # Before the fix the header check's open()/close() of the database file dropped
    # every POSIX lock of this process, and both stores read "waiting" for ever.
    assert first.get_run(run_id)["state"] == "running"
    assert second.get_run(run_id)["state"] == "running"
    first.close()
    second.close()
