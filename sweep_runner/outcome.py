"""How an attempt ended, as the child writes it and the worker reads it.

The child writes it as JSON beside the run's checkpoints; a child that dies first
writes none, and the worker makes one from its exit status (`worker.death_outcome`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

#: `completed`, `diverged`, `stopped` (the trainer's), `pruned` or `failed` (the runner's).
OutcomeStatus = Literal["completed", "diverged", "stopped", "pruned", "failed"]
#: Why a failure will not be retried (`input`: another attempt would fail alike), stops
#: the worker (`disk_full`), or is no failure of the run (`lost_claim`: another worker
#: took it over and records its outcome).
FailureKind = Literal["input", "disk_full", "lost_claim"]


class Outcome(BaseModel):
    """An attempt's end.

    Args:
        status: how it ended (`RunState.of_outcome` maps it to the run's state).
        failure_reason: why it did not complete, one line; None when it did.
        failure_kind: a failure's kind, when it is one the worker treats apart.
        versions: Keras, backend and device versions of the child that trained it.
        seconds: how long the child trained.
        runs_trained: the runs its one training recorded (a group's, `sweep_runner.groups`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: OutcomeStatus
    failure_reason: str | None = None
    failure_kind: FailureKind | None = None
    versions: dict[str, str] | None = None
    seconds: float | None = None
    runs_trained: int | None = None

    @classmethod
    def failed(cls, reason: str, kind: FailureKind | None = None) -> Outcome:
        """A failure, with its one-line reason."""
        return cls(status="failed", failure_reason=reason, failure_kind=kind)
