"""The sections of a sweep file besides `[train]`, `[space]` and `[[runs]]`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sweeps.limits import MAX_TRIALS, SEED_LIMIT

Sampler = Literal["tpe", "random", "gp", "cmaes", "qmc"]
Pruner = Literal["none", "median", "hyperband", "patient"]
Objective = Literal["val_acc", "threshold_epoch"]


class Range(BaseModel):
    """A searched quantity: a range `{low, high, log}` or `{choices = [...]}`.

    Args:
        low, high: the bounds, inclusive.
        log: sample on a log scale (needs low > 0).
        step: a grid step for a range (integers or floats).
        choices: a list of values instead of a range.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    choices: list[Any] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Range:
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (and optionally log = true), or choices = [...]")
        if self.low >= self.high:
            raise ValueError(f"low must be < high, got low = {self.low:g}, high = {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"log = true needs low > 0, got {self.low:g}")
        return self


class Search(BaseModel):
    """`[search]`: an Optuna sampler instead of a grid.

    Args:
        sampler: `tpe` (with constant_liar across workers), `random`, `gp`, `cmaes`, `qmc`.
        n_trials: trials in total, across all workers.
        seed: the sampler's seed.
        space: a range or choices per swept quantity.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    sampler: Sampler = "tpe"
    n_trials: int = Field(ge=1, le=MAX_TRIALS)
    seed: int | None = Field(default=None, ge=0, lt=SEED_LIMIT)
    space: dict[str, Range] = Field(default_factory=dict, validate_default=True)

    @field_validator("space")
    @classmethod
    def _not_empty(cls, space: dict[str, Range]) -> dict[str, Range]:
        if not space:
            raise ValueError(
                "no ranges: give [search.space] a range {low, high, log} or {choices = [...]} "
                "for at least one key, e.g. weight_decay = {low = 0.05, high = 0.3, log = true}"
            )
        return space


class Report(BaseModel):
    """`[report]`: how the tables read the runs.

    Args:
        threshold: the val_acc threshold of the tables' `epoch` column (the post: 0.92).
        thresholds: the thresholds whose epochs the raw table lists.
        swing_start: the start-up epochs the swings (`val_loss_swing`, `val_acc_dip`)
            skip; their window begins at the epoch after (the post's noise starts near
            epoch 10).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    threshold: float = Field(default=0.92, gt=0, le=1)
    thresholds: list[float] = Field(default_factory=lambda: [0.92, 0.93], min_length=1)
    swing_start: int = Field(default=5, ge=0)


class Study(BaseModel):
    """`[study]`: how the study is run.

    Args:
        max_retries: how often a failed or interrupted run is handed out again.
        objectives: `["val_acc"]` (maximise the best val_acc), or with
            `"threshold_epoch"` too (minimise it) for a multi-objective study.
        pruner: `none` (default: the post's runs swing widely while the LR is high and
            still end best), `median`, `hyperband` or `patient`.
        prune_after_lr_below: no pruning while the LR is above this fraction of α.
        prune_after_trials: no pruning until this many runs have finished (`median`
            and `patient` judge a run against theirs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_retries: int = Field(default=2, ge=0)
    objectives: list[Objective] = Field(default_factory=lambda: ["val_acc"], min_length=1)
    pruner: Pruner = "none"
    prune_after_lr_below: float = Field(default=0.1, gt=0, le=1)
    prune_after_trials: int = Field(default=2, ge=1)

    @field_validator("objectives")
    @classmethod
    def _val_acc_first(cls, objectives: list[str]) -> list[str]:
        if objectives[0] != "val_acc" or len(set(objectives)) != len(objectives):
            raise ValueError(
                f"must be ['val_acc'] or ['val_acc', 'threshold_epoch'], got {objectives}"
            )
        return objectives
