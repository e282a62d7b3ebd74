"""Tables fitted to a terminal: at any width, numbers never wrap.

A table keeps the columns that fit whole, in the order of
`results.report.columns.TERMINAL_PRIORITY` (label, λ, α, best val_acc, threshold
epoch, …; a setting that is the same for every run after the rest), and names the
columns it leaves out with the command that shows them. Where not even the label and
the first three of them fit, it switches to one block per run. The full tables stay
in `sweep export --format …`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from rich import box
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from results.report.columns import METRICS, TERMINAL_PRIORITY, post_headers
from results.report.tables import as_text, is_post

#: The label and this many columns after it must fit, else one block per run.
ESSENTIAL = 4
#: The width between two columns (`box.SIMPLE_HEAD` without edges, one space of padding).
GAP = 3
_METRIC_NAMES = {c.name for c in METRICS} | {"label", "#"}


def priority(frame: pd.DataFrame) -> list[str]:
    """The frame's columns in the order a narrow terminal keeps them: the summary's
    (`TERMINAL_PRIORITY`, by the post's headers for the post's table), then the rest
    as given; a column other than a metric that is the same for every run (a setting
    not swept) after all of those."""
    names = dict(post_headers()) if is_post(frame) else {}
    ranked = [names.get(name, name) for name in TERMINAL_PRIORITY]
    order = [name for name in ranked if name in frame.columns]
    order += [name for name in frame.columns if name not in order]
    constant = _constants(frame, order)
    return [name for name in order if name not in constant] + constant


def _constants(frame: pd.DataFrame, order: Sequence[str]) -> list[str]:
    """The columns, metrics and the label aside, that hold one value for every run."""
    if len(frame) < 2:
        return []
    return [
        name
        for name in order
        if name not in _METRIC_NAMES and frame[name].astype(str).nunique(dropna=False) <= 1
    ]


def shown_columns(frame: pd.DataFrame, width: int) -> list[str] | None:
    """The columns of `frame` a table `width` wide keeps, in the order shown; None
    when not even the label and the first `ESSENTIAL - 1` columns after it fit (one
    block per run then)."""
    text = as_text(frame)
    order = [name for name in priority(frame) if name in text.columns]
    if not order:
        return []
    widths = {name: max([cell_len(str(name)), *(cell_len(str(v)) for v in text[name])]) for name in order}
    first = order[0]
    # The label may wrap at its spaces, the only column that may.
    shrunk = {**widths, first: max([cell_len(str(first)), *(_longest_word(str(v)) for v in text[first])])}
    constant = set(_constants(frame, order))
    for sizes in (widths, shrunk):
        kept = _pack(order, sizes, width, constant)
        if kept[:ESSENTIAL] == order[:ESSENTIAL]:
            return kept
    return None


def fitted_table(
    frame: pd.DataFrame, *, width: int, study: str | None = None, title: str | None = None
) -> RenderableType:
    """A table of runs (the summary, the post's, the raw or the epoch table) as a rich
    renderable no wider than `width`, numbers whole on one line.

    Args:
        frame: the table, as numbers (`results.report.tables`).
        width: the terminal's columns.
        study: the study's name, for the command that shows the columns left out.
        title: a title above the table.
    """
    text = as_text(frame)
    order = [name for name in priority(frame) if name in text.columns]
    kept = shown_columns(frame, width)
    if kept is None:
        return _blocks(text, order, title)
    if not kept:
        return Text("")
    table = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold",
        title_justify="left",
    )
    for name in kept:
        label = name == order[0]
        numeric = not label and (name in _METRIC_NAMES or _looks_numeric(text[name]))
        table.add_column(
            str(name), justify="right" if numeric else "left",
            no_wrap=not label, overflow="fold" if label else "ellipsis",
        )
    for row in text[kept].itertuples(index=False):
        table.add_row(*(str(cell) for cell in row))
    left_out = [name for name in order if name not in kept]
    if not left_out:
        return table
    return Group(table, Text(_hint(left_out, study), style="dim"))


def _pack(order: Sequence[str], widths: dict[str, int], width: int, constant: set[str]) -> list[str]:
    """The columns that fit in `width`, in order, each taken if it still fits; a
    constant one only while none before it was left out (a narrower, lower column
    should not take the place of a wider, more telling one)."""
    kept: list[str] = []
    used, skipped = -GAP, False
    for name in order:
        if used + GAP + widths[name] <= width and not (skipped and name in constant):
            kept.append(name)
            used += GAP + widths[name]
        else:
            skipped = True
    return kept


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def _looks_numeric(cells: pd.Series) -> bool:
    seen = False
    for cell in cells:
        cell = str(cell).strip("()")
        if cell:
            try:
                float(cell)
            except ValueError:
                return False
            seen = True
    return seen


def _hint(left_out: Sequence[str], study: str | None) -> str:
    name = study or "STUDY"
    shown = ", ".join(map(str, left_out[:6])) + (f" and {len(left_out) - 6} more" if len(left_out) > 6 else "")
    return (
        f"Not shown, for want of width: {shown}. Every column: sweep export {name} --format csv; "
        f"every metric and setting: sweep export {name} --style raw --format csv."
    )


def _blocks(text: pd.DataFrame, order: Sequence[str], title: str | None) -> RenderableType:
    """One block per run: its label, then a line per column."""
    parts: list[RenderableType] = [Text(title, style="bold")] if title else []
    first = order[0]
    for _, row in text.iterrows():
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        for name in order[1:]:
            grid.add_row(str(name), str(row[name]))
        parts += [Text(str(row[first]), style="bold"), grid, Text("")]
    return Group(*parts)


def print_fitted(frame: pd.DataFrame, *, study: str | None = None, width: int | None = None) -> None:
    """Prints a table fitted to the terminal on stdout.

    Args:
        frame: the table.
        study: the study's name, for the command that shows the columns left out.
        width: the columns to fit; default `COLUMNS`, else the terminal's width
            (rich's `Console`), else 80.
    """
    from rich.console import Console

    console = Console(width=width)
    console.print(fitted_table(frame, width=console.width, study=study))
