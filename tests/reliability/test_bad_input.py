"""Bad input gets one line naming the file, the key and what is allowed, exit status 2,
before anything is written: storage files, flags, names and sweep files."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from reliability_support import run_without_override, snapshot

SWEEP = """name = "{name}"
[train]
dataset = "digits"
depth = 11
epochs = 1
train_size = 64
validation_size = 64
{train}
[space]
weight_decay = [0.05, 0.2]
"""


def write_sweep(folder: Path, name: str = "q", train: str = "", text: str | None = None) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text if text is not None else SWEEP.format(name=name, train=train), encoding="utf-8")
    return path


def one_line(err: str, *words: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def refused(sweep, folder: Path, *argv: str, says: tuple[str, ...]) -> None:
    """The command exits 2 with one line saying `says`, and `folder` is unchanged."""
    before = snapshot(folder)
    code, out, err = sweep(*argv)
    assert code == 2, (out, err)
    one_line(err, *says)
    assert snapshot(folder) == before


# -- the storage -------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "content, says",
    [(b"label,val_acc\n3A,0.93\n", "is not a SQLite database"), (b"", "is an empty file")],
    ids=["not-a-database", "empty"],
)
def test_a_storage_file_that_is_not_a_database(tmp_path, sweep, content, says):
    sweep_file = write_sweep(tmp_path)
    (tmp_path / "results.db").write_bytes(content)
    url = f"sqlite:///{tmp_path / 'results.db'}"
    for argv in (["run", str(sweep_file)], ["resume", "q"], ["export", "q"], ["status"], ["plot", "q"]):
        refused(sweep, tmp_path, *argv, "--storage", url, says=("results.db", says))


@pytest.mark.timeout(60)
def test_a_database_made_by_plain_optuna_names_its_studies(tmp_path, sweep):
    import optuna

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mnist", "cifar"):
        optuna.create_study(study_name=name, storage=url)
    sweep_file = write_sweep(tmp_path)
    for argv in (["run", str(sweep_file)], ["resume", "mnist"], ["export", "mnist"], ["status"]):
        refused(sweep, tmp_path, *argv, "--storage", url, says=("plain Optuna", "cifar, mnist"))


@pytest.mark.timeout(60)
def test_an_in_memory_storage_is_refused(tmp_path, sweep):
    sweep_file = write_sweep(tmp_path)
    for url in ("sqlite://", "sqlite:///:memory:"):
        refused(sweep, tmp_path, "run", str(sweep_file), "--storage", url, says=("in-memory", "sqlite:///FILE.db"))


def _read_only_copy(study_db, tmp_path: Path, *, journal: str) -> Path:
    import optuna

    folder, url = study_db
    # The study's own threshold lives in Optuna's tables, which the reading commands read too.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="s", storage=url).set_user_attr("report_threshold", 0.6)
    copy = tmp_path / "copy"
    copy.mkdir()
    source, target = sqlite3.connect(folder / "sweeps.db"), sqlite3.connect(copy / "sweeps.db")
    source.backup(target)  # a consistent copy, whatever Optuna still holds open
    target.execute(f"PRAGMA journal_mode = {journal}")
    source.close()
    target.close()  # the last connection: a WAL is checkpointed and removed
    (copy / "sweeps.db").chmod(0o444)
    copy.chmod(0o555)
    return copy


@pytest.mark.timeout(120)
@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_read_only_database_is_read_but_never_written(study_db, tmp_path, journal):
    copy = _read_only_copy(study_db, tmp_path, journal=journal)
    before = snapshot(copy)
    exported = run_without_override(
        ["export", "s", "--storage", "sqlite:///sweeps.db", "--format", "csv", "--style", "raw"], copy
    )
    assert exported.returncode == 0, exported.stderr
    table = pd.read_csv(io.StringIO(exported.stdout), dtype={"label": str})
    assert table["label"].tolist() == ["1", "2"] and set(table["threshold"]) == {0.6}
    status = run_without_override(["status", "s", "--storage", "sqlite:///sweeps.db"], copy)
    assert status.returncode == 0 and "complete" in status.stdout, status.stderr
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text(SWEEP.format(name="s", train=""), encoding="utf-8")
    ran = run_without_override(["run", str(sweep_file), "--storage", "sqlite:///sweeps.db"], copy)
    assert ran.returncode == 2
    one_line(ran.stderr, "sweeps.db is read-only", "sweep export")
    assert snapshot(copy) == before  # same bytes, same journal mode, no -wal or -shm


@pytest.mark.timeout(60)
def test_reading_a_writable_database_leaves_it_as_it_was(study_db, sweep):
    """No switch to WAL, no schema created, no -wal or -shm left behind."""
    folder, url = study_db
    connection = sqlite3.connect(folder / "sweeps.db")
    connection.execute("PRAGMA journal_mode = delete")
    connection.close()
    before = snapshot(folder)
    assert sweep("export", "s", "--storage", url)[0] == 0
    assert sweep("status", "--storage", url)[0] == 0
    assert snapshot(folder) == before
    empty = folder / "empty.db"
    with sqlite3.connect(empty) as connection:
        connection.execute("PRAGMA user_version = 1")
    before = snapshot(folder)
    code, _, err = sweep("export", "s", "--storage", f"sqlite:///{empty}")
    assert code == 2 and "unknown study 's'" in err
    assert snapshot(folder) == before


@pytest.mark.timeout(120)
def test_an_unwritable_checkpoint_folder_is_refused_before_the_study_is_made(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    write_sweep(folder)
    (folder / "locked").mkdir(mode=0o555)
    (folder / "locked").chmod(0o555)
    before = snapshot(folder)
    result = run_without_override(["run", "q.toml", "--checkpoints", "locked/ck"], folder)
    assert result.returncode == 2
    one_line(result.stderr, "--checkpoints locked/ck", "is not writable")
    assert snapshot(folder) == before  # no sweeps.db either


@pytest.mark.timeout(60)
def test_a_checkpoint_folder_that_is_a_file_or_the_database(study_db, sweep):
    folder, url = study_db
    sweep_file = write_sweep(folder)
    for checkpoints, says in (("q.toml", "is a file"), ("sweeps.db", "is the storage database")):
        refused(
            sweep, folder, "run", str(sweep_file), "--storage", url, "--checkpoints", str(folder / checkpoints),
            says=("--checkpoints", says),
        )


# -- names and paths -----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_study_name_with_a_path_is_refused_before_anything_is_written(tmp_path, sweep):
    folder = tmp_path / "work"
    folder.mkdir()
    sweep_file = write_sweep(folder)
    url = f"sqlite:///{folder / 'sweeps.db'}"
    checkpoints = str(folder / "checkpoints")
    for name in ("../../x", "/etc/x", "a/b", ".hidden", ""):
        refused(
            sweep, tmp_path, "run", str(sweep_file), "--storage", url, "--checkpoints", checkpoints,
            "--new-study", name, says=("--new-study", repr(name), "letters, digits"),
        )
        refused(sweep, tmp_path, "resume", name, "--storage", url, says=(repr(name), "not a study name"))
    named = write_sweep(folder, "escape", text=SWEEP.format(name="../escape", train=""))
    refused(sweep, tmp_path, "run", str(named), "--storage", url, says=("escape.toml: name:", "'../escape'"))
    stem = write_sweep(folder, "my sweep", text="[train]\ndepth = 11\n")
    refused(sweep, tmp_path, "run", str(stem), "--storage", url, says=("'my sweep'", 'name = "…"'))


# -- sweep files -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_sweep_file_too_big_or_not_a_file(tmp_path, sweep):
    import os

    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1024 * 1024) + "\n")
    refused(sweep, tmp_path, "run", str(big), says=("big.toml", "at most 1,048,576 bytes"))
    os.mkfifo(tmp_path / "pipe.toml")
    refused(sweep, tmp_path, "check", str(tmp_path / "pipe.toml"), says=("pipe.toml", "not a plain file"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "train, says",
    [
        ('schedule = "[8.e-4, 20][nan, 40]"', ("train.schedule", "[nan, 40]", "finite")),
        ("schedule = [[8e-4, 0], [8e-5, inf]]", ("train.schedule.breakpoints[1][1]", "finite number, got inf")),
        ("weight_decay = nan", ("train.weight_decay", "finite number, got nan")),
    ],
    ids=["nan-in-notation", "inf-in-pairs", "nan-setting"],
)
def test_nan_or_inf_in_a_sweep_file_is_refused_before_the_study(tmp_path, sweep, train, says):
    folder = tmp_path / "work"
    folder.mkdir()
    sweep_file = write_sweep(folder, train=train)
    refused(sweep, tmp_path, "run", str(sweep_file), says=("q.toml", *says))


# -- workers and --max-trials ----------------------------------------------------------


@pytest.mark.timeout(60)
def test_more_workers_than_runs_or_cores_is_refused(tmp_path, sweep):
    import os

    sweep_file = write_sweep(tmp_path)
    refused(sweep, tmp_path, "run", str(sweep_file), "--workers", "3", says=("--workers: 3 workers for 2 runs", "at most 2"))
    refused(
        sweep, tmp_path, "run", str(sweep_file), "--gpus", "0,1", "--trials-per-gpu", "2",
        says=("--gpus × --trials-per-gpu: 4 workers for 2 runs",),
    )
    cores = len(os.sched_getaffinity(0))
    many = write_sweep(tmp_path, "many", text=SWEEP.format(name="many", train="").replace(
        "weight_decay = [0.05, 0.2]", f"seed = [{', '.join(map(str, range(4 * cores + 1)))}]"
    ))
    refused(
        sweep, tmp_path, "run", str(many), "--workers", str(4 * cores + 1),
        says=(f"{4 * cores + 1} workers on {cores} CPU core", f"at most {4 * cores}"),
    )


@pytest.mark.timeout(120)
def test_max_trials_0_only_creates_the_study_and_exits_0(tmp_path, sweep):
    from results.store.result_store import ResultStore

    sweep_file = write_sweep(tmp_path)
    code, out, err = sweep("run", str(sweep_file), "--max-trials", "0")
    assert code == 0, err
    one_line(err, "study q: 2 run(s) registered, none trained", "sweep worker q")
    with ResultStore("sqlite:///sweeps.db") as store:
        assert [run["state"] for run in store.runs("q")] == ["waiting", "waiting"]
    assert not (tmp_path / "checkpoints").exists()  # nothing trained, no worker started
    code, _, err = sweep("resume", "q", "--max-trials", "0")
    assert code == 0
    one_line(err, "study q: 2 run(s) registered")
