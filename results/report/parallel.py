"""Parallel coordinates over the swept quantities, a line per run coloured by its best
val_acc (plotly's `parcoords`, drawn with WebGL; the page says so where a browser
has none).

λ and α are on log10 axes, ticked with their values as the post writes them. λ = 0
(the post's runs without weight decay) has no logarithm: it sits one decade below the
smallest λ above 0, ticked `0.0`. Text quantities (schedules) get an axis of their own
values. A run without a finite best val_acc (not started, or diverged before its first
epoch) has no colour and is left out; the page says how many.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from results.report.figures import Figure, plot_text
from results.report.run_styles import is_numeric, key_name, ordered_values, value_text

#: Quantities on log10 axes (issue 20's decision).
LOG_KEYS = ("weight_decay", "learning_rate")
#: Above this many distinct values an axis is ticked by decades (log) or by plotly (linear).
_TICKED_VALUES = 10


@dataclass(frozen=True)
class Parallel:
    """The figure and what it leaves out.

    Args:
        figure: the parcoords figure, or None when there is nothing to draw.
        left_out: runs without a finite best val_acc or a finite swept value.
        note: why there is no figure.
    """

    figure: Figure | None
    left_out: int = 0
    note: str = ""


def _log_axis(column: pd.Series) -> tuple[list[float], dict[str, Any]] | None:
    numbers = column.astype("float64")
    positive = numbers[numbers > 0]
    if not len(positive) or (numbers < 0).any():
        return None
    zero = math.log10(float(positive.min())) - 1  # 0: one decade below the smallest value above 0
    position = [math.log10(v) if v > 0 else zero for v in numbers]
    distinct = ordered_values(column)
    if len(distinct) <= _TICKED_VALUES:
        ticks = {"tickvals": [math.log10(v) if v > 0 else zero for v in map(float, distinct)],
                 "ticktext": [value_text(v) for v in distinct]}
    else:
        decades = list(range(math.ceil(min(position)), math.floor(max(position)) + 1))
        has_zero = bool((numbers == 0).any())
        ticks = {"tickvals": [zero] * has_zero + decades, "ticktext": ["0.0"] * has_zero + [f"1e{d}" for d in decades]}
    return position, ticks


def _dimension(runs: pd.DataFrame, key: str) -> dict[str, Any]:
    column = runs[key]
    name = plot_text(key_name(key))
    if is_numeric(column):
        logged = _log_axis(column) if key in LOG_KEYS else None
        if logged is not None:
            position, ticks = logged
            return {"label": f"{name} (log10)", "values": position, **ticks}
        distinct = ordered_values(column)
        ticks = ({"tickvals": [float(v) for v in distinct], "ticktext": [value_text(v) for v in distinct]}
                 if len(distinct) <= _TICKED_VALUES else {})
        return {"label": name, "values": [float(v) for v in column], **ticks}
    categories = ordered_values(column.map(lambda v: "(none)" if v is None or v != v else str(v)))
    code = {c: i for i, c in enumerate(categories)}
    return {
        "label": name, "values": [code["(none)" if v is None or v != v else str(v)] for v in column],
        "tickvals": list(range(len(categories))), "ticktext": [plot_text(c) for c in categories],
        # A single category still needs a range to draw an axis.
        "range": [-0.5, len(categories) - 0.5] if len(categories) == 1 else [0, len(categories) - 1],
    }


def parallel_figure(runs: pd.DataFrame, keys: list[str]) -> Parallel:
    """Parallel coordinates over the swept quantities and best val_acc.

    Args:
        runs: the raw table (`val_acc_best`, a column per swept key).
        keys: the swept configuration keys (`results.report.figures.swept_keys`).
    """
    keys = [key for key in keys if key in runs.columns]
    if not keys:
        return Parallel(None, note="no quantity varies between the runs: nothing to draw across")
    best = pd.to_numeric(runs["val_acc_best"], errors="coerce").astype("float64")
    drawn = np.isfinite(best.to_numpy())
    for key in keys:
        if is_numeric(runs[key]):
            drawn &= np.isfinite(runs[key].astype("float64").to_numpy())
    kept = runs[drawn]
    if not len(kept):
        return Parallel(None, left_out=len(runs), note="no run has a best val_acc yet")
    colour = [float(v) for v in best[drawn]]
    low, high = min(colour), max(colour)
    # A diverged run far below the rest would take the whole scale and paint every
    # other run one colour: the colours span the runs within Tukey's fences (below
    # them, the darkest); the axis keeps every value.
    q1, q3 = np.percentile(colour, [25, 75])
    floor = max(low, float(q1 - 1.5 * (q3 - q1)))
    dimensions = [_dimension(kept, key) for key in keys]
    dimensions.append({
        "label": "best val_acc", "values": colour,
        # A flat range (every run equal) would draw no axis.
        "range": [low, high] if high > low else [low - 0.005, high + 0.005], "tickformat": ".3f",
    })
    figure = {
        "data": [{
            "type": "parcoords", "dimensions": dimensions, "labelangle": 0, "labelside": "top",
            "line": {"color": colour, "colorscale": "Viridis", "showscale": True,
                     "cmin": floor, "cmax": high if high > floor else floor + 1e-9,
                     "colorbar": {"title": {"text": "best val_acc"}, "tickformat": ".3f", "x": 1.08}},
        }],
        "layout": {"height": 460, "margin": {"l": 70, "r": 160, "t": 100, "b": 40},
                   "title": {"text": "best val_acc over the swept quantities (drag along an axis to select)"}},
    }
    return Parallel(figure, left_out=int((~drawn).sum()))
