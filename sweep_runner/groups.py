"""Runs that share one training: same training key, different measurement-only settings.

Training does not depend on m (with `ema_overwrite_frequency` unset), `evaluate_ema`
or `bn_subset_size` (`RunConfig.training_key` leaves them out), so an m sweep would
train identical models. A worker that claims such a run also claims its siblings
that have not started (no epoch stored) and hands the whole group to one child, which
trains once, keeps one average per m and records each run's epochs under its own row
and Optuna trial (`trainer.train`'s `members`).

The group is the lead run's: its checkpoint folder (named by its run key, as any run's)
holds the group's checkpoints, and `group.json` there lists the members' run keys in
order, so that an interrupted group resumes as one: whoever claims the lead again
claims the members it can; one it cannot claim keeps its average in the group (the
checkpoint has it) without being recorded. The members' run keys and folders are
those they would have alone. A value of m added after its group started trains anew.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from results.store import FINAL_STATES, RunState
from sweeps.config import RunConfig

log = logging.getLogger(__name__)

GROUP_FILE = "group.json"


def training_key(run: dict[str, Any]) -> str | None:
    """The run's training key; None for a search slot not yet sampled."""
    return RunConfig.model_validate(run["config"]).training_key if run["config"] else None


def recorded_members(directory: Path) -> list[str] | None:
    """The run keys of the group whose lead's folder this is, else None."""
    try:
        return list(json.loads((directory / GROUP_FILE).read_text(encoding="utf-8"))["members"])
    except FileNotFoundError:
        return None


def claim_group(
    store: Any, study: str, lead: dict[str, Any], directory: Path, claim: Callable[[dict[str, Any]], int | None]
) -> list[tuple[dict[str, Any], int | None]]:
    """The members of `lead`'s training, each with this worker's claim on it (the
    attempt, the claim's token), or None where it did not claim it.

    A group recorded in `directory` is claimed again as it was; otherwise, for a lead
    that has not started, every not-started sibling with its training key that
    `claim` takes joins, and the group is recorded.

    Args:
        store: the results store.
        study: the study's name.
        lead: the run this worker claimed.
        directory: the lead's checkpoint folder.
        claim: claims one run for this worker (the store's conditional UPDATE).
    """
    key = training_key(lead)
    if key is None:
        return []
    recorded = recorded_members(directory)
    if recorded is not None:
        ids = [store.run_id(study, run_key) for run_key in recorded]
        if None in ids:  # another database's folder: moved aside before training
            return []
        rows = [store.get_run(run_id) for run_id in ids]
        return [(row, claim(row) if row["state"] not in FINAL_STATES else None) for row in rows]
    if store.epochs(lead["id"]) or (directory / "checkpoint.npz").exists():
        return []  # it trained alone so far: it goes on alone
    siblings = [
        row for row in store.runs(study)
        if row["id"] != lead["id"] and row["state"] not in FINAL_STATES and row["state"] != RunState.RUNNING
        and row["config"] and training_key(row) == key and not store.epochs(row["id"])
    ]
    members = [(row, token) for row in siblings if (token := claim(row))]
    if members:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / GROUP_FILE).write_text(
            json.dumps({"members": [row["run_key"] for row, _ in members]}), encoding="utf-8"
        )
        log.info("run %s trains for %d more runs of the same training", lead["label"], len(members))
    return members
