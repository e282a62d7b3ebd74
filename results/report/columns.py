"""The results' column names, agreed once.

Every table, export, the report, `results.load()` and the README's glossary read
their column names from here: a name (snake_case, ASCII, the same in the terminal,
CSV, JSON, the report and pandas), the post's header where the post has the column
(`--style post`), what the column means, and how it is written for reading.

The naming rule, for the columns to come as well:

- a per-epoch quantity keeps its per-epoch name (`val_acc`, `val_acc_ema`, `test_acc`,
  `val_loss`, `weight_norm`);
- a run's value of it is that name and the epoch it is taken at: `_best` (the highest
  accuracy), `_min` (the lowest loss), `_final` (the last epoch that has one),
  `_at_threshold`, `_at_best` (at `epoch_best`);
- an epoch is `epoch_` and what it is the epoch of (`epoch_best`, `epoch_best_ema`,
  `epoch_level`), except the post's own term `threshold_epoch`.

`python -m results.report.columns` prints the glossary as the README has it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from results.report.metrics import THRESHOLD_TOLERANCE
from sweeps.notation import SYMBOLS, format_number

#: How a column is written for reading (terminal, Markdown, HTML, LaTeX); CSV and JSON
#: keep full precision whatever the format.
FORMATS = ("text", "integer", "flag", "accuracy", "accuracy4", "loss", "setting", "number")


@dataclass(frozen=True)
class Column:
    """One column of the results.

    Args:
        name: the name everywhere: snake_case ASCII.
        description: what it holds, one sentence for the glossary and the report's tooltips.
        format: how it is written for reading, one of `FORMATS`.
        post: the post's header (`--style post`), where the post has the column.
    """

    name: str
    description: str
    format: str = "number"
    post: str | None = None

    def text(self, value: Any) -> str:
        """A value as the tables show it; empty when missing."""
        return format_value(self.format, value)


def format_value(format: str, value: Any) -> str:
    """A value in one of `FORMATS`; empty when missing (NaN, None, NA)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if format == "text":
        return str(value)
    if format == "flag":
        return str(bool(value))
    number = float(value)
    if not math.isfinite(number):
        return str(number)
    if format == "integer":
        return str(int(number))
    if format == "accuracy":
        return f"{number:.5f}"
    if format == "accuracy4":
        return f"{number:.4f}"
    if format == "loss":
        return f"{number:.4e}" if 0 < abs(number) < 1e-3 else f"{number:.4f}"
    if format == "setting":
        return format_number(number)
    return f"{number:.6g}"


