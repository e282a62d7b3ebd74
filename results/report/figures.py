"""The report's interactive plots, as plotly figure specifications (plain dicts).

The page embeds plotly.js once and these figures as JSON; nothing here imports the
plotly Python package, which would validate every trace for nothing. Per run: loss
and val_loss, acc and val_acc with the thresholds (the first solid, the others
dotted), the LR schedule, and, when the trainer stored them, the EMA and test
curves, the weight norms, the effective LR and the angular update. Per study: best
val_acc and the threshold epoch over λ × α (heatmaps) or against the one swept
quantity (the overlays of every run are in `results.report.overlays`).

Text that plotly draws (trace names, titles, tick labels) goes through `plot_text`:
plotly reads a few HTML tags in it, so a label `<b>` would otherwise turn bold.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from results.report.frames import schedule_curve
from sweeps.notation import axis_title, format_number

Figure = dict[str, Any]

#: Points of the configured schedule's curve.
SCHEDULE_POINTS = 241
_HEIGHT_ROW = 300
# Configuration keys that never count as swept: derived from others, or bookkeeping.
_NOT_SWEPT = {"lr_schedule", "schedule_relative"}


@dataclass(frozen=True)
class Panel:
    """One panel of a run's figure.

    Args:
        title: the y axis title.
        columns: the epoch columns drawn, in order (those missing or all NaN are left out).
        log: a logarithmic y axis.
    """

    title: str
    columns: tuple[str, ...]
    log: bool = False


#: The first row of a run's figure, always drawn (the LR panel adds the schedule).
MAIN_PANELS = (
    Panel("loss", ("loss", "val_loss", "val_loss_ema", "test_loss", "val_loss_bn", "val_loss_ema_bn", "train_loss_eval")),
    Panel("accuracy", ("acc", "val_acc", "val_acc_ema", "test_acc", "val_acc_bn", "val_acc_ema_bn")),
    Panel("learning rate", ("lr",), log=True),
)
#: The second row: only the panels whose columns the trainer stored.
EXTRA_PANELS = (
    Panel("weight norm", ("weight_norm", "weight_norm_stage1", "weight_norm_stage2", "weight_norm_stage3")),
    Panel("effective LR", ("effective_lr",), log=True),
    Panel("angular update", ("angular_update",)),
    # Issue 19: measured against predicted, the norm against its equilibrium.
    Panel("angle per step", ("angle_per_step", "angle_equilibrium"), log=True),
    Panel("scale-invariant norm", ("weight_norm_invariant", "weight_norm_equilibrium")),
    # The loss without the L2 penalty: Adam + L2 and AdamW compared on the same quantity.
    Panel("cross-entropy", ("xent", "val_xent")),
    Panel("other norms", ("weight_norm_other", "dense_kernel_norm", "bn_gamma_norm")),
)
_ACCURACY = 1  # the index of the accuracy panel in MAIN_PANELS
# Training blue and validation orange as in the PNG plots; the EMA dashed, test dotted.
_STYLES = {
    "loss": {"color": "#1f77b4"}, "acc": {"color": "#1f77b4"},
    "val_loss": {"color": "#ff7f0e"}, "val_acc": {"color": "#ff7f0e"},
    "val_loss_ema": {"color": "#9467bd", "dash": "dash"}, "val_acc_ema": {"color": "#9467bd", "dash": "dash"},
    "test_loss": {"color": "#2ca02c", "dash": "dot"}, "test_acc": {"color": "#2ca02c", "dash": "dot"},
    "weight_norm": {"color": "#333333"}, "weight_norm_stage1": {"color": "#1f77b4"},
    "weight_norm_stage2": {"color": "#ff7f0e"}, "weight_norm_stage3": {"color": "#2ca02c"},
    "effective_lr": {"color": "#d62728"}, "angular_update": {"color": "#8c564b"},
    # BatchNorm-true: the same colours, long dashes; train_loss_eval the training's, dotted.
    "val_loss_bn": {"color": "#ff7f0e", "dash": "longdash"}, "val_acc_bn": {"color": "#ff7f0e", "dash": "longdash"},
    "val_loss_ema_bn": {"color": "#9467bd", "dash": "longdash"},
    "val_acc_ema_bn": {"color": "#9467bd", "dash": "longdash"},
    "train_loss_eval": {"color": "#1f77b4", "dash": "dot"},
    "angle_per_step": {"color": "#8c564b"}, "angle_equilibrium": {"color": "#000000", "dash": "dash"},
    "weight_norm_invariant": {"color": "#333333"}, "weight_norm_equilibrium": {"color": "#000000", "dash": "dash"},
    "xent": {"color": "#1f77b4"}, "val_xent": {"color": "#ff7f0e"},
    "weight_norm_other": {"color": "#7f7f7f"}, "dense_kernel_norm": {"color": "#d62728"},
    "bn_gamma_norm": {"color": "#17becf"},
}


def plot_text(text: Any) -> str:
    """User text as plotly shows it: literally (plotly decodes `&lt;` back to `<`)."""
    return html.escape(str(text), quote=False)


def values(series: Any) -> list[float | None]:
    """Numbers for JSON: NaN and infinities become None (a gap in the line)."""
    array = np.asarray(series, dtype=np.float64)
    return [float(v) if math.isfinite(v) else None for v in array.tolist()]


def has_values(epochs: pd.DataFrame, column: str) -> bool:
    """Whether a column is present and holds at least one finite number."""
    if column not in epochs.columns:
        return False
    array = pd.to_numeric(epochs[column], errors="coerce").to_numpy(dtype=np.float64)
    return bool(np.isfinite(array).any())


def _axis(index: int, letter: str) -> str:
    return letter if index == 1 else f"{letter}{index}"


def _layout_axis(index: int, letter: str) -> str:
    return f"{letter}axis" if index == 1 else f"{letter}axis{index}"


def _line(x: list[int], column: str, epochs: pd.DataFrame, axis: int, **style: Any) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines+markers" if len(x) < 40 else "lines",
        "name": column,
        "x": x,
        "y": values(epochs[column]),
        "xaxis": _axis(axis, "x"),
        "yaxis": _axis(axis, "y"),
        "marker": {"size": 4, "color": _STYLES.get(column, {}).get("color")},
        "line": {**_STYLES.get(column, {}), "width": 1.6},
        "hovertemplate": f"epoch %{{x}}<br>{column} %{{y:.5g}}<extra></extra>",
        **style,
    }


def run_figure(
    epochs: pd.DataFrame,
    config: dict[str, Any] | None,
    thresholds: Sequence[float],
) -> Figure:
    """The post's figure of one run: a row of loss, accuracy and LR panels, then rows
    of three for the measurements stored (norms, effective LR, angles, cross-entropy).

    Args:
        epochs: the run's epoch rows, by epoch.
        config: its stored configuration, for the schedule as configured.
        thresholds: the val_acc levels drawn on the accuracy panel, the first solid.
    """
    x = [int(e) for e in epochs["epoch"]]
    extras = [panel for panel in EXTRA_PANELS if any(has_values(epochs, c) for c in panel.columns)]
    panels = [*MAIN_PANELS, *extras]
    rows = -(-len(panels) // 3)  # three panels a row: every panel its own cell
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "grid": {"rows": rows, "columns": 3, "pattern": "independent", "roworder": "top to bottom"},
        "height": _HEIGHT_ROW * rows + 60,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "hovermode": "closest",
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        "shapes": [],
    }
    for index, panel in enumerate(panels, start=1):
        # loss and val_loss, acc and val_acc always: a diverged run shows its gaps.
        always = panel.columns[:2] if panel in MAIN_PANELS else ()
        columns = [c for c in panel.columns if (c in always and c in epochs.columns) or has_values(epochs, c)]
        if panel.columns[0] == "lr":
            curve = schedule_curve(config, float(max(x, default=0)), SCHEDULE_POINTS)
            if curve is not None:
                curve = [round(float(e), 6) for e in curve[0]], [float(lr) for lr in curve[1]]
                data.append({
                    "type": "scatter", "mode": "lines", "name": "schedule (configured)",
                    "x": curve[0], "y": curve[1], "xaxis": _axis(index, "x"), "yaxis": _axis(index, "y"),
                    "line": {"color": "#888"},
                    "hovertemplate": "epoch %{x:.2f}<br>schedule %{y:.3g}<extra></extra>",
                })
            data.append(_line(x, "lr", epochs, index, mode="markers", marker={"size": 5, "color": "#2ca02c"}))
        else:
            data += [_line(x, column, epochs, index) for column in columns]
        layout[_layout_axis(index, "x")] = {"title": {"text": "epoch"}, "zeroline": False}
        layout[_layout_axis(index, "y")] = {
            "title": {"text": panel.title}, "type": "log" if panel.log else "linear", "exponentformat": "e",
            **(_flat_log_range(data, _axis(index, "y")) if panel.log else {}),
        }
        if index == _ACCURACY + 1:
            layout["shapes"] += threshold_lines(thresholds, index)
    return {"data": data, "layout": layout}


#: A log panel whose values span less than this many decades is drawn over one decade
#: around them: plotly would zoom a constant lr (float32's 0.0020000000949949 beside the
#: schedule's 0.002) into ten digits of noise.
_FLAT_DECADES = 0.3


def _flat_log_range(data: list[dict[str, Any]], yaxis: str) -> dict[str, Any]:
    """The y range of a log axis whose traces are flat; empty (autorange) otherwise."""
    ys = [y for trace in data if trace.get("yaxis") == yaxis for y in trace["y"] if y is not None and y > 0]
    if not ys:
        return {}
    low, high = math.log10(min(ys)), math.log10(max(ys))
    if high - low >= _FLAT_DECADES:
        return {}
    middle = (low + high) / 2
    return {"range": [middle - 0.5, middle + 0.5]}


def threshold_lines(thresholds: Sequence[float], axis: int) -> list[dict[str, Any]]:
    """Horizontal lines at the val_acc thresholds, each labelled with its level at the
    right end: the first solid, the others dotted. The lowest level's label sits under
    its line and the others' above theirs, so that 0.92 and 0.93 do not overlap."""
    lowest = min(thresholds, default=None)
    return [
        {
            "type": "line", "xref": f"{_axis(axis, 'x')} domain", "x0": 0, "x1": 1,
            "yref": _axis(axis, "y"), "y0": level, "y1": level,
            "line": {"color": "black", "width": 1, "dash": "solid" if i == 0 else "dot"},
            "label": {"text": f"{level:g}", "textposition": "end", "yanchor": "top" if level == lowest else "bottom",
                      "font": {"size": 11, "color": "black"}},
        }
        for i, level in enumerate(thresholds)
    ]


