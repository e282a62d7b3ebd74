"""A quiet, honest start (issue 20): no TensorFlow log lines in a command's output (they
go to the run's log), a line from the first second of `sweep run`, each run's phase
before its first epoch, and a clear line when there is nothing to train."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reliability_support import ROOT
from results.store.result_store import ResultStore
from sweep_runner.monitor import Monitor
from sweep_runner.phases import PHASE_FILE, STARTING, read_phase, write_phase
from test_bad_input import write_sweep

#: A line TensorFlow's C++ logging writes (absl: `I0000 00:00:…`, `W1203 …`), or its
#: notice that absl is not initialised.
TENSORFLOW_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:|absl::InitializeLog|oneDNN custom operations", re.M)


def _sweep(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user has it
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "sweep_runner", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_pattern_sees_tensorflow_lines():
    line = "I0000 00:00:1796270823.819417   30737 port.cc:153] oneDNN custom operations are on."
    assert TENSORFLOW_LINE.search(f"run 1\n{line}\n")
    assert not TENSORFLOW_LINE.search("Epoch 1/1 - 3s - loss: 2.3 - acc: 0.2\n")


@pytest.mark.long
@pytest.mark.timeout(300)
def test_model_and_train_print_no_tensorflow_lines(tmp_path):
    model = _sweep(["model", "--depth", "11"], tmp_path)
    assert model.returncode == 0, model.stderr
    assert "ResNet11v2 at 32,32,3" in model.stdout
    assert not TENSORFLOW_LINE.search(model.stdout + model.stderr), model.stderr
    write_sweep(tmp_path)
    trained = _sweep(["train", "q.toml", "--run", "#1", "--checkpoints", "ck"], tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "Epoch 1/1" in trained.stdout and "completed" in trained.stdout
    assert not TENSORFLOW_LINE.search(trained.stdout + trained.stderr), trained.stdout + trained.stderr
    # They went to the run's log, as a worker's run's do: kept, not lost.
    assert TENSORFLOW_LINE.search((tmp_path / "ck" / "train.log").read_text())


# -- the phases before a run's first epoch ---------------------------------------------------


def _running(tmp_path: Path) -> tuple[ResultStore, dict]:
    store = ResultStore(f"sqlite:///{tmp_path / 'sweeps.db'}")
    run_id = store.register_run("s", "key-1", label="1", comment=None, config={"epochs": 3})
    store.claim_run(run_id, worker=f"{socket.gethostname()}/1/x", host="h", stale_after=20, max_attempts=3)
    return store, store.runs("s")[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("log_format", ["plain", "jsonl", "rich"])
def test_the_progress_says_what_a_run_does_before_its_first_epoch(tmp_path, log_format):
    store, run = _running(tmp_path)
    folder = tmp_path / "checkpoints" / "s" / run["run_key"]
    folder.mkdir(parents=True)
    out = io.StringIO()
    with Monitor(store, "s", log_format, out=out, checkpoints=tmp_path / "checkpoints") as monitor:
        monitor.poll()  # no phase file yet: the child imports
        for phase in ("loading the data", "building the model", "epoch 1/3 (compiling)"):
            write_phase(folder, phase)
            monitor.poll()
        store.record_epoch(run["id"], {"epoch": 1, "loss": 1.0, "acc": 0.5, "val_loss": 1.1, "val_acc": 0.4,
                                       "lr": 1e-3, "seconds": 10.0, "images_per_second": 100.0})
        write_phase(folder, "epoch 2/3")
        monitor.poll()
        if log_format == "rich":
            rendered = io.StringIO()
            from rich.console import Console

            Console(file=rendered, width=200).print(monitor._render(store.runs("s"), [(run, None)]))
            assert "epoch 2/3" in rendered.getvalue() and "ETA 20s" in rendered.getvalue()
    text = out.getvalue()
    if log_format == "plain":
        assert text.splitlines()[:4] == [
            f"run 1: {STARTING}", "run 1: loading the data", "run 1: building the model", "run 1: epoch 1/3 (compiling)",
        ]
        # The ETA from the first epoch: two left at its 10 s; later epochs' phases are not repeated.
        assert "run 1: epoch 1/3 loss 1.0000 acc 0.5000 val_loss 1.1000 val_acc 0.4000 lr 0.001 · ETA 20s" in text
        assert "run 1: epoch 2/3\n" not in text
    elif log_format == "jsonl":
        phases = [e["phase"] for e in map(json.loads, text.splitlines()) if e["event"] == "phase"]
        assert phases == [STARTING, "loading the data", "building the model", "epoch 1/3 (compiling)"]
    store.close()


def test_a_phase_file_is_read_whole_or_not_at_all(tmp_path):
    assert read_phase(tmp_path) == STARTING  # none yet
    (tmp_path / PHASE_FILE).write_text('{"phase": "buil')  # never left by write_phase, but say so
    assert read_phase(tmp_path) == STARTING
    write_phase(tmp_path, "building the model")
    assert read_phase(tmp_path) == "building the model"
    assert [p.name for p in tmp_path.iterdir()] == [PHASE_FILE]  # no temporary left


# -- sweep run's first line, and nothing to train -----------------------------------------------


@pytest.mark.timeout(120)
def test_a_rerun_of_a_done_study_says_there_is_nothing_to_train(tmp_path, sweep):
    sweep_file = write_sweep(tmp_path)
    code, out, err = sweep("run", str(sweep_file), "--max-trials", "0")
    assert code == 0, err
    assert out.splitlines()[0] == "q (2 runs): opening the study in sqlite:///sweeps.db …"
    with ResultStore("sqlite:///sweeps.db") as store:
        for run in store.runs("q"):
            store.record_epoch(run["id"], {"epoch": 1, "loss": 1.0, "acc": 0.5, "val_loss": 1.1, "val_acc": 0.4,
                                           "lr": 1e-3, "seconds": 1.0, "images_per_second": 100.0})
            store.finish_run(run["id"], "complete")
    code, out, err = sweep("run", str(sweep_file), "--log-format", "plain")
    assert code == 0, err
    assert out.splitlines()[1] == "nothing to train: 2/2 runs complete"
    assert "λ=0.05" in out  # and the study's table
    assert not (tmp_path / "checkpoints").exists()  # no worker was started
    code, out, _ = sweep("resume", "q", "--log-format", "jsonl")
    assert code == 0 and json.loads(out) == {
        "event": "nothing_to_train", "study": "q", "runs": 2, "states": {"complete": 2}}


# -- a closed stdout stops the printing, not the sweep ----------------------------------------


@pytest.mark.long
@pytest.mark.timeout(600)
def test_sweep_run_into_head_trains_every_run(tmp_path):
    """`sweep run … | head -1`: head exits after a line, the sweep trains on."""
    write_sweep(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = f"{sys.executable} -m sweep_runner run q.toml --log-format plain | head -1"
    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=580)
    assert result.stdout.splitlines() == ["q (2 runs): opening the study in sqlite:///sweeps.db …"]
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert "stdout closed: printing stops, the sweep goes on" in result.stderr
    with ResultStore(f"sqlite:///{tmp_path / 'sweeps.db'}") as store:
        assert [run["state"] for run in store.runs("q")] == ["complete", "complete"]
