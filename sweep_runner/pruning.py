"""Pruning that knows the schedule: no judgement while the learning rate is still high.

The post's runs swing in val_loss by 4–12 while the LR is high and still end best, so
a pruner that judges them early kills the winners. Off by default.
"""

from __future__ import annotations

from typing import Any

import optuna

from sweeps.sections import Study


def pruner_settings(study: Study) -> dict[str, Any] | None:
    """The JSON form a child gets of the `[study]` section's pruning; None when it is off."""
    if study.pruner == "none":
        return None
    return {
        "name": study.pruner, "prune_after_lr_below": study.prune_after_lr_below,
        "prune_after_trials": study.prune_after_trials,
    }


def make_pruner(settings: dict[str, Any] | None) -> optuna.pruners.BasePruner:
    """Optuna's pruner for the settings: median, hyperband, patient (median with patience)."""
    if settings is None:
        return optuna.pruners.NopPruner()
    name, startup = settings["name"], settings["prune_after_trials"]
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "patient":
        return optuna.pruners.PatientPruner(optuna.pruners.MedianPruner(n_startup_trials=startup), patience=3)
    raise ValueError(f"unknown pruner {name!r}")


def should_judge(settings: dict[str, Any] | None, lr: float, learning_rate: float) -> bool:
    """True once the LR has fallen below `prune_after_lr_below`·α."""
    return settings is not None and lr < settings["prune_after_lr_below"] * learning_rate
