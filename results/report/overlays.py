"""The report's overlays: one metric of every run on one plot, each run in its own
style (`results.report.run_styles`): val_acc (raw, and beside it the EMA model's where
the trainer stored it) with the labelled thresholds, and val_loss.

A run's legend entry toggles all its lines (one legend group per run); NaN and
infinities from a diverged run are gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from results.report.figures import Figure, has_values, plot_text, threshold_lines, values
from results.report.run_styles import Styling

#: Above this many runs the legend takes more room than the plot: the hover names them.
LEGEND_RUNS = 40
_MARKERS_SHOWN = 12  # markers per line: enough to tell the symbols, few enough to see the line


def _trace(rows: pd.DataFrame, column: str, run_id: int, styling: Styling, panel: int,
           *, legend: bool) -> dict[str, Any]:
    style = styling.styles[run_id]
    axis = "" if panel == 1 else str(panel)
    return {
        "type": "scatter", "mode": "lines+markers", "name": plot_text(style.name),
        "legendgroup": f"run-{run_id}", "showlegend": legend,
        "x": [int(e) for e in rows["epoch"]], "y": values(rows[column]),
        "xaxis": f"x{axis}", "yaxis": f"y{axis}",
        "line": {"color": style.colour, "dash": style.dash, "width": 1.6},
        "marker": {"color": style.colour, "symbol": style.marker, "size": 6, "maxdisplayed": _MARKERS_SHOWN},
        "customdata": [plot_text(style.values)] * len(rows),
        "hovertemplate": f"%{{fullData.name}}<br>%{{customdata}}<br>epoch %{{x}}<br>{column} %{{y:.4f}}<extra></extra>",
    }


def overlay_figure(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    styling: Styling,
    columns: Sequence[str],
    *,
    title: str,
    thresholds: Sequence[float] = (),
) -> Figure | None:
    """Every run's epochs of one or more metrics, a panel per metric side by side.

    Args:
        runs: the raw table (`run_id`), in the order of the legend.
        epochs: the epoch table (`run_id`, `epoch`, the metrics).
        styling: the runs' styles (`run_styles`).
        columns: the metrics, a panel each; those no run stored are left out
            (the first is always drawn).
        title: the plot's title.
        thresholds: val_acc levels drawn and labelled on every panel, the first solid.

    Returns:
        The figure, or None when no run has a finite value of the first metric.
    """
    shown = [c for i, c in enumerate(columns) if c in epochs.columns and (i == 0 or has_values(epochs, c))]
    if not shown or not has_values(epochs, shown[0]):
        return None
    by_run = dict(tuple(epochs.groupby("run_id", sort=False)))
    data = []
    for run_id in runs["run_id"]:
        rows = by_run.get(run_id)
        if rows is None:
            continue
        for panel, column in enumerate(shown, start=1):
            # A run without EMA epochs (stored before the EMA was measured) has no line there.
            if panel == 1 or has_values(rows, column):
                data.append(_trace(rows, column, int(run_id), styling, panel, legend=panel == 1))
    layout: dict[str, Any] = {
        "height": 500, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "title": {"text": plot_text(title)}, "hovermode": "closest",
        "showlegend": sum(t["showlegend"] for t in data) <= LEGEND_RUNS,
        "legend": {"orientation": "h", "y": -0.15, "yanchor": "top"},
        "shapes": [],
    }
    if len(shown) > 1:
        layout["grid"] = {"rows": 1, "columns": len(shown), "pattern": "independent"}
    for panel, column in enumerate(shown, start=1):
        suffix = "" if panel == 1 else str(panel)
        layout[f"xaxis{suffix}"] = {"title": {"text": "epoch"}, "zeroline": False}
        layout[f"yaxis{suffix}"] = {"title": {"text": column}, **({"matches": "y"} if panel > 1 else {})}
        layout["shapes"] += threshold_lines(thresholds, panel)
    if layout["showlegend"]:
        # The horizontal legend below the plot: a row per few runs.
        layout["height"] += 22 * ((sum(t["showlegend"] for t in data) + 3) // 4)
    return {"data": data, "layout": layout}
