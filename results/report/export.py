"""Tables as text: CSV, Markdown, HTML, LaTeX and JSON, and where the text goes.

Markdown, HTML and LaTeX are for reading: each column in its format
(`results.report.columns`), or with `--style post` the post's headers, number formats
and `(47)` for a run that never reached the threshold. CSV and JSON are for the next
analysis: snake_case names, full precision, `threshold_epoch` empty (null) for a run
that never reached the threshold; they read back (`pandas.read_csv`, `json.loads`) to
the table's values.
"""

from __future__ import annotations

import html
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from results.report.outputs import refuse_file, write_output
from results.report.columns import EPOCHS, RUN_COLUMNS
from results.report.tables import POST_COLUMNS, format_post, format_summary, looks_numeric, stringify

FORMATS = ("csv", "md", "html", "latex", "json")
#: `summary`: the post's columns by their names; `post`: the post's headers and
#: number formats, for the paper's tables; `raw`: every metric and setting.
STYLES = ("summary", "post", "raw")
#: The formats for reading; CSV and JSON are for the next analysis.
READING = ("md", "html", "latex")
_TEXT = {"#", "reduction model", *(c.name for c in (*RUN_COLUMNS, *EPOCHS) if c.format == "text")}


def summary_text(table: pd.DataFrame, format: str) -> str:
    """A `summary_table` frame in a format: for reading in each column's format, CSV
    and JSON at full precision (`threshold_epoch` empty, null, for a run that never
    reached the threshold)."""
    if format in READING:
        return _RENDERERS[format](format_summary(table))
    return frame_text(table, format)


def post_text(table: pd.DataFrame, format: str) -> str:
    """A `post_table` frame in a format for reading (md, html, latex): the post's
    headers and number formats, `(47)` for a run that never reached the threshold.

    Raises:
        ValueError: CSV or JSON, whose column names have no spaces or Greek letters
            (`summary_text` has the same columns, named).
    """
    if format not in READING:
        raise ValueError(f"the post's headers are for {', '.join(READING)}, not {format}")
    return _RENDERERS[format](format_post(table, marks=True))


def frame_text(frame: pd.DataFrame, format: str) -> str:
    """Any frame (the raw table, the epoch table) in a format, at full precision."""
    if format in ("md", "html", "latex"):
        return _RENDERERS[format](stringify(frame))
    if format == "csv":
        plain = frame.copy()
        for column in plain.columns:
            if isinstance(plain[column].dtype, pd.DatetimeTZDtype):
                plain[column] = plain[column].map(lambda t: "" if pd.isna(t) else t.isoformat())
        return csv_safe(plain).to_csv(index=False)
    return _json(
        [{column: _json_value(value) for column, value in row.items()} for row in frame.to_dict("records")]
    )


# A spreadsheet reads a cell that begins with one of these as a formula (or, for tab
# and carriage return, strips them and reads what follows): OWASP's CSV injection.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: `'` before a leading `=`, `+`, `-`, `@`,
    tab or carriage return (OWASP), unless the text is a number such as `-0.5`.

    A carriage return inside the text becomes a line feed: the CSV writer quotes a
    cell with a line feed, but not one with a lone carriage return, which readers
    take for the end of the row.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_STARTS):
        try:
            float(value)
        except ValueError:
            value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell passed through `csv_cell`."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(csv_cell)
    return safe


def _json_value(value: Any) -> Any:
    if value is None or (not isinstance(value, (str, list, dict)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json(records: list[dict[str, Any]]) -> str:
    return json.dumps(records, ensure_ascii=False, indent=1, allow_nan=False) + "\n"


# -- renderers of text frames --------------------------------------------------------


def markdown(text: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; numeric columns right-aligned."""

    def cell(value: Any) -> str:
        return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in text.columns) + " |"
    rule = "| " + " | ".join("---:" if _numeric(text, c) else "---" for c in text.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in text.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def html_table(text: pd.DataFrame) -> str:
    """An HTML `<table>`, cells escaped."""
    lines = ["<table>", "  <thead>", "    <tr>"]
    lines += [f"      <th>{html.escape(str(c))}</th>" for c in text.columns]
    lines += ["    </tr>", "  </thead>", "  <tbody>"]
    for row in text.itertuples(index=False):
        lines.append("    <tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>")
    lines += ["  </tbody>", "</table>"]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "λ": r"$\lambda$",
    "α": r"$\alpha$",
    "η": r"$\eta$",
    "Δ": r"$\Delta$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "×": r"$\times$",
    "–": "--",
    "—": "---",
    "…": r"\ldots{}",
    "·": r"$\cdot$",
}


def latex_escape(value: Any) -> str:
    """Text safe inside a LaTeX tabular, Greek letters as math."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(value))


def latex(text: pd.DataFrame) -> str:
    """A LaTeX `tabular` (no package needed)."""
    spec = "".join("r" if _numeric(text, c) else "l" for c in text.columns)
    lines = [f"\\begin{{tabular}}{{{spec}}}", r"\hline"]
    lines.append(" & ".join(latex_escape(c) for c in text.columns) + r" \\")
    lines.append(r"\hline")
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in text.itertuples(index=False)]
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _numeric(text: pd.DataFrame, column: Any) -> bool:
    return column not in _TEXT and looks_numeric(text[column])


_RENDERERS = {"md": markdown, "html": html_table, "latex": latex}


def check_output(output: str | None, *, protected: Iterable[Path] = ()) -> Path | None:
    """The output file, checked before anything is computed or written.

    Args:
        output: the `--output` value; None or `-` for stdout.
        protected: the storage database and its side files, never to be written.

    Raises:
        InputError: it is a database, a folder or a special file, or its folder is
            missing or not writable (`results.report.outputs.refuse_file`).
    """
    if output is None or output == "-":
        return None
    refuse_file(output, protected=protected)
    return Path(output)


def write_text(text: str, path: Path | None) -> None:
    """Writes to `path` whole or not at all (a temporary file renamed), else stdout."""
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_output(path, text)


__all__ = [
    "FORMATS",
    "POST_COLUMNS",
    "READING",
    "STYLES",
    "check_output",
    "frame_text",
    "post_text",
    "summary_text",
    "write_text",
]
