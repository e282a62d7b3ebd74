"""Progress of a running study, read from the database that its workers write.

Reading the store rather than listening to the workers shows the same picture for
one worker or many, on this machine or others.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from results.store import (
    ResultStore, RunState, RunWork, epochs_left, eta_seconds, format_duration, is_final, timed_epochs,
)
from sweep_runner.phases import read_phase
from sweeps.terminal import console as make_console


@dataclass
class _Seen:
    state: str = ""
    epoch: int = 0
    seconds: float = 0.0  # the sum of its stored epochs' seconds
    timed: int = 0
    phase: str = ""  # what its child said it does, before its next epoch is stored


@dataclass
class Monitor:
    """Polls the store and reports runs done/total, each current run's epoch and val_acc,
    the elapsed time and an ETA.

    Args:
        store: the results store.
        study: the study's name.
        log_format: `rich` (a live display), `plain` (a line per event) or `jsonl`.
        out: where to write.
        checkpoints: the folder of this machine's runs' checkpoint folders: their
            phase before each epoch is shown (`sweep_runner.phases`); None: not shown.
    """

    store: ResultStore
    study: str
    log_format: str = "rich"
    out: TextIO = field(default_factory=lambda: sys.stdout)
    started: float = field(default_factory=time.monotonic)
    checkpoints: Path | None = None
    _seen: dict[int, _Seen] = field(default_factory=dict)
    _runs: list[dict[str, Any]] = field(default_factory=list)
    _live: Live | None = None

    def __enter__(self) -> Monitor:
        if self.log_format == "rich":
            self._live = Live(console=make_console(file=self.out), refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.poll()
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def poll(self) -> None:
        runs = self._runs = self.store.runs(self.study)
        current: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for run in runs:
            seen = self._seen.setdefault(run["id"], _Seen(state=run["state"], epoch=-1))
            last = None
            if run["state"] == RunState.RUNNING or seen.state == RunState.RUNNING or seen.epoch == -1:
                rows = self.store.epochs(run["id"])
                last = rows[-1] if rows else None
                epoch = last["epoch"] if last else 0
                seen.seconds, seen.timed = timed_epochs(row["seconds"] for row in rows)
                if seen.epoch == -1:
                    seen.epoch = epoch  # epochs before this invocation are not news
                elif epoch > seen.epoch:
                    # Each epoch stored since the last poll is an event: a poll may
                    # come after two epochs of a fast run, and a log that skips one
                    # is not the run's log.
                    previous, seen.epoch = seen.epoch, epoch  # the ETA counts them done
                    for row in rows:
                        if row["epoch"] > previous:
                            self._event("epoch", run, row)
            if run["state"] != seen.state:
                seen.state = run["state"]
                self._event(run["state"], run, last)
            if run["state"] == RunState.RUNNING:
                current.append((run, last))
                self._phase(run, seen)
        if self._live is not None:
            self._live.update(self._render(runs, current))

    def _phase(self, run: dict[str, Any], seen: _Seen) -> None:
        """Reads the running run's phase; a change is an event in the plain and jsonl logs."""
        if self.checkpoints is None:
            return
        phase = read_phase(self.checkpoints / self.study / run["run_key"])
        if phase != seen.phase:
            seen.phase = phase
            # The log has a line per stored epoch already: only the start is news there.
            later_epoch = phase.startswith("epoch ") and not phase.endswith("(compiling)")
            if self.log_format != "rich" and not later_epoch:
                self._event("phase", run, None)

    def _event(self, kind: str, run: dict[str, Any], last: dict[str, Any] | None) -> None:
        if self.log_format == "rich":
            if kind != "epoch" and kind != RunState.RUNNING and self._live is not None:
                reason = f" ({run['failure_reason']})" if run.get("failure_reason") else ""
                self._live.console.print(f"run {run['label']}: {kind}{reason}")
            return
        epochs = run["config"].get("epochs") if run.get("config") else None
        record = {
            "event": kind, "study": self.study, "label": run["label"], "run_key": run["run_key"],
            "attempt": run["attempts"], "epochs": epochs,
            **({k: _finite(last[k]) for k in ("epoch", "loss", "acc", "val_loss", "val_acc", "lr")} if last else {}),
            **({"failure_reason": run["failure_reason"]} if run.get("failure_reason") else {}),
            **({"phase": self._seen[run["id"]].phase} if kind == "phase" else {}),
        }
        if self.log_format == "jsonl":
            self.out.write(json.dumps(record) + "\n")
        elif kind == "epoch":
            self.out.write(
                f"run {run['label']}: epoch {last['epoch']}/{epochs} "
                f"loss {_shown(last['loss'])} acc {_shown(last['acc'])} "
                f"val_loss {_shown(last['val_loss'])} val_acc {_shown(last['val_acc'])} "
                f"lr {_shown(last['lr'], '.3g')}{self._eta_text()}\n"
            )
        elif kind == "phase":
            self.out.write(f"run {run['label']}: {self._seen[run['id']].phase}{self._eta_text()}\n")
        else:
            reason = f" ({run['failure_reason']})" if run.get("failure_reason") else ""
            self.out.write(f"run {run['label']}: {kind}{reason}\n")
        self.out.flush()

    def _eta_text(self) -> str:
        """` · ETA 4m 10s` once an epoch is timed (from the first epoch on), else empty."""
        eta = self.eta_seconds(self._runs)
        return f" · ETA {format_duration(eta)}" if eta else ""

    def eta_seconds(self, runs: list[dict[str, Any]]) -> float | None:
        """The study's ETA by `results.store.eta`'s rule, the one `sweep status` shows."""
        work = []
        for run in runs:
            seen = self._seen.get(run["id"], _Seen())
            left = epochs_left(run, max(seen.epoch, 0))
            work.append(RunWork(left, seen.seconds, seen.timed))
        return eta_seconds(work, sum(run["state"] == RunState.RUNNING for run in runs))

    def _render(self, runs: list[dict[str, Any]], current: list) -> Group:
        done = sum(is_final(r["state"]) for r in runs)
        elapsed = time.monotonic() - self.started
        eta = self.eta_seconds(runs)
        head = Text(
            f"{self.study}: runs {done}/{len(runs)} done · elapsed {format_duration(elapsed)}"
            + (f" · ETA {format_duration(eta)}" if eta is not None else "")
            + (" · starting the workers" if not current and done < len(runs) else "")
        )
        table = Table(box=None, show_header=bool(current))
        for column in ("run", "attempt", "epoch", "val_acc", "lr", "now"):
            table.add_column(column)
        for run, last in current:
            epochs = run["config"].get("epochs", "?")
            table.add_row(
                run["label"], str(run["attempts"]),
                f"{last['epoch'] if last else 0}/{epochs}",
                _shown(last["val_acc"]) if last else "",
                _shown(last["lr"], ".3g") if last else "",
                self._seen[run["id"]].phase,
            )
        return Group(head, table)


def _shown(value: float | None, spec: str = ".4f") -> str:
    """A metric for a person: a diverged run's NaN (NULL in the store) as `nan`, inf as `inf`."""
    if value is None:
        return "nan"
    value = float(value)
    return f"{value:{spec}}" if math.isfinite(value) else str(value)


def _finite(value: float | int | None) -> float | int | None:
    """A metric for JSON, which has no NaN or inf: null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
