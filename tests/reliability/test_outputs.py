"""No output of any command destroys a result: `--output` is never the database,
another database or a special file; files are written whole, with the user's umask,
and a link stays a link."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from reliability_support import run_without_override, snapshot, write_study


def _one_line(err: str, *words: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.timeout(60)
def test_export_over_the_storage_database_is_refused(study_db, sweep):
    """`--output sweeps.db`, a typo for `sweeps.csv`: the results stay."""
    folder, url = study_db
    before = snapshot(folder)
    code, out, err = sweep("export", "s", "--storage", url, "--format", "csv", "--output", str(folder / "sweeps.db"))
    assert code == 2 and out == ""
    _one_line(err, "--output", "sweeps.db", "is the storage database")
    assert snapshot(folder) == before


@pytest.mark.timeout(60)
def test_export_through_a_link_to_the_database_or_its_journal_is_refused(study_db, sweep):
    folder, url = study_db
    (folder / "table.csv").symlink_to("sweeps.db")
    before = snapshot(folder)
    for output in ("table.csv", "sweeps.db-wal", "sweeps.db-journal"):
        code, _, err = sweep("export", "s", "--storage", url, "--output", str(folder / output))
        assert code == 2
        _one_line(err, output, "is the storage database")
    assert snapshot(folder) == before


@pytest.mark.timeout(60)
def test_export_over_another_database_is_refused(study_db, sweep, tmp_path):
    folder, url = study_db
    other = tmp_path / "other.db"
    write_study(f"sqlite:///{other}", "t")
    before, before_other = snapshot(folder), other.read_bytes()
    code, _, err = sweep("export", "s", "--storage", url, "--output", str(other))
    assert code == 2
    _one_line(err, str(other), "is a SQLite database")
    assert other.read_bytes() == before_other and snapshot(folder) == before


@pytest.mark.timeout(60)
def test_export_to_a_folder_a_fifo_or_a_device_is_refused(study_db, sweep):
    folder, url = study_db
    os.mkfifo(folder / "pipe")
    (folder / "sub").mkdir()
    before = snapshot(folder)
    for output, says in ((folder / "pipe", "is a FIFO"), (folder / "sub", "is a folder"), ("/dev/null", "is a device")):
        code, _, err = sweep("export", "s", "--storage", url, "--output", str(output))
        assert code == 2
        _one_line(err, str(output), says)
    assert snapshot(folder) == before


@pytest.mark.timeout(60)
def test_plot_into_the_database_or_over_it_through_a_link_is_refused(study_db, sweep):
    folder, url = study_db
    code, _, err = sweep("plot", "s", "--storage", url, "--output", str(folder / "sweeps.db"))
    assert code == 2
    _one_line(err, "sweeps.db", "is the storage database")
    plots = folder / "plots"
    plots.mkdir()
    (plots / "s-heatmaps.png").symlink_to(folder / "sweeps.db")
    before = snapshot(folder)
    code, _, err = sweep("plot", "s", "--storage", url, "--output", str(plots))
    assert code == 2
    _one_line(err, "s-heatmaps.png", "is the storage database")
    assert snapshot(folder) == before


@pytest.mark.timeout(60)
def test_an_output_gets_the_users_umask_and_keeps_an_existing_mode(study_db, sweep):
    folder, url = study_db
    old = os.umask(0o027)
    try:
        assert sweep("export", "s", "--storage", url, "--format", "csv", "--output", str(folder / "a.csv"))[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((folder / "a.csv").stat().st_mode) == 0o640
    (folder / "b.csv").write_text("old\n")
    (folder / "b.csv").chmod(0o604)
    assert sweep("export", "s", "--storage", url, "--format", "csv", "--output", str(folder / "b.csv"))[0] == 0
    assert stat.S_IMODE((folder / "b.csv").stat().st_mode) == 0o604
    assert len(pd.read_csv(folder / "b.csv")) == 2
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.timeout(60)
def test_an_output_link_stays_a_link_and_its_target_is_written(study_db, sweep):
    folder, url = study_db
    (folder / "tables").mkdir()
    target = folder / "tables" / "latest.csv"
    target.write_text("old\n")
    link = folder / "latest.csv"
    link.symlink_to(target)
    assert sweep("export", "s", "--storage", url, "--format", "csv", "--output", str(link))[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert pd.read_csv(target)["label"].astype(str).tolist() == ["1", "2"]


@pytest.mark.timeout(120)
def test_an_unwritable_output_folder_is_one_line_and_nothing_written(tmp_path):
    folder = tmp_path
    write_study(f"sqlite:///{folder / 'sweeps.db'}")
    out = folder / "out"
    out.mkdir(mode=0o555)
    out.chmod(0o555)
    before = snapshot(folder)
    result = run_without_override(["export", "s", "--storage", "sqlite:///sweeps.db", "--output", "out/t.csv"], folder)
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr, "--output out/t.csv", "is not writable")
    assert snapshot(folder) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("style", ["summary", "raw"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path, sweep, style):
    """OWASP: a leading `=`, `+`, `-`, `@`, tab or CR gets a `'`; numbers stay numbers."""
    import csv

    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    labels = ("=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "3A")
    write_study(url, labels=labels, comment="=cmd|' /C calc'!A0")
    output = tmp_path / "table.csv"
    code, _, err = sweep("export", "s", "--storage", url, "--format", "csv", "--style", style, "--output", str(output))
    assert code == 0, err
    with open(output, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    first = "label"
    quoted = ["'" + label.replace("\r", "\n") for label in labels[:-1]]  # a CR would end the row
    assert sorted(row[first] for row in rows) == sorted([*quoted, "3A"])
    assert {row["comment"] for row in rows} == {"'=cmd|' /C calc'!A0"}
    cells = [cell for row in rows for cell in row.values()]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@", "\t", "\r")]
    negative = [cell for cell in cells if cell.startswith("-")]
    assert all(float(cell) < 0 for cell in negative)  # a negative number is not quoted


@pytest.mark.timeout(60)
def test_a_report_page_that_links_to_the_database_or_is_a_fifo_is_refused(study_db, sweep):
    folder, url = study_db
    (folder / "page.html").symlink_to(folder / "sweeps.db")
    os.mkfifo(folder / "pipe.html")
    before = snapshot(folder)
    for page, says in (("page.html", "database"), ("pipe.html", "is a FIFO")):
        code, _, err = sweep("report", "s", "--storage", url, "--output", str(folder / page))
        assert code == 2
        _one_line(err, page, says)
    assert snapshot(folder) == before