def swept_keys(runs: pd.DataFrame) -> list[str]:
    """The configuration keys whose values differ between the study's runs."""
    from results.report.frames import config_of

    configs = [config for config in (config_of(row) for row in runs.to_dict("records")) if config]
    keys: list[str] = []
    for key in dict.fromkeys(k for config in configs for k in config):
        if key in _NOT_SWEPT:
            continue
        seen = {json.dumps(config.get(key), sort_keys=True) for config in configs}
        if len(seen) > 1:
            keys.append(key)
    return keys


def _category(value: Any) -> str:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return format_number(float(value))
    return str(value)


def _sorted_categories(column: pd.Series) -> list[Any]:
    present = [v for v in column.dropna().unique()]
    try:
        return sorted(present, key=float)
    except (TypeError, ValueError):
        return sorted(present, key=str)


def heatmap_figures(runs: pd.DataFrame, threshold: float) -> list[Figure]:
    """Best val_acc and the threshold epoch as heatmaps over λ × α, and the
    BatchNorm-true best val_acc where measured; cells that several runs share (other
    schedules, seeds) show the best: the highest val_acc, the earliest epoch.

    Args:
        runs: the raw table (`weight_decay`, `learning_rate`, `val_acc_best`,
            `threshold_epoch`, `threshold_reached`, `val_acc_bn_best`).
        threshold: the val_acc of the threshold epoch.
    """
    frame = runs.dropna(subset=["weight_decay", "learning_rate"])
    lambdas = _sorted_categories(frame["weight_decay"])
    alphas = _sorted_categories(frame["learning_rate"])
    reached = frame["threshold_epoch"].where(frame["threshold_reached"].astype(bool)).astype("float64")
    cell = ["weight_decay", "learning_rate"]
    best = frame.groupby(cell)["val_acc_best"].max()
    first = frame.assign(reached_epoch=reached).groupby(cell)["reached_epoch"].min()
    accuracy = {"best val_acc": best}
    if has_values(frame, "val_acc_bn_best"):  # where the stored statistics hid a good model
        bn_best = pd.to_numeric(frame["val_acc_bn_best"], errors="coerce")
        accuracy["BatchNorm-true best val_acc"] = frame.assign(bn=bn_best).groupby(cell)["bn"].max()
    # The accuracy maps share one colour scale, so that a colour means one val_acc in both.
    finite = pd.concat(accuracy.values()).dropna()
    shared = {"zmin": float(finite.min()), "zmax": float(finite.max())} if len(finite) else {}
    maps = [(cells, title, ".4f", "Viridis", shared) for title, cells in accuracy.items()]
    maps.insert(1, (first, f"first epoch with val_acc ≥ {threshold:g}", "d", "Viridis_r", {}))
    figures = []
    for cells, title, fmt, scale, colour_range in maps:
        z = [[cells.get((lam, alpha), math.nan) for alpha in alphas] for lam in lambdas]
        figures.append({
            "data": [{
                "type": "heatmap", "x": [_category(a) for a in alphas], "y": [_category(lam) for lam in lambdas],
                "z": [values(row) for row in z], "texttemplate": f"%{{z:{fmt}}}", **colour_range,
                # plotly.js knows no "_r" names: the Python package's reversed scales.
                "colorscale": scale.removesuffix("_r"), "reversescale": scale.endswith("_r"),
                "hovertemplate": f"λ %{{y}}<br>α %{{x}}<br>{title} %{{z}}<extra></extra>",
                "xgap": 2, "ygap": 2,
            }],
            "layout": {
                "height": 140 + 60 * len(lambdas), "margin": {"l": 80, "r": 20, "t": 40, "b": 60},
                "title": {"text": title},
                "xaxis": {"title": {"text": axis_title("learning_rate")}, "type": "category"},
                "yaxis": {"title": {"text": axis_title("weight_decay")}, "type": "category"},
            },
        })
    return figures


