"""When a study will be done: one rule for `sweep run`'s progress and `sweep status`.

The work left is each unfinished run's epochs left at its own mean seconds per epoch
(the study's mean for a run with no epoch timed yet), and the runs training now share
it. Both the live progress and `status` read the same stored epochs, so the two show
the same ETA for the same study.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple


class RunWork(NamedTuple):
    """One run's part in the ETA.

    Args:
        epochs_left: its planned epochs less those stored (0 for a finished run).
        seconds: the sum of its stored epochs' seconds.
        timed: how many stored epochs that sum covers.
    """

    epochs_left: int
    seconds: float = 0.0
    timed: int = 0


def timed_epochs(seconds: Iterable[float | None]) -> tuple[float, int]:
    """The sum and count of a run's epoch times, leaving out any that is missing or not finite."""
    kept = [float(s) for s in seconds if s is not None and math.isfinite(float(s))]
    return sum(kept), len(kept)


def study_seconds_per_epoch(runs: Sequence[RunWork]) -> float | None:
    """The mean seconds per epoch over every run's timed epochs; None when none is timed."""
    timed = sum(run.timed for run in runs)
    return sum(run.seconds for run in runs) / timed if timed else None


def run_seconds_per_epoch(run: RunWork, study_mean: float | None) -> float | None:
    """A run's own mean seconds per epoch, or the study's while it has none timed."""
    return run.seconds / run.timed if run.timed else study_mean


def run_seconds_left(run: RunWork, study_mean: float | None) -> float | None:
    """A run's epochs left at its own mean seconds per epoch, or the study's."""
    if not run.epochs_left:
        return 0.0
    mean = run_seconds_per_epoch(run, study_mean)
    return None if mean is None else run.epochs_left * mean


def eta_seconds(runs: Sequence[RunWork], running: int) -> float | None:
    """Seconds until every run is done; None while no epoch is timed or nothing runs.

    Args:
        runs: every run of the study, finished ones included (their epochs time the
            runs that have none yet).
        running: how many runs are training now.
    """
    if not any(run.epochs_left for run in runs):
        return 0.0
    study_mean = study_seconds_per_epoch(runs)
    if study_mean is None or running < 1:
        return None
    left = [run_seconds_left(run, study_mean) for run in runs]
    return sum(s for s in left if s is not None) / running


def format_duration(seconds: float | None) -> str:
    """`3h 05m`, `12m 40s`, `45s`; empty when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