#: A run's metrics, in the raw table's order.
METRICS = (
    Column(
        "threshold", "the val_acc threshold of `threshold_epoch` (`[report] threshold`, `--threshold`)", "number"
    ),
    Column(
        "threshold_epoch",
        f"the first epoch whose val_acc is at least the threshold (within {THRESHOLD_TOLERANCE:g}); "
        "empty when the run never reached it",
        "integer",
        "epoch",
    ),
    Column("threshold_reached", "whether the run reached the threshold", "flag"),
    Column(
        "val_acc_at_threshold", "val_acc at `threshold_epoch`; empty when the run never reached it", "accuracy",
        "acc_val",
    ),
    Column(
        "acc_at_threshold", "the training accuracy at `threshold_epoch`; empty when the run never reached it",
        "accuracy4", "acc",
    ),
    Column(
        "val_acc_level",
        "the threshold, or for a run below it the highest 0.01 level its val_acc reached "
        "(the post's `(0.91)` rows)",
        "number",
    ),
    Column("epoch_level", "the first epoch at `val_acc_level` (the post's `(47)`)", "integer"),
    Column("epoch_best", "the epoch of `val_acc_best` (the first, on a tie)", "integer", "epo best"),
    Column("val_acc_best", "the highest val_acc of the run", "accuracy", "val acc best"),
    Column("loss_min", "the lowest training loss of the run", "loss", "final loss"),
    Column("val_loss_min", "the lowest val_loss of the run", "loss", "final val loss"),
    Column(
        "threshold_epoch_<t>",
        "`threshold_epoch` for each threshold of `[report] thresholds` (`threshold_epoch_0_92`, …)",
        "integer",
    ),
    Column(
        "delta_val_loss",
        "Δval_loss, the fluctuation amplitude: the largest swing of val_loss above its downward trend "
        "while the LR is above a tenth of α",
    ),
    Column("val_loss_range", "max − min of val_loss from its first local minimum to the end of that window"),
    Column("epoch_best_ema", "the epoch of `val_acc_ema_best`", "integer"),
    Column("val_acc_ema_best", "the highest val_acc with the EMA weights", "accuracy"),
    Column("weight_norm_final", "`weight_norm` at the last epoch that has one"),
    Column("epochs_done", "epochs recorded", "integer"),
    Column("last_epoch", "the last recorded epoch", "integer"),
    Column(
        "val_loss_swing",
        "val_loss's swings above and below its isotonic trend after the start-up epochs "
        "(`[report] swing_start`, `--swing-start`, default 5): a smooth monotone curve gives 0",
        "loss",
    ),
    Column("val_acc_dip", "the same amplitude for val_acc: how deep it dips below its trend", "accuracy"),
    Column("val_acc_bn_best", "the highest BatchNorm-true val_acc (`val_acc_bn`)", "accuracy"),
    Column(
        "val_acc_ema_bn_best",
        "the highest BatchNorm-true val_acc with the EMA weights (`val_acc_ema_bn`): what an m sweep compares",
        "accuracy",
    ),
    Column(
        "test_acc_at_best", "test_acc at `epoch_best`, for runs with a test split beside the validation",
        "accuracy",
    ),
    Column(
        "epoch_equilibrium",
        "the first epoch whose `weight_norm_invariant` is within 10 % of `weight_norm_equilibrium`",
        "integer",
    ),
)

#: Who and where a run is, before its metrics.
IDENTITY = (
    Column("study", "the study's name", "text"),
    Column("label", "the run's label (`[[runs]] label`, or a grid point's values)", "text", "#"),
    Column("trial_number", "the Optuna trial of the run's latest attempt", "integer"),
    Column("run_key", "the hash of the run's configuration: the same settings, the same key", "text"),
    Column("run_id", "the run's row in the results tables", "integer"),
    Column("state", "waiting, running, complete, pruned, failed or stopped", "text"),
    Column("attempts", "how often the run was started", "integer"),
)

#: What a run cost, after its metrics.
TIMING = (
    Column("duration", "seconds from the run's first claim to its end", "number"),
    Column("train_seconds", "the seconds of its epochs, summed", "number"),
)

#: The run's record after its metrics, before its settings.
RECORD = (
    Column("comment", "the run's comment (`[[runs]] comment`)", "text", "comment"),
    Column("failure_reason", "why a failed run failed", "text"),
    Column("worker", "the worker that trains or trained it", "text"),
    Column("host", "that worker's machine", "text"),
    Column("heartbeat_at", "the worker's last heartbeat (UTC)", "text"),
    Column("slurm_job", "the Slurm job and array task of its latest attempt (`JOB_TASK`), empty outside Slurm", "text"),
    Column("device", "the device it trained on", "text"),
    Column("versions", "Keras, backend and device versions, as JSON", "text"),
    Column("registered", "when the sweep registered it (UTC)", "text"),
    Column("started", "when it was first claimed (UTC)", "text"),
    Column("finished", "when it ended (UTC)", "text"),
    Column("config_json", "its whole configuration, as JSON", "text"),
)

