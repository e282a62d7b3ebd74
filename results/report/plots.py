"""The post's plots as PNG files, drawn with matplotlib's Agg canvas (no display).

Per run: loss and val_loss over epochs, acc and val_acc with lines at 0.92 (solid) and
0.93 (dotted), the validation with the EMA weights dashed beside them (and the test
set dotted), the learning-rate schedule with the effective LR lr/‖w‖ beside it, and
the conv kernels' norms. Per study: best val_acc and threshold epoch as heatmaps over
λ × α, the val_loss of all runs overlaid, coloured by λ, so that the fluctuations of
large λ are seen at once, and best val_acc (raw and EMA) against m with the final
kernel norm against λ.

Missing values (not measured, a diverged epoch) leave gaps; an epoch whose loss is
NaN or infinite is marked with a red line and "diverged".

Figures are `matplotlib.figure.Figure` objects, not pyplot's: no global state, no GUI
backend, nothing to close.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from results.report.frames import schedule_curve
from sweeps.notation import axis_title, format_number

#: The horizontal lines of the accuracy panel: 0.92 solid, 0.93 dotted.
ACC_LINES = ((0.92, "-"), (0.93, ":"))
_DPI = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Characters of a label in a per-run plot's file name: with the study's name (at most
#: 100) and the rest, within a name's 255 bytes.
MAX_LABEL_PART = 120


def file_part(text: str) -> str:
    """A label or study name as part of a file name."""
    return _UNSAFE.sub("_", str(text)).strip("_") or "_"


def _column(epochs: pd.DataFrame, name: str) -> np.ndarray:
    """A column as floats, infinite values as NaN (a gap); NaN throughout if absent."""
    if name not in epochs.columns:
        return np.full(len(epochs), math.nan)
    values = epochs[name].to_numpy(dtype=np.float64, na_value=math.nan)
    return np.where(np.isfinite(values), values, math.nan)


def _plot(axes: Any, x: np.ndarray, epochs: pd.DataFrame, name: str, **style: Any) -> None:
    """Plots a column when it has any value (an unmeasured one adds no legend entry)."""
    values = _column(epochs, name)
    if np.isfinite(values).any():
        # Small markers: an epoch between two gaps (NaN, inf) is still seen.
        style = {"marker": ".", "markersize": 4, **style}
        axes.plot(x, values, label=style.pop("label", name), **style)


def _scale(axes: Any, log: bool) -> None:
    # A log axis without a positive value would warn and draw nothing useful.
    has_positive = any(
        np.any(np.asarray(line.get_ydata(), dtype=np.float64) > 0) for line in axes.get_lines()
    )
    axes.set_yscale("log" if log and has_positive else "linear")


def _mark_divergence(axes_list: Sequence[Any], x: np.ndarray, epochs: pd.DataFrame) -> None:
    losses = np.column_stack([epochs[n].to_numpy(dtype=np.float64, na_value=math.nan)
                              for n in ("loss", "val_loss") if n in epochs.columns] or [np.zeros(len(x))])
    bad = np.flatnonzero(~np.isfinite(losses[:, 0]) | (np.isinf(losses).any(axis=1)))
    if bad.size:
        for axes in axes_list:
            axes.axvline(x[bad[0]], color="red", linewidth=1.2, label=f"diverged (epoch {x[bad[0]]:g})")


def run_figure(
    label: str,
    epochs: pd.DataFrame,
    config: dict[str, Any] | None = None,
    *,
    log: bool = False,
    title: str | None = None,
) -> Figure:
    """The post's figure of one run, with the EMA validation and the weights beside it.

    Args:
        label: the run's label, for the title.
        epochs: its epoch rows (`epoch`, `loss`, `val_loss`, `acc`, `val_acc`, `lr`,
            and where measured `val_loss_ema`, `val_acc_ema`, `test_loss`,
            `test_acc`, `weight_norm*`, `effective_lr`).
        config: its stored configuration, for the schedule as configured.
        log: losses on a log scale.
        title: the figure title (default: "run LABEL").
    """
    figure = Figure(figsize=(20, 4.2), dpi=_DPI, layout="constrained")
    loss_axes, acc_axes, lr_axes, norm_axes = figure.subplots(1, 4)
    x = epochs["epoch"].to_numpy(dtype=np.float64)
    _plot(loss_axes, x, epochs, "loss", color="tab:blue")
    _plot(loss_axes, x, epochs, "val_loss", color="tab:orange")
    _plot(loss_axes, x, epochs, "val_loss_ema", color="tab:red", linestyle="--")
    _plot(loss_axes, x, epochs, "test_loss", color="tab:purple", linestyle=":")
    _scale(loss_axes, log)
    loss_axes.set(xlabel="epoch", ylabel="loss", title="loss")
    _plot(acc_axes, x, epochs, "acc", color="tab:blue")
    _plot(acc_axes, x, epochs, "val_acc", color="tab:orange")
    _plot(acc_axes, x, epochs, "val_acc_ema", color="tab:red", linestyle="--")
    _plot(acc_axes, x, epochs, "test_acc", color="tab:purple", linestyle=":")
    for level, style in ACC_LINES:
        acc_axes.axhline(level, color="black", linestyle=style, linewidth=0.9, label=f"{level:g}")
    acc_axes.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    curve = schedule_curve(config, float(np.nanmax(x)) if len(x) else 0.0)
    if curve is not None:
        lr_axes.plot(*curve, color="tab:gray", label="schedule")
    _plot(lr_axes, x, epochs, "lr", marker="o", linestyle="none", markersize=3, color="tab:green",
          label="lr (recorded)")
    _plot(lr_axes, x, epochs, "effective_lr", color="tab:brown", marker=".", label="effective lr = lr/‖w‖")
    _scale(lr_axes, True)
    lr_axes.set(xlabel="epoch", ylabel="learning rate", title="learning rate")
    _plot(norm_axes, x, epochs, "weight_norm", color="black", label="‖w‖ all conv kernels")
    for stage, colour in zip((1, 2, 3), ("tab:cyan", "tab:olive", "tab:pink"), strict=True):
        _plot(norm_axes, x, epochs, f"weight_norm_stage{stage}", color=colour, label=f"stage {stage}")
    norm_axes.set(xlabel="epoch", ylabel="L2 norm", title="conv kernel norms")
    if not norm_axes.get_lines():
        norm_axes.text(0.5, 0.5, "not measured", ha="center", va="center", transform=norm_axes.transAxes)
    all_axes = (loss_axes, acc_axes, lr_axes, norm_axes)
    _mark_divergence(all_axes, x, epochs)
    for axes in all_axes:
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    figure.suptitle(title or f"run {label}")
    return figure


def ema_and_norm_figure(raw: pd.DataFrame, *, title: str) -> Figure:
    """Best val_acc (raw, with the EMA weights and, where measured, those with their
    BatchNorm statistics recomputed) against m, and the final conv kernel norm against
    λ, one point per run.

    Args:
        raw: the raw table (`ema_momentum`, `weight_decay`, `val_acc_best`,
            `val_acc_ema_best`, `val_acc_ema_bn_best`, `weight_norm_final`).
        title: the figure title.
    """
    figure = Figure(figsize=(13, 5), dpi=_DPI, layout="constrained")
    m_axes, norm_axes = figure.subplots(1, 2)

    def points(axes: Any, x_name: str, y_name: str, **style: Any) -> None:
        x, y = _column(raw, x_name), _column(raw, y_name)
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.any():
            axes.plot(x[keep], y[keep], linestyle="none", **style)
        if (~keep).any():  # a diverged run, or one not measured: say so, draw no number
            axes.annotate(f"{style['label']}: {int((~keep).sum())} run(s) without a finite value",
                          (0.01, 0.01 + 0.05 * len(axes.texts)), xycoords="axes fraction", fontsize="small")

    points(m_axes, "ema_momentum", "val_acc_best", marker="o", color="tab:orange", label="best val_acc")
    points(m_axes, "ema_momentum", "val_acc_ema_best", marker="x", color="tab:red",
           label="best val_acc, EMA weights")
    if np.isfinite(_column(raw, "val_acc_ema_bn_best")).any():  # not measured: no legend entry
        points(m_axes, "ema_momentum", "val_acc_ema_bn_best", marker="+", color="tab:purple",
               label="best val_acc, EMA weights, BatchNorm-true")
    m_axes.set(xlabel="m (EMA momentum)", ylabel="best val_acc", title="best val_acc against m")
    points(norm_axes, "weight_decay", "weight_norm_final", marker="o", color="black", label="final ‖w‖")
    norm_axes.set(xlabel=axis_title("weight_decay"), ylabel="L2 norm of the conv kernels",
                  title="final kernel norm against λ")
    for axes in (m_axes, norm_axes):
        axes.grid(True, alpha=0.3)
        if axes.get_lines():
            axes.legend(fontsize="small")
        else:
            axes.text(0.5, 0.5, "no run with these values", ha="center", va="center", transform=axes.transAxes)
    figure.suptitle(title)
    return figure


def _heatmap(figure: Figure, axes: Any, grid: pd.DataFrame, title: str, fmt: str, cmap: str) -> None:
    values = grid.to_numpy(dtype=np.float64)
    image = axes.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto", origin="lower")
    axes.set_xticks(range(grid.shape[1]), [format_number(v) for v in grid.columns])
    axes.set_yticks(range(grid.shape[0]), [format_number(v) for v in grid.index])
    axes.set(xlabel=axis_title("learning_rate"), ylabel=axis_title("weight_decay"), title=title)
    for (row, column), value in np.ndenumerate(values):
        text = "–" if math.isnan(value) else format(value, fmt)
        red, green, blue, _ = image.cmap(image.norm(value)) if not math.isnan(value) else (1, 1, 1, 1)
        # Dark text on light cells, light text on dark ones.
        colour = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
        axes.text(column, row, text, ha="center", va="center", fontsize="small", color=colour)
    if np.isfinite(values).any():
        figure.colorbar(image, ax=axes)


def heatmap_figure(raw: pd.DataFrame, *, title: str) -> Figure:
    """Best val_acc and threshold epoch over λ × α.

    Args:
        raw: the raw table (`weight_decay`, `learning_rate`, `val_acc_best`,
            `threshold_epoch`, `threshold_reached`). Runs that share a cell (other schedules,
            seeds) show the cell's best: the highest val_acc, the earliest epoch.
        title: the figure title.
    """
    figure = Figure(figsize=(13, 5), dpi=_DPI, layout="constrained")
    best_axes, epoch_axes = figure.subplots(1, 2)
    if not {"weight_decay", "learning_rate"} <= set(raw.columns):  # no configuration known yet
        raw = raw.assign(weight_decay=math.nan, learning_rate=math.nan)
    frame = raw.dropna(subset=["weight_decay", "learning_rate"])
    reached = frame["threshold_epoch"].where(frame["threshold_reached"].astype(bool)).astype("float64")
    best = frame.pivot_table(
        index="weight_decay", columns="learning_rate", values="val_acc_best", aggfunc="max", dropna=False
    )
    first = (
        frame.assign(reached_epoch=reached)
        .pivot_table(
            index="weight_decay", columns="learning_rate", values="reached_epoch", aggfunc="min", dropna=False
        )
        .reindex(index=best.index, columns=best.columns)
    )
    threshold = float(raw["threshold"].iloc[0]) if "threshold" in raw.columns and len(raw) else 0.92
    if best.size:
        _heatmap(figure, best_axes, best, "best val_acc", ".4f", "viridis")
        _heatmap(figure, epoch_axes, first, f"first epoch with val_acc ≥ {threshold:g}", ".0f", "viridis_r")
    else:
        for axes in (best_axes, epoch_axes):
            axes.text(0.5, 0.5, "no runs with λ and α", ha="center", va="center")
    figure.suptitle(title)
    return figure


def val_loss_figure(raw: pd.DataFrame, epochs: pd.DataFrame, *, log: bool = False, title: str) -> Figure:
    """The val_loss of every run overlaid, coloured by λ."""
    from matplotlib import colormaps

    figure = Figure(figsize=(10, 6), dpi=_DPI, layout="constrained")
    axes = figure.subplots()
    decays = (
        raw.set_index("run_id")["weight_decay"] if "weight_decay" in raw.columns else pd.Series(dtype=float)
    )
    known = sorted(v for v in decays.dropna().unique())
    cmap = colormaps["plasma"]
    many = len(raw) > 20
    for run_id, run in epochs.groupby("run_id", sort=False):
        decay = decays.get(run_id, math.nan)
        # plasma's last sixth is a yellow too pale to see on white.
        colour = cmap(0.85 * known.index(decay) / max(1, len(known) - 1)) if decay in known else "gray"
        label = f"{run['label'].iloc[0]} (λ {format_number(decay)})"
        axes.plot(
            run["epoch"],
            run["val_loss"],
            color=colour,
            linewidth=1,
            alpha=0.85,
            label=None if many else label,
        )
    axes.set_yscale("log" if log else "linear")
    axes.set(xlabel="epoch", ylabel="val_loss", title=title)
    axes.grid(True, alpha=0.3)
    if not many and len(epochs):
        axes.legend(fontsize="small", ncols=2)
    return figure


def save(figure: Figure, path: Path) -> Path:
    """Writes a figure as PNG, whole or not at all, never over a database or a
    special file (`results.report.outputs.write_output`)."""
    from results.report.outputs import write_output

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_output(path, buffer.getvalue())
    return path


def write_plots(
    study: str,
    raw: pd.DataFrame,
    epochs: pd.DataFrame,
    output: Path,
    *,
    labels: Sequence[str] | None = None,
    log: bool = False,
) -> list[Path]:
    """Writes a PNG per run (all, or those of `labels`) and the study's three PNGs.

    Args:
        study: the study's name, for file names and titles.
        raw: its raw table (`results.load`), with `run_id`, `label`, `config` values.
        epochs: its epoch table with `run_id`.
        output: the folder; it must exist.
        labels: the runs to draw one by one (the study figures show every run).
        log: losses on a log scale.

    Returns:
        The files written.
    """
    from results.report.frames import config_of

    written: list[Path] = []
    by_run = dict(tuple(epochs.groupby("run_id", sort=False)))
    chosen = raw if labels is None else raw[raw["label"].isin(list(labels))]
    seen: set[str] = set()
    for row in chosen.itertuples(index=False):
        # A label may be 1000 characters; a file name at most 255 bytes.
        name = file_part(row.label or row.run_key)[:MAX_LABEL_PART]
        if name in seen:
            name = f"{name}-{row.run_id}"
        seen.add(name)
        run_epochs = by_run.get(row.run_id, epochs.iloc[:0])
        figure = run_figure(
            row.label, run_epochs, config_of(row._asdict()), log=log, title=f"{study}: run {row.label}"
        )
        written.append(save(figure, output / f"{file_part(study)}-run-{name}.png"))
    written.append(
        save(
            heatmap_figure(raw, title=f"{study}: best val_acc and threshold epoch over λ × α"),
            output / f"{file_part(study)}-heatmaps.png",
        )
    )
    written.append(
        save(
            val_loss_figure(raw, epochs, log=log, title=f"{study}: val_loss of all runs"),
            output / f"{file_part(study)}-val_loss.png",
        )
    )
    written.append(
        save(
            ema_and_norm_figure(raw, title=f"{study}: best val_acc against m, final kernel norm against λ"),
            output / f"{file_part(study)}-ema-weights.png",
        )
    )
    return written