#: The best val_accs an against-plot shows where measured: the raw weights', and those
#: m, the averages and recomputed BatchNorm statistics change (an m sweep's raw best is
#: the same for every m; a large λ's stored statistics can hide a good model).
BEST_SERIES = (
    ("val_acc_best", "best val_acc"),
    ("val_acc_ema_best", "EMA weights"),
    ("val_acc_bn_best", "BatchNorm-true"),
    ("val_acc_ema_bn_best", "BatchNorm-true, EMA weights"),
)
_SYMBOLS = ("circle", "x", "diamond", "square")


def against_figures(runs: pd.DataFrame, key: str, threshold: float) -> list[Figure]:
    """Best val_acc and the threshold epoch of each run against the one swept quantity;
    beside the best val_acc, those of the EMA weights and the BatchNorm-true ones where
    measured (`BEST_SERIES`).

    Args:
        runs: the raw table, with the column `key`.
        key: the swept configuration key.
        threshold: the val_acc of the threshold epoch.
    """
    order = _sorted_categories(runs[key])
    categories = [_category(v) for v in order]
    x = [_category(v) if not pd.isna(v) else "" for v in runs[key]]
    labels = [plot_text(label) for label in runs["label"]]
    reached = runs["threshold_epoch"].where(runs["threshold_reached"].astype(bool)).astype("float64")
    best = [BEST_SERIES[0], *((name, text) for name, text in BEST_SERIES[1:] if has_values(runs, name))]
    figures = []
    for series, title in (
        ([(runs[name], text) for name, text in best], "best val_acc"),
        ([(reached, f"first epoch with val_acc ≥ {threshold:g}")], f"first epoch with val_acc ≥ {threshold:g}"),
    ):
        figures.append({
            "data": [{
                "type": "scatter", "mode": "markers", "x": x, "y": values(y), "text": labels,
                "marker": {"size": 9, "symbol": symbol}, "name": name,
                "hovertemplate": f"run %{{text}}<br>{plot_text(key)} %{{x}}<br>"
                                 f"{title if name == title else f'{title} ({name})'} %{{y}}<extra></extra>",
            } for (y, name), symbol in zip(series, _SYMBOLS, strict=False)],
            "layout": {
                "height": 360, "margin": {"l": 60, "r": 20, "t": 40, "b": 60}, "title": {"text": title},
                "showlegend": len(series) > 1,
                "xaxis": {
                    "title": {"text": plot_text(axis_title(key))}, "type": "category",
                    "categoryorder": "array", "categoryarray": categories,
                },
                "yaxis": {"title": {"text": title}},
            },
        })
    return figures