#: The settings of the post's table; every other `[train]` key is a column of its own name.
SETTINGS = (
    Column("shift", "`[train] shift`: random shifts up to this fraction", "setting", "shift"),
    Column("l2", "`[train] l2`: the L2 factor on the conv kernels", "setting", "l2"),
    Column("weight_decay", "`[train] weight_decay`, λ", "setting", SYMBOLS["weight_decay"]),
    Column("ema_momentum", "`[train] ema_momentum`, m", "setting", SYMBOLS["ema_momentum"]),
    Column("learning_rate", "`[train] learning_rate`, α, the initial learning rate", "setting", SYMBOLS["learning_rate"]),
    Column("schedule", "`[train] schedule` as written (factors η when `schedule_relative`)", "text"),
    Column("schedule_relative", "whether the schedule is relative to α", "flag"),
    Column(
        "lr_schedule", "the schedule in learning rates, η·α (the post's reduction model)", "text", "reduction model"
    ),
)

#: The per-epoch columns (`sweep export --epochs`, `results.load_epochs()`).
EPOCHS = (
    Column("epoch", "the epoch, from 1", "integer"),
    Column("loss", "the training loss", "loss"),
    Column("acc", "the training accuracy", "accuracy4"),
    Column("val_loss", "the validation loss", "loss"),
    Column("val_acc", "the validation accuracy", "accuracy"),
    Column("lr", "the learning rate at the epoch's end", "number"),
    Column("seconds", "the epoch's wall-clock seconds", "number"),
    Column("images_per_second", "training images per second", "number"),
    Column("val_loss_ema", "the validation loss with the EMA weights", "loss"),
    Column("val_acc_ema", "the validation accuracy with the EMA weights", "accuracy"),
    Column("test_loss", "the test loss, when validation is a split of the training set", "loss"),
    Column("test_acc", "the test accuracy, when validation is a split of the training set", "accuracy"),
    Column("weight_norm", "the L2 norm of all conv kernels together", "number"),
    Column("weight_norm_stage1", "the same for ResNet stage 1", "number"),
    Column("weight_norm_stage2", "the same for stage 2", "number"),
    Column("weight_norm_stage3", "the same for stage 3", "number"),
    Column("effective_lr", "lr/‖w‖ averaged over the kernels a BatchNormalization follows", "number"),
    Column("angular_update", "the angle in radians those kernels turned through in the epoch", "number"),
    Column("xent", "the training cross-entropy alone (the L2 penalty excluded), epoch mean", "loss"),
    Column("val_xent", "the validation cross-entropy alone", "loss"),
    Column(
        "val_loss_bn",
        "the validation loss with BatchNorm statistics recomputed on a training subset (PreciseBN)",
        "loss",
    ),
    Column("val_acc_bn", "the BatchNorm-true validation accuracy", "accuracy"),
    Column("val_loss_ema_bn", "the BatchNorm-true validation loss of the EMA weights", "loss"),
    Column("val_acc_ema_bn", "the BatchNorm-true validation accuracy of the EMA weights", "accuracy"),
    Column(
        "train_loss_eval",
        "that training subset's loss in inference mode with the stored statistics (≫ `loss`: they fail)",
        "loss",
    ),
    Column("weight_norm_invariant", "the norm of the scale-invariant conv kernels together", "number"),
    Column("weight_norm_other", "the norm of the other conv kernels (`conv3`, shortcuts)", "number"),
    Column("dense_kernel_norm", "the norm of the softmax head's kernel", "number"),
    Column("bn_gamma_norm", "the norm of every BatchNorm's γ together", "number"),
    Column("angle_per_step", "the angle a scale-invariant kernel turns through in one step, sampled", "number"),
    Column("angle_equilibrium", "the rotational equilibrium's angle per step, √(2λ·lr·(1 − β₁)/(1 + β₁))", "number"),
    Column("weight_norm_equilibrium", "the norm `weight_norm_invariant` settles at, √(lr·C/(2λ)) for C elements", "number"),
    Column("ema_horizon_epochs", "the averages' horizon in epochs, 1/((1 − m)·steps per epoch)", "number"),
)

#: Every run column the definition names (settings beyond `SETTINGS` are `[train]` keys).
RUN_COLUMNS = (*IDENTITY, *METRICS, *TIMING, *RECORD, *SETTINGS)

