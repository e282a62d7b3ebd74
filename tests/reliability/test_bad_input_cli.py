"""Bad input the CLI once met with a traceback (issue 20): each is one line, exit status 2,
before anything is written. Labels and comments, seeds, `[search]` choices, database
errors, long names, revisions, in-memory URLs; an early Ctrl-C and a closed stdout."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reliability_support import ROOT, snapshot
from test_bad_input import SWEEP, one_line, refused, write_sweep

from sweeps.limits import MAX_LABEL_CHARS


def _runs_file(folder: Path, run: str, name: str = "q") -> Path:
    text = SWEEP.format(name=name, train="").replace("[space]\nweight_decay = [0.05, 0.2]\n", "") + "[[runs]]\n" + run
    return write_sweep(folder, name, text=text)


# -- sweep files ----------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "run, says",
    [
        ('label = "a\\u0000b"\n', ("runs[0].label", "control characters U+0000", "printable text")),
        ('label = "a\\u001b[31mb"\n', ("runs[0].label", "U+001B")),
        ('label = "a\\nb"\n', ("runs[0].label", "U+000A")),
        ('label = "1"\ncomment = "x\\u0000"\n', ("runs[0].comment", "U+0000", "tabs and line breaks allowed")),
        (f'label = "{"y" * (MAX_LABEL_CHARS + 1)}"\n', ("runs[0].label", "1,001 characters", "at most 1,000")),
        ('label = "1"\nseed = 4294967296\n', ("runs[0].seed", "must be < 4294967296")),
    ],
    ids=["nul", "escape", "newline", "comment-nul", "too-long", "seed"],
)
def test_labels_comments_and_seeds_are_checked_before_anything_is_written(tmp_path, sweep, run, says):
    sweep_file = _runs_file(tmp_path, run)
    refused(sweep, tmp_path, "check", str(sweep_file), says=("q.toml", *says))
    refused(sweep, tmp_path, "run", str(sweep_file), says=("q.toml", *says))


@pytest.mark.timeout(60)
def test_a_comment_may_hold_tabs_and_line_breaks(tmp_path, sweep):
    sweep_file = _runs_file(tmp_path, 'label = "1"\ncomment = """two\n\tlines"""\n')
    assert sweep("check", str(sweep_file))[0] == 0


@pytest.mark.timeout(60)
def test_a_sampler_seed_out_of_range(tmp_path, sweep):
    text = SWEEP.format(name="q", train="").replace(
        "[space]\nweight_decay = [0.05, 0.2]\n",
        "[search]\nn_trials = 2\nseed = 4294967296\n[search.space]\nweight_decay = {low = 0.01, high = 0.1}\n",
    )
    refused(sweep, tmp_path, "check", str(write_sweep(tmp_path, text=text)), says=("search.seed", "< 4294967296"))


SEARCH = """name = "q"
[train]
dataset = "digits"
depth = 11
epochs = 30
[search]
n_trials = 4
[search.space]
{space}
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "space, says",
    [
        (
            'learning_rate = {low = 1e-4, high = 1e-2, log = true}\n'
            'schedule = {choices = ["[8.e-4, 10][8.e-5, 20]", {breakpoints = "[1, 10][0.1, 20]", relative = true}]}',
            ("search.space.schedule.choices[0]", "an absolute schedule must start at learning_rate", "relative = true"),
        ),
        (
            'learning_rate = {choices = [8e-4, 1e-3]}\nschedule = {choices = ["[8.e-4, 10][8.e-5, 20]"]}',
            ("search.space.", "must start at learning_rate = 0.001, got 0.0008", "drawn with"),
        ),
    ],
    ids=["absolute-schedule-with-searched-lr", "choices-against-choices"],
)
def test_search_choices_are_checked_against_the_searched_keys(tmp_path, sweep, space, says):
    """Such a search once passed `check` and failed every trial that drew the pair."""
    sweep_file = write_sweep(tmp_path, text=SEARCH.format(space=space))
    refused(sweep, tmp_path, "check", str(sweep_file), says=says)
    relative = SEARCH.format(space='learning_rate = {low = 1e-4, high = 1e-2, log = true}\n'
                             'schedule = {choices = [{breakpoints = "[1, 10][0.1, 20]", relative = true}]}')
    assert sweep("check", str(write_sweep(tmp_path, "ok", text=relative.replace('"q"', '"ok"'))))[0] == 0


@pytest.mark.timeout(60)
def test_an_unknown_key_in_a_schedule_table_names_what_is_allowed(tmp_path, sweep):
    sweep_file = write_sweep(tmp_path, train='schedule = {breakpoints = "[1.e-3, 1]", relativ = true}')
    refused(sweep, tmp_path, "check", str(sweep_file), says=("train.schedule.relativ", "did you mean 'relative'"))
    sweep_file = write_sweep(tmp_path, train='schedule = {breakpoints = "[1.e-3, 1]", zzz = 1}')
    line = one_line(sweep("check", str(sweep_file))[2])
    assert line.endswith("unknown key 'zzz'; allowed: breakpoints, relative"), line


# -- storage ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(60)
def test_a_postgresql_server_that_refuses_connections(tmp_path, sweep):
    url = f"postgresql+psycopg://me:secret@127.0.0.1:{_free_port()}/sweeps"
    sweep_file = write_sweep(tmp_path)
    for argv in (["run", str(sweep_file)], ["resume", "q"], ["status"], ["export", "q"], ["db", "current"]):
        before = snapshot(tmp_path)
        code, _, err = sweep(*argv, "--storage", url)
        assert code == 2, err
        line = one_line(err, "--storage postgresql+psycopg://me:***@127.0.0.1", "Connection refused")
        assert "secret" not in line
        assert snapshot(tmp_path) == before