def sweep_figures(runs: pd.DataFrame, threshold: float) -> tuple[list[Figure], str]:
    """The study's summary plots and a sentence on what they are drawn over.

    λ × α heatmaps when both vary; else plots against the one swept quantity; else
    none (the sentence says why).
    """
    keys = swept_keys(runs)
    if not len(runs) or "val_acc_best" not in runs.columns:
        return [], "no runs yet"
    if {"weight_decay", "learning_rate"} <= set(keys):
        return heatmap_figures(runs, threshold), "over λ × α"
    if len(keys) == 1 and keys[0] in runs.columns:
        return against_figures(runs, keys[0], threshold), f"against {keys[0]}, the one swept quantity"
    if not keys:
        return [], "no quantity varies between the runs"
    return [], f"several quantities vary ({', '.join(keys)}) and not both λ and α: see the table"


def importance_figure(importances: dict[str, float], target: str) -> Figure:
    """Optuna's parameter importances as horizontal bars, the largest on top."""
    items = sorted(importances.items(), key=lambda item: item[1])
    return {
        "data": [{
            "type": "bar", "orientation": "h", "x": [v for _, v in items],
            "y": [plot_text(axis_title(k)) for k, _ in items],
            "hovertemplate": "%{y}<br>importance %{x:.3f}<extra></extra>",
        }],
        "layout": {
            "height": 120 + 40 * len(items), "margin": {"l": 200, "r": 20, "t": 40, "b": 50},
            "title": {"text": f"importance for {plot_text(target)} (Optuna, fANOVA)"},
            "xaxis": {"title": {"text": "importance"}, "range": [0, 1]},
        },
    }


def drawn(figure: Figure) -> bool:
    """Whether a figure's traces have at least one finite value to draw (a heatmap's
    `z`, a scatter's `y`)."""
    for trace in figure["data"]:
        for name in ("z", "y"):
            cells = trace.get(name)
            if cells is None:
                continue
            flat = [v for row in cells for v in (row if isinstance(row, list) else [row])]
            if any(isinstance(v, (int, float)) and math.isfinite(v) for v in flat):
                return True
    return False
