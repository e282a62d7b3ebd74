"""Which value of each swept quantity did best: for every value, the best and the mean
of the runs' best val_acc over everything else that was swept (the post's "which λ
was best?" without reading the grid cell by cell).

A run without a finite best val_acc (not started, or diverged before its first epoch)
counts in neither; a value none of whose runs has one shows no point.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from results.report.figures import Figure, plot_text
from results.report.run_styles import key_name, ordered_values, value_text

_COLUMNS = 3  # panels per row
_ROW_HEIGHT = 300


def value_rows(runs: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per value of `key`: `value` (as the post writes it), `best`, `best_label`
    (the run that got it), `mean` and `runs` (how many runs have a best val_acc),
    in the values' order.

    Args:
        runs: the raw table (`label`, `val_acc_best`, the column `key`).
        key: a swept configuration key.
    """
    best = pd.to_numeric(runs["val_acc_best"], errors="coerce").astype("float64")
    finite = best.where(best.map(math.isfinite))
    rows = []
    for value in ordered_values(runs[key]):
        mask = runs[key].map(value_text) == value_text(value)
        scores = finite[mask].dropna()
        top = scores.idxmax() if len(scores) else None
        rows.append({
            "value": value_text(value),
            "best": float(scores.max()) if len(scores) else math.nan,
            "best_label": str(runs.loc[top, "label"]) if top is not None else "",
            "mean": float(scores.mean()) if len(scores) else math.nan,
            "runs": int(len(scores)),
        })
    return pd.DataFrame(rows, columns=["value", "best", "best_label", "mean", "runs"])


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def value_summary_figure(runs: pd.DataFrame, keys: list[str]) -> Figure | None:
    """A panel per swept quantity: best and mean best val_acc at each of its values.

    Args:
        runs: the raw table (`label`, `val_acc_best`, a column per swept key).
        keys: the swept configuration keys (`results.report.figures.swept_keys`).

    Returns:
        The figure, or None when no key is swept or no run has a best val_acc.
    """
    keys = [key for key in keys if key in runs.columns]
    tables = {key: value_rows(runs, key) for key in keys}
    if not keys or all(table["runs"].sum() == 0 for table in tables.values()):
        return None
    columns = min(_COLUMNS, len(keys))
    rows = math.ceil(len(keys) / columns)
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "grid": {"rows": rows, "columns": columns, "pattern": "independent", "roworder": "top to bottom"},
        "height": _ROW_HEIGHT * rows + 80, "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
        "title": {"text": "best val_acc at each value, over the other swept quantities"},
        "hovermode": "closest", "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
    }
    for panel, key in enumerate(keys, start=1):
        table = tables[key]
        suffix = "" if panel == 1 else str(panel)
        x = [plot_text(v) for v in table["value"]]
        name = plot_text(key_name(key))
        counts = [f"{n} run{'s' if n != 1 else ''}" for n in table["runs"]]
        for stat, colour, symbol in (("best", "#1f77b4", "circle"), ("mean", "#ff7f0e", "diamond")):
            extra = [plot_text(f"run {label}") for label in table["best_label"]] if stat == "best" else counts
            data.append({
                "type": "scatter", "mode": "lines+markers", "name": f"{stat} of the runs' best val_acc",
                "legendgroup": stat, "showlegend": panel == 1,
                "x": x, "y": [_number(v) for v in table[stat]], "customdata": extra,
                "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
                "line": {"color": colour, "width": 1.2, "dash": "solid" if stat == "best" else "dot"},
                "marker": {"color": colour, "symbol": symbol, "size": 9},
                "hovertemplate": f"{name} %{{x}}<br>{stat} val_acc %{{y:.5f}}<br>%{{customdata}}<extra></extra>",
            })
        layout[f"xaxis{suffix}"] = {"title": {"text": name}, "type": "category"}
        layout[f"yaxis{suffix}"] = {"title": {"text": "best val_acc"} if (panel - 1) % columns == 0 else {},
                                    **({"matches": "y"} if panel > 1 else {})}
    return {"data": data, "layout": layout}
