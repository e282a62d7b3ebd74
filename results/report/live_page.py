"""A running study's page, kept current: `sweep run --report PATH`.

The front process of `sweep run` polls the store twice a second; `LiveReport.poll`
asks it one cheap question (how many epochs, trained how often, and every run's state
and attempt) and rewrites the page only when the answer changed, at most every
`min_interval` seconds. Each write is atomic, and the page reloads itself while the
study runs; `finish` writes the last page, which stays put.

A page that cannot be written (a full disk, a folder removed, a folder or database
put in its place) or a database busy for a moment must not stop a sweep: the sweep goes on, the page is tried again at the
next change, and the first failure of each kind is logged.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from results.store.models import EPOCHS, RUNS
from results.report.page import write_report
from results.store.result_store import ResultStore

logger = logging.getLogger(__name__)



def progress(store: ResultStore, study: str) -> tuple[Any, ...]:
    """What changes when a study makes progress: its epochs (count, trainings) and
    every run's state and attempt. Two small queries."""
    if not store.has_tables:
        return ()
    with store.engine.connect() as connection:
        epochs = connection.execute(
            select(func.count(), func.coalesce(func.sum(EPOCHS.c.trainings), 0))
            .select_from(EPOCHS)
            .join(RUNS, EPOCHS.c.run_id == RUNS.c.id)
            .where(RUNS.c.study == study)
        ).one()
        runs = connection.execute(
            select(RUNS.c.id, RUNS.c.state, RUNS.c.attempts, RUNS.c.label)
            .where(RUNS.c.study == study)
            .order_by(RUNS.c.id)
        ).all()
    return (tuple(epochs), tuple(tuple(run) for run in runs))


class LiveReport:
    """Rewrites a study's page as its runs make progress.

    Args:
        store: an open store of the study's database.
        study: the study's name.
        path: the page (checked with `results.report.page.check_report_path`).
        min_interval: seconds between two writes at least: a fast study of many
            workers would otherwise rewrite the page on every poll.
        busy_factor: after a write, wait this many times as long as it took: a page
            of hundreds of runs takes seconds to build, and the front process must
            keep its progress display live (4: at most a fifth of its time).
    """

    def __init__(
        self, store: ResultStore, study: str, path: Path, *, min_interval: float = 2.0, busy_factor: float = 4.0
    ) -> None:
        self.store = store
        self.study = study
        self.path = path
        self.min_interval = min_interval
        self.busy_factor = busy_factor
        self.writes = 0
        self._seen: tuple[Any, ...] | None = None
        self._written_at = -math.inf
        self._pause = min_interval
        self._failures: set[str] = set()

    def poll(self) -> bool:
        """Rewrites the live page if the study changed since the last write.

        Returns:
            Whether the page was written.
        """
        if time.monotonic() - self._written_at < max(self.min_interval, self._pause):
            return False
        try:
            now = progress(self.store, self.study)
            if now == self._seen:
                return False
            self._write(live=True)
        except (OSError, OperationalError) as error:
            self._failed(error)
            return False
        self._seen = now
        return True

    def finish(self) -> bool:
        """Writes the final page, which no longer reloads itself.

        Returns:
            Whether it was written.
        """
        try:
            self._write(live=False)
        except (OSError, OperationalError) as error:
            self._failed(error)
            return False
        return True

    def _write(self, *, live: bool) -> None:
        self._written_at = time.monotonic()
        try:
            write_report(self.store, self.study, self.path, live=live)
        finally:
            self._pause = self.busy_factor * (time.monotonic() - self._written_at)
        self.writes += 1

    def _failed(self, error: Exception) -> None:
        # By kind, not by message: a message names the random temporary file.
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        kind = f"{type(error).__name__}: {reason}".splitlines()[0]
        if kind not in self._failures:
            self._failures.add(kind)
            logger.warning("--report %s: not written (%s); the sweep goes on", self.path, kind)
