"""`sweep check FILE`: validate a sweep file and show the runs it stands for."""

from __future__ import annotations

import json
import sys

from rich.table import Table

from sweeps.notation import SYMBOLS, format_number, format_value
from sweeps.sweep_file import Sweep, Trial, load_sweep
from sweeps.terminal import console as make_console

# Always shown, in the post's order; other settings only when they vary.
_SHOWN = ("weight_decay", "learning_rate", "ema_momentum", "schedule", "epochs")


def check_command(path: str, *, as_json: bool = False) -> int:
    """Validates `path`; prints its trials as a table, or as JSON lines."""
    sweep = load_sweep(path)
    trials = sweep.trials()
    if as_json:
        for trial in trials:
            sys.stdout.write(json.dumps(trial_json(trial), ensure_ascii=False) + "\n")
        return 0
    console = make_console(width=None if sys.stdout.isatty() else 200)
    if sweep.search is not None:
        console.print(search_table(sweep))
        console.print(f"{sweep.name}: a {sweep.search.sampler} search of {sweep.search.n_trials} trials")
        return 0
    console.print(trials_table(sweep, trials))
    console.print(f"{sweep.name}: {len(trials)} trial{'s' * (len(trials) != 1)}")
    return 0


def trial_json(trial: Trial) -> dict:
    return {
        "number": trial.number,
        "label": trial.label,
        "comment": trial.comment,
        "run_key": trial.run_key,
        "config": trial.config.model_dump(mode="json"),
    }


def varying_settings(trials: list[Trial]) -> list[str]:
    """Settings other than the always-shown ones whose values differ between trials."""
    dumps = [t.config.model_dump(mode="json") for t in trials]
    return [
        key for key in dumps[0]
        if key not in _SHOWN and len({json.dumps(d[key]) for d in dumps}) > 1
    ] if dumps else []


def trials_table(sweep: Sweep, trials: list[Trial]) -> Table:
    varying = varying_settings(trials)
    table = Table(title=sweep.name, caption=sweep.description or None)
    symbols = (SYMBOLS[key] for key in _SHOWN[:3])
    for header in ("#", "label", *symbols, "schedule", "epochs", *varying, "run key", "comment"):
        table.add_column(header, overflow="fold")
    for trial in trials:
        config = trial.config
        table.add_row(
            str(trial.number), trial.label,
            format_number(config.weight_decay), format_number(config.learning_rate),
            format_number(config.ema_momentum), config.schedule_notation(), str(config.epochs),
            *(format_value(getattr(config, key)) for key in varying),
            trial.run_key, trial.comment or "",
        )
    return table


def search_table(sweep: Sweep) -> Table:
    assert sweep.search is not None
    table = Table(title=f"{sweep.name}: searched quantities")
    for header in ("key", "range or choices", "log"):
        table.add_column(header)
    for key, choice in sweep.search.space.items():
        shown = (
            ", ".join(map(str, choice.choices)) if choice.choices is not None
            else f"{format_number(choice.low)} … {format_number(choice.high)}"
        )
        table.add_row(SYMBOLS.get(key, key), shown, "yes" if choice.log else "")
    return table
