"""The report's table: the summary's columns, one row per run, sortable in the page.

Each cell carries its sort value (`data-v`: the number, or the label's place in the
post's order) beside the text it shows, so that the page's script sorts numbers as
numbers and a missing value last. The threshold cells of a run that reached the
threshold are marked; a run that never did has them empty and a row class of its
own. Every label links to its run's section.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from results.report.columns import SUMMARY
from results.report.columns import column as glossary_column
from results.report.tables import REACHED, format_summary

#: The columns shown, in order: the summary's, with the run's state after its label.
COLUMNS = ("label", "state", *(name for name in SUMMARY[1:] if name != REACHED))
_THRESHOLD_CELLS = ("threshold_epoch", "val_acc_at_threshold", "acc_at_threshold")
_TEXT = ("label", "state", "lr_schedule", "comment")


def _title(name: str, threshold: float) -> str:
    """A column's tooltip: its meaning from the glossary, and the post's header."""
    if name == "state":
        return "the run's state"
    definition = glossary_column(name)
    text = definition.description.replace("`", "").replace("the threshold", f"the threshold {threshold:g}")
    return text + (f" (the post's {definition.post})" if definition.post else "")


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


def table_html(table: pd.DataFrame, runs: pd.DataFrame, threshold: float) -> str:
    """The sortable `<table>` of a study.

    Args:
        table: the summary (`results.report.tables.summary_table`).
        runs: the raw table, row for row with `table` (`run_id`, `state`).
        threshold: the val_acc of `threshold_epoch`, for the header's tooltip.
    """
    text = format_summary(table)
    reached = table[REACHED].astype(bool).tolist()
    has_epochs = table["val_acc_best"].notna().tolist()
    head = "".join(
        f'<th scope="col" data-type="{"text" if c in _TEXT and c != "label" else "number"}"'
        f' title="{_attribute(_title(c, threshold))}">'
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
            if column == "label":
                label = table["label"].iloc[position]
                cells.append(
                    f'<th scope="row" data-v="{position}"><a href="#{run_anchor(run_id)}">'
                    f"{html.escape(str(label))}</a></th>"
                )
                continue
            if column == "state":
                cells.append(f'<td data-v="{_attribute(state)}">{html.escape(str(state))}</td>')
                continue
            shown = text[column].iloc[position]
            value = table[column].iloc[position]
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
