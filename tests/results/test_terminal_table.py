"""The terminal's table: at 80, 100 and 200 columns no number is split across lines."""

from __future__ import annotations

import io
import math
import re

import pandas as pd
import pytest
from rich.console import Console

from results.report.tables import format_summary, post_table, raw_table, summary_table
from results.report.terminal import fitted_table, priority, shown_columns

pytestmark = pytest.mark.timeout(60)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _grid(labels: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A 4 × 3 λ/α grid as the run and epoch frames: m constant, one run never at 0.92,
    one diverged (NaN), one without epochs."""
    runs, epochs = [], []
    points = [(wd, lr) for wd in (0.05, 0.1, 0.2, 0.3) for lr in (4e-4, 8e-4, 1.6e-3)]
    for i, (wd, lr) in enumerate(points):
        label = labels[i] if labels else f"λ={wd:.2f} α={lr:.1e}".replace("e-0", "e-")
        runs.append(
            {
                "run_id": i + 1, "label": label, "comment": "as the post" if i == 1 else "",
                "shift": 0.07, "l2": 0.0, "weight_decay": wd, "ema_momentum": 0.98, "learning_rate": lr,
                "lr_schedule": f"[{lr:.1e}, 20][{lr / 10:.1e}, 40][{lr / 80:.1e}, 50]",
            }
        )
        if i == len(points) - 1:
            continue  # a run without epochs
        for epoch in range(1, 61):
            val_acc = min(0.9 + i * 0.0021, 0.5 + epoch * 0.0071 + i * 0.0013)
            if i == 4 and epoch == 30:
                val_acc = math.nan
            epochs.append(
                {
                    "run_id": i + 1, "epoch": epoch, "loss": 2.0 / epoch ** 1.7 + 1.3e-4 * i,
                    "acc": min(1.0, val_acc + 0.07), "val_loss": 0.3 + 1.0 / epoch + 0.0111 * i,
                    "val_acc": val_acc, "lr": lr, "seconds": 12.5,
                }
            )
    return pd.DataFrame(runs), pd.DataFrame(epochs)


def _render(frame: pd.DataFrame, width: int, study: str = "grid") -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(fitted_table(frame, width=width, study=study))
    return [ANSI.sub("", line).rstrip() for line in console.file.getvalue().splitlines()]


def _numeric(cell: str) -> bool:
    try:
        float(cell.strip("()"))
    except ValueError:
        return False
    return True


def assert_numbers_whole(frame: pd.DataFrame, text: pd.DataFrame, lines: list[str], width: int) -> list[str]:
    """Every line within `width`; every numeric cell of each shown column whole on one
    line, beside the other numbers of its run. Returns the columns shown."""
    assert lines and max(map(len, lines)) <= width, max(lines, key=len)
    shown = shown_columns(frame, width) or []
    blocks = not shown
    if not blocks:  # the header names the columns kept, in their order
        header = next(line for line in lines if line.split() and line.split()[0] in ("label", "#"))
        # Columns stand 3 apart; a header's own words 1 apart (the post's `val acc best`).
        found = [re.search(rf"(?:^|(?<=  )){re.escape(name)}(?=  |$)", header) for name in shown]
        assert None not in found, (shown, header)
        assert [m.start() for m in found] == sorted(m.start() for m in found), (shown, header)
    for _, row in text.iterrows():
        cells = [str(row[name]) for name in (text.columns if blocks else shown)]
        numbers = [cell for cell in cells if cell and _numeric(cell)]
        if blocks:  # one line per column: "name  value"
            for name in text.columns:
                cell = str(row[name])
                if cell and _numeric(cell):
                    assert any(line.split() == [name, cell] for line in lines), (name, cell)
            continue
        assert any(all(n in line.split() for n in numbers) for line in lines), (numbers, lines)
    return shown


@pytest.mark.parametrize("width", [80, 100, 200])
def test_the_summary_fits_and_no_number_is_split(width):
    runs, epochs = _grid()
    table = summary_table(runs, epochs)
    lines = _render(table, width)
    shown = assert_numbers_whole(table, format_summary(table), lines, width)
    # The label, the swept λ and α, best val_acc and the threshold epoch always fit.
    assert shown[:5] == ["label", "weight_decay", "learning_rate", "val_acc_best", "threshold_epoch"]
    left_out = [name for name in priority(table) if name not in shown]
    if width < 200:
        assert left_out
    if left_out:  # named, with the commands that show them
        hint = " ".join(lines[-4:])
        assert "Not shown" in hint and left_out[0] in hint
        assert "sweep export grid --format csv" in hint and "--style raw" in hint
    # A setting that is the same for every run (m) comes after the swept ones and the metrics.
    assert priority(table).index("ema_momentum") > priority(table).index("val_loss_min")


@pytest.mark.parametrize("width", [80, 100, 200])
def test_a_never_reached_threshold_is_blank_and_the_posts_table_fits_too(width):
    runs, epochs = _grid()
    table = summary_table(runs, epochs)
    text = format_summary(table)
    unreached = text[~table["threshold_reached"]]
    assert len(unreached) >= 2 and (unreached["threshold_epoch"] == "").all()
    lines = _render(table, width)
    first = next(line for line in lines if line.startswith(unreached["label"].iloc[0].split()[0]))
    assert unreached["val_acc_best"].iloc[0] in first.split()
    post = post_table(runs, epochs)
    from results.report.tables import format_post

    assert_numbers_whole(post, format_post(post), _render(post, width), width)


@pytest.mark.parametrize("width", [80, 100, 200])
def test_the_raw_table_fits(width):
    runs, epochs = _grid()
    raw = raw_table(runs, epochs)
    from results.report.tables import stringify

    assert_numbers_whole(raw, stringify(raw), _render(raw, width), width)


def test_long_labels_wrap_at_their_spaces_and_keep_the_numbers_whole():
    # A 9-key grid makes labels of 87 characters: they wrap, the numbers do not.
    labels = [f"λ=0.{i:02d} α=8.e-4 m=0.98 shift=0.07 l2=0.0 depth=20 batch_size=128 seed={i} epochs=60"
              for i in range(12)]
    runs, epochs = _grid(labels)
    table = summary_table(runs, epochs)
    lines = _render(table, 80)
    shown = assert_numbers_whole(table, format_summary(table), lines, 80)
    assert shown[:4] == ["label", "weight_decay", "learning_rate", "val_acc_best"]
    assert any(line.startswith("λ=0.00 α=8.e-4") for line in lines)


def test_a_label_too_long_for_any_table_gives_one_block_per_run():
    labels = [f"run-{i}-" + "x" * 70 for i in range(12)]
    runs, epochs = _grid(labels)
    table = summary_table(runs, epochs)
    lines = _render(table, 80)
    assert max(map(len, lines)) <= 80
    assert lines[0] == labels[0] and any(line.split()[:1] == ["threshold_epoch"] for line in lines)
    text = format_summary(table)
    for name in ("val_acc_best", "epoch_best", "learning_rate"):
        assert any(line.split() == [name, text[name].iloc[0]] for line in lines)


def test_sweep_export_to_a_terminal_respects_columns(post_study, monkeypatch, capsys):
    """No --format and no --output, stdout a terminal: the table fitted to COLUMNS;
    to a pipe, or with --format, the full table."""
    from sweep_runner.cli import main

    url, study, _ = post_study

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for width in (80, 100):
        monkeypatch.setenv("COLUMNS", str(width))
        terminal = Terminal()
        monkeypatch.setattr("sys.stdout", terminal)
        assert main(["export", study, "--storage", url]) == 0
        lines = [ANSI.sub("", line).rstrip() for line in terminal.getvalue().splitlines()]
        assert max(map(len, lines)) <= width and "val_acc_best" in lines[0]
        assert f"sweep export {study} --format csv" in " ".join(lines)
        monkeypatch.undo()
    monkeypatch.setenv("COLUMNS", "80")
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    assert main(["export", study, "--storage", url, "--format", "md"]) == 0
    assert terminal.getvalue().startswith("| label | threshold_epoch |")
    monkeypatch.undo()
    assert main(["export", study, "--storage", url]) == 0  # captured: not a terminal
    assert capsys.readouterr().out.startswith("| label | threshold_epoch |")