def _malformed(path: Path) -> None:
    """The study's database with every page past the first (the schema) overwritten."""
    data = bytearray(path.read_bytes())
    assert len(data) > 4096 * 4
    data[4096:] = b"\xff" * (len(data) - 4096)
    path.write_bytes(bytes(data))


@pytest.mark.timeout(60)
def test_a_malformed_sqlite_file(study_db, sweep):
    folder, url = study_db
    _malformed(folder / "sweeps.db")
    sweep_file = write_sweep(folder, "s", text=SWEEP.format(name="s", train=""))
    for argv in (["run", str(sweep_file)], ["status"], ["export", "s"], ["resume", "s"]):
        refused(sweep, folder, *argv, "--storage", url, says=("sweeps.db", "malformed", "backup"))


@pytest.mark.timeout(60)
def test_sqlite_uri_file_names_are_refused(tmp_path, sweep):
    sweep_file = write_sweep(tmp_path)
    for url in ("sqlite:///file::memory:", "sqlite:///file::memory:?cache=shared", "sqlite:///file:x.db?mode=ro"):
        refused(sweep, tmp_path, "run", str(sweep_file), "--storage", url, says=("--storage", "sqlite:///FILE.db"))
        refused(sweep, tmp_path, "status", "--storage", url, says=("--storage", "sqlite:///FILE.db"))


@pytest.mark.timeout(60)
def test_db_upgrade_to_an_unknown_revision(study_db, sweep):
    folder, url = study_db
    for action in ("upgrade", "stamp"):
        refused(sweep, folder, "db", action, "nosuch", "--storage", url,
                says=("sweep db", "nosuch: unknown revision", "known: head"))


# -- names --------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_output_names_over_255_bytes(study_db, sweep):
    folder, url = study_db
    long = str(folder / ("a" * 300))
    for argv, flag in (
        (["export", "s", "--output", f"{long}.csv"], "--output"),
        (["report", "s", "--output", f"{long}.html"], "--output"),
        (["plot", "s", "--output", long], "--output"),
        (["status", "--storage", f"sqlite:///{long}.db"], "file name too long"),
    ):
        storage = [] if "--storage" in argv else ["--storage", url]
        refused(sweep, folder, *argv, *storage, says=(flag, "255 bytes"))
    sweep_file = write_sweep(folder)
    for argv in (["--report", f"{long}.html"], ["--checkpoints", long], ["--checkpoints", f"{long}/x"]):
        refused(sweep, folder, "run", str(sweep_file), "--storage", url, *argv, says=(argv[0], "255 bytes"))


# -- early Ctrl-C ------------------------------------------------------------------------


def _interpreter_start() -> float:
    """Seconds this machine's Python takes to start and import the CLI module: a
    signal before then meets the interpreter's own start-up, not the command."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(2):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import runpy, sweep_runner.cli"], cwd=ROOT, env=env, check=True)
        times.append(time.monotonic() - started)
    return max(times)


def _as_a_shell_starts_it() -> None:
    """SIGINT at its default and unblocked in the command, whatever this test process
    inherited (a background job's SIGINT is ignored, and exec keeps that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _wait_for_library(pid: int, name: str) -> None:
    """Returns once the process has mapped a file whose path holds `name` (its import
    has begun), or has ended."""
    maps = Path(f"/proc/{pid}/maps")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if name in maps.read_text():
                return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.01)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("argv", [["check", "sweeps/quickstart.toml"], ["status"], ["model", "--depth", "11"]])
def test_ctrl_c_in_the_first_second_is_quiet(tmp_path, argv):
    """SIGINT during a command's imports: exit status 130, no traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = _interpreter_start()
    interrupted = 0
    for delay in (0.05, 0.4, 0.8):
        storage = ["--storage", f"sqlite:///{tmp_path}/x.db"] if argv == ["status"] else []
        process = subprocess.Popen(
            [sys.executable, "-m", "sweep_runner", *argv, *storage],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_as_a_shell_starts_it,
        )
        if argv[0] == "model":  # the signal lands inside TensorFlow's import, however slow the machine
            _wait_for_library(process.pid, "tensorflow")
            time.sleep(delay)
        else:
            time.sleep(1.5 * start + delay)  # a margin: a loaded machine starts Python unevenly
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
        if process.returncode in (0, 2):
            continue  # it had finished (or refused its input) before the signal
        if process.returncode == -signal.SIGINT:
            # Past the start-up margin, only the interpreter's shutdown has SIGINT at its
            # default (CPython restores it while finalizing): the command had ended.
            assert "Traceback" not in err, err
            continue
        interrupted += 1
        assert process.returncode == 130, (delay, process.returncode, err)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert interrupted or argv[0] != "model"  # TensorFlow's import takes seconds: always caught


# -- a closed stdout -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_closed_pipe_stops_the_printing_not_the_command():
    from sweep_runner.pipes import StopPrintingWhenClosed

    read, write = os.pipe()
    stream = os.fdopen(write, "w", buffering=1)
    os.close(read)  # `| head` has exited
    wrapped = StopPrintingWhenClosed(stream)
    assert wrapped.write("first line\n") == len("first line\n")  # no BrokenPipeError
    wrapped.flush()
    assert wrapped.reader_gone
    wrapped.write("and the rest\n")  # dropped, quietly
    stream.close()  # its descriptor now points at /dev/null: the last flush is quiet too