#: The table of `sweep run`, `sweep export` and the report: the post's columns, named.
SUMMARY = (
    "label",
    "threshold_epoch",
    "val_acc_at_threshold",
    "acc_at_threshold",
    "epoch_best",
    "val_acc_best",
    "loss_min",
    "val_loss_min",
    "shift",
    "l2",
    "weight_decay",
    "ema_momentum",
    "learning_rate",
    "lr_schedule",
    "comment",
    "threshold_reached",
)

#: The summary's columns in the order a narrow terminal keeps them (settings that are
#: the same for every run move after the metrics).
TERMINAL_PRIORITY = (
    "label",
    "weight_decay",
    "learning_rate",
    "val_acc_best",
    "threshold_epoch",
    "epoch_best",
    "val_acc_at_threshold",
    "ema_momentum",
    "loss_min",
    "val_loss_min",
    "acc_at_threshold",
    "shift",
    "l2",
    "lr_schedule",
    "comment",
    "threshold_reached",
)

#: The names before this version, readable in `results.load()` with a DeprecationWarning
#: until the next version.
RENAMED = {
    "reached": "threshold_reached",
    "level": "val_acc_level",
    "acc_val": "val_acc_at_threshold",
    "acc": "acc_at_threshold",
    "final_loss": "loss_min",
    "final_val_loss": "val_loss_min",
    "final_weight_norm": "weight_norm_final",
    "reduction_model": "lr_schedule",
}
_OLD_THRESHOLD = re.compile(r"epochs_to_(\w+)")

_BY_NAME = {column.name: column for column in (*RUN_COLUMNS, *EPOCHS)}


def column(name: str) -> Column:
    """The definition of a column; a `threshold_epoch_0_92` is `threshold_epoch_<t>`'s,
    a name not defined here (a `[train]` key) a plain number or text."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith("threshold_epoch_"):
        return _BY_NAME["threshold_epoch_<t>"]
    return Column(name, f"`[train] {name}`")


def threshold_column(threshold: float) -> str:
    """The raw table's column of the epoch of one threshold: 0.92 → `threshold_epoch_0_92`."""
    return "threshold_epoch_" + format(threshold, "g").replace(".", "_").replace("-", "m")


def new_name(old: str) -> str | None:
    """The current name of a column's old name (`acc_val` → `val_acc_at_threshold`), if it had one."""
    if old in RENAMED:
        return RENAMED[old]
    match = _OLD_THRESHOLD.fullmatch(old)
    return f"threshold_epoch_{match.group(1)}" if match else None


def post_headers() -> dict[str, str]:
    """The post's header of each summary column that has one (`--style post`)."""
    return {name: column(name).post for name in SUMMARY if column(name).post}  # type: ignore[misc]


def glossary_rows(columns: tuple[Column, ...]) -> list[str]:
    """The Markdown rows of a glossary table: name, the post's header, meaning."""
    return [
        f"| `{c.name}` | {f'`{c.post}`' if c.post else ''} | {c.description} |".replace("  |", " |")
        for c in columns
    ]


def glossary_markdown() -> str:
    """The README's glossary tables: a run's columns, an epoch's, and the names renamed."""
    head = ["| column | post | meaning |", "| --- | --- | --- |"]
    renamed = ", ".join(f"`{old}` → `{new}`" for old, new in RENAMED.items())
    return "\n".join(
        [
            "Per run (`sweep export`, `sweep export --style raw`, `results.load()`):",
            "",
            *head,
            *glossary_rows(RUN_COLUMNS),
            "",
            "Per epoch (`sweep export --epochs`, `results.load_epochs()`), beside `run_id`, `label`, `run_key`,"
            " `trial_number`:",
            "",
            *head,
            *glossary_rows(EPOCHS),
            "",
            f"Renamed in this version: {renamed}, `epochs_to_0_92` → `threshold_epoch_0_92`. "
            "`results.load()` still reads the old names, with a DeprecationWarning, until the next version.",
        ]
    )


if __name__ == "__main__":
    print(glossary_markdown())
