"""A line style per run for the report's overlays, so that every swept value can be told
apart on one plot: the colour follows one swept quantity, the dash and the marker a
second; with three or more swept quantities the two with the most values are styled
and the others are named in each line's hover (issue 20's decision).

Numeric quantities get colours in their order along a sequential scale (a larger λ is
further along it); text ones (schedules) a qualitative palette.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sweeps.notation import format_number
from sweeps.sweep_file import SYMBOLS

#: Dashes and markers of the second styled quantity; their pairs repeat only after 30 values.
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down", "pentagon",
           "hexagram")
#: The colour of a run whose value of the coloured quantity is not known (a search
#: trial not yet asked).
UNKNOWN = "#888888"
_QUALITATIVE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")


@dataclass(frozen=True)
class RunStyle:
    """How one run is drawn.

    Args:
        colour: the line's colour.
        dash: the line's dash.
        marker: the marker's symbol.
        name: the legend's name: the label, and the styled values the label does not say.
        values: every swept value of the run, as `λ 0.05 · α 8.e-4 · seed 1` (for the hover).
    """

    colour: str
    dash: str
    marker: str
    name: str
    values: str


@dataclass(frozen=True)
class Styling:
    """The styles of a study's runs.

    Args:
        colour_key: the quantity the colour follows (None when nothing is swept).
        dash_key: the quantity the dash and the marker follow.
        rest: the other swept quantities, named in the hover only.
        styles: run_id → its style.
    """

    colour_key: str | None
    dash_key: str | None
    rest: tuple[str, ...]
    styles: dict[int, RunStyle]

    def caption(self) -> str:
        """What the styles mean, in one line of plain text."""
        if self.colour_key is None:
            return "one colour per run"
        parts = [f"colour: {key_name(self.colour_key)}"]
        if self.dash_key is not None:
            parts.append(f"dash and marker: {key_name(self.dash_key)}")
        if self.rest:
            parts.append(f"named in the hover: {', '.join(key_name(k) for k in self.rest)}")
        return " · ".join(parts)


def post_order(keys: list[str]) -> list[str]:
    """Swept keys with the post's own first (λ, α, m), the others in the order given."""
    return sorted(keys, key=lambda key: list(SYMBOLS).index(key) if key in SYMBOLS else len(SYMBOLS))


def key_name(key: str) -> str:
    """A configuration key as the post writes it: `λ`, `α`, `m`, or the key itself."""
    return SYMBOLS.get(key, key)


def value_text(value: Any) -> str:
    """A setting's value as the post writes it (`8.e-4`, `0.10`); empty when missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        # An integer setting read back as a float (its column has a gap) stays an integer.
        return format_number(float(value)) if not float(value).is_integer() or abs(value) < 1 else str(int(value))
    return str(value)


def is_numeric(column: pd.Series) -> bool:
    """Whether a swept quantity's known values are all numbers (not booleans)."""
    known = column.dropna()
    return bool(len(known)) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in known
    )


def ordered_values(column: pd.Series) -> list[Any]:
    """The distinct known values of a quantity: numbers ascending, text as first seen."""
    known = list(dict.fromkeys(v for v in column if not _missing(v)))
    return sorted(known, key=float) if is_numeric(column) else known


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _sequential(count: int) -> list[str]:
    from plotly.colors import sample_colorscale

    # Plasma's last sixth is a yellow too pale to see on white.
    return sample_colorscale("Plasma", [0.85 * i / max(1, count - 1) for i in range(count)])


def _palette(column: pd.Series) -> dict[str, str]:
    values = ordered_values(column)
    colours = _sequential(len(values)) if is_numeric(column) else [
        _QUALITATIVE[i % len(_QUALITATIVE)] for i in range(len(values))
    ]
    return {value_text(v): colour for v, colour in zip(values, colours, strict=True)}


def run_styles(runs: pd.DataFrame, keys: list[str]) -> Styling:
    """A style per run from the swept quantities.

    Args:
        runs: the raw table (`run_id`, `label`, a column per swept key).
        keys: the swept configuration keys (`results.report.figures.swept_keys`), in the
            sweep's order; those without a column are left out.
    """
    keys = [key for key in keys if key in runs.columns]
    counts = {key: len(ordered_values(runs[key])) for key in keys}
    # The two with the most values (stable: the sweep's order breaks ties).
    ranked = sorted(keys, key=lambda key: -counts[key])
    colour_key = ranked[0] if ranked else None
    dash_key = ranked[1] if len(ranked) > 1 else None
    colours = _palette(runs[colour_key]) if colour_key else {}
    dashes = {value_text(v): i for i, v in enumerate(ordered_values(runs[dash_key]))} if dash_key else {}
    styles = {}
    for position, row in enumerate(runs.to_dict("records")):
        label = str(row.get("label", ""))
        colour = colours.get(value_text(row.get(colour_key)), UNKNOWN) if colour_key else _QUALITATIVE[
            position % len(_QUALITATIVE)]
        index = dashes.get(value_text(row.get(dash_key)), 0) if dash_key else 0
        styled = [key for key in (colour_key, dash_key) if key is not None]
        said = [f"{key_name(k)} {value_text(row.get(k))}" for k in styled
                if value_text(row.get(k)) and f"{key_name(k)}={value_text(row.get(k))}" not in label]
        styles[int(row["run_id"])] = RunStyle(
            colour=colour,
            dash=DASHES[index % len(DASHES)],
            marker=MARKERS[index % len(MARKERS)],
            name=f"{label} ({', '.join(said)})" if said else label,
            values=" · ".join(f"{key_name(k)} {value_text(row.get(k)) or '?'}" for k in keys),
        )
    return Styling(colour_key, dash_key, tuple(k for k in keys if k not in (colour_key, dash_key)), styles)

