"""The report's table: the post's columns, one row per run, sortable in the page.

Each cell carries its sort value (`data-v`: the number, or the label's place in the
post's order) beside the text it shows, so that the page's script sorts numbers as
numbers and a missing value last. The threshold cells of a run that reached the
threshold are marked; a run that never did shows the post's `(47)` and a row class
of its own. Every label links to its run's section.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from results.report.tables import POST_COLUMNS, REACHED, format_post
from sweeps.notation import MEANINGS, SYMBOLS

#: The columns shown, in order: the post's, with the run's state after its label.
COLUMNS = ("#", "state", *POST_COLUMNS[1:])
_THRESHOLD_CELLS = ("epoch", "acc_val", "acc")
_TEXT = ("#", "state", "reduction model", "comment")
_TITLES = {
    "#": "the run's label; sorting restores the post's order",
    "epoch": "first epoch with val_acc at the threshold; (47): the highest 0.01 level reached instead",
    "acc_val": "val_acc at that epoch",
    "acc": "training accuracy at that epoch",
    "epo best": "epoch of the best val_acc",
    **{SYMBOLS[name]: meaning for name, meaning in MEANINGS.items()},
}


def run_anchor(run_id: Any) -> str:
    """The id of a run's section: its database id, never user text."""
    return f"run-{int(run_id)}"


def sort_value(value: Any) -> str:
    """A number as the page's script reads it back (`parseFloat`); empty when missing."""
    if value is None or isinstance(value, str) or pd.isna(value):
        return ""
    number = float(value)
    if math.isnan(number):
        return ""
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return repr(number)


def _attribute(text: Any) -> str:
    return html.escape(str(text), quote=True)


def table_html(post: pd.DataFrame, runs: pd.DataFrame, threshold: float) -> str:
    """The sortable `<table>` of a study.

    Args:
        post: the post's table (`results.report.tables.post_table`).
        runs: the raw table, row for row with `post` (`run_id`, `state`).
        threshold: the val_acc of the `epoch` column, for the header's tooltip.
    """
    text = format_post(post, marks=True)
    reached = post[REACHED].astype(bool).tolist()
    has_epochs = post["val acc best"].notna().tolist()
    head = "".join(
        f'<th scope="col" data-type="{"text" if c in _TEXT and c != "#" else "number"}"'
        f' title="{_attribute(_TITLES.get(c, c).replace("the threshold", f"the threshold {threshold:g}"))}">'
        f"<button type=\"button\">{html.escape(c)}</button></th>"
        for c in COLUMNS
    )
    rows = []
    for position, (run_id, state) in enumerate(zip(runs["run_id"], runs["state"], strict=True)):
        classes = ["run"]
        if has_epochs[position] and not reached[position]:
            classes.append("never")
        cells = []
        for column in COLUMNS:
            if column == "#":
                label = post["#"].iloc[position]
                cells.append(
                    f'<th scope="row" data-v="{position}"><a href="#{run_anchor(run_id)}">'
                    f"{html.escape(str(label))}</a></th>"
                )
                continue
            if column == "state":
                cells.append(f'<td data-v="{_attribute(state)}">{html.escape(str(state))}</td>')
                continue
            shown = text[column].iloc[position]
            value = post[column].iloc[position]
            sort = _attribute(value) if column in _TEXT else sort_value(value)
            mark = ""
            if column in _THRESHOLD_CELLS and shown:
                mark = ' class="reached"' if reached[position] else ' class="unreached"'
            cells.append(f'<td data-v="{sort}"{mark}>{html.escape(str(shown))}</td>')
        rows.append(f'<tr class="{" ".join(classes)}" data-state="{_attribute(state)}">{"".join(cells)}</tr>')
    return (
        '<table id="runs-table" class="sortable">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
