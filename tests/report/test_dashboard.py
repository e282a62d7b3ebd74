"""optuna-dashboard on a study of ours: the study, its trials, their per-epoch val_acc
and user attributes, as a user finds them in the browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from report_studies import free_port


def _dashboard_command() -> list[str]:
    found = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent)) or shutil.which(
        "optuna-dashboard"
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but optuna-dashboard is not installed (pip install -e '.[dashboard]')")
        pytest.skip("optuna-dashboard is not installed (pip install -e '.[dashboard]')")
    return [found]


def _wait_until_served(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"optuna-dashboard exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"optuna-dashboard did not answer {url} in {seconds:g} s")


@pytest.mark.long
@pytest.mark.timeout(300)
def test_optuna_dashboard_shows_our_study_its_trials_and_their_curves(
    trained_study: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    assert trained_study["returncode"] == 0, trained_study["stderr"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "dashboard.log", "wb") as log:
        process = subprocess.Popen(
            [*_dashboard_command(), trained_study["url"], "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_served(f"{base}/api/studies", process)
        with urllib.request.urlopen(f"{base}/api/studies", timeout=10) as response:
            summaries = json.load(response)["study_summaries"]
        study_id = next(s["study_id"] for s in summaries if s["study_name"] == trained_study["study"])
        page = browser.new_page()
        try:
            page.goto(f"{base}/dashboard")
            page.get_by_text(trained_study["study"], exact=False).first.wait_for(timeout=30_000)
            page.goto(f"{base}/dashboard/studies/{study_id}/trials")
            page.get_by_text("User Attributes").first.wait_for(timeout=30_000)
            text = page.inner_text("body")
        finally:
            page.close()
        assert "Trial 0" in text and "Complete" in text
        # Its per-epoch val_acc (Optuna's intermediate values) and our user attributes.
        assert "Intermediate Values" in text
        for line in ("label 1", "comment the only run", "attempt 1"):
            assert line in text, line
        assert "run_key " in text and "schedule [1.e-3, 0]" in text
        with urllib.request.urlopen(f"{base}/api/studies/{study_id}?after=0", timeout=10) as response:
            trial = json.load(response)["trials"][0]
        assert [v["step"] for v in trial["intermediate_values"]] == [1, 2]
        for value in trial["intermediate_values"]:
            assert f"{value['step']} {value['value']}" in text
    finally:
        process.terminate()
        process.wait(timeout=30)


GRID_SWEEP = """\
name = "grid"
[train]
dataset = "digits"
depth = 11
epochs = 2
ema_momentum = 0.9
[study]
objectives = ["val_acc", "threshold_epoch"]
[space]
weight_decay = [0.05, 0.1, 0.2]
learning_rate = [1e-3, 4e-3]
"""


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.mark.timeout(120)
def test_the_dashboard_names_the_objectives_spans_the_grid_and_keeps_constants_out(tmp_path: Path) -> None:
    from sweep_runner.storage import quiet_optuna
    from sweep_runner.study import prepare_study
    from sweeps.sweep_file import load_sweep

    quiet_optuna()
    (tmp_path / "grid.toml").write_text(GRID_SWEEP, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    prepare_study(load_sweep(tmp_path / "grid.toml"), url).store.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "dashboard.log", "wb") as log:
        process = subprocess.Popen(
            [*_dashboard_command(), url, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_served(f"{base}/api/studies", process)
        study_id = next(s["study_id"] for s in _get(f"{base}/api/studies")["study_summaries"] if s["study_name"] == "grid")
        detail = _get(f"{base}/api/studies/{study_id}?after=0")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert detail["objective_names"] == ["val_acc", "threshold_epoch"]
    trials = detail["trials"]
    assert len(trials) == 6
    spans = {(p["name"], p["distribution"]["low"], p["distribution"]["high"], p["distribution"]["log"])
             for trial in trials for p in trial["params"]}
    # One span per swept quantity, the grid's, not one point per trial.
    assert spans == {("weight_decay", 0.05, 0.2, False), ("learning_rate", 1e-3, 4e-3, False)}
    assert {p["param_internal_value"] for trial in trials for p in trial["params"] if p["name"] == "weight_decay"} == {
        0.05, 0.1, 0.2
    }
    # m, not swept, is the study's attribute, not a parameter of every trial.
    constants = json.loads(next(a["value"] for a in detail["user_attrs"] if a["key"] == "constants"))
    assert constants["ema_momentum"] == 0.9 and constants["epochs"] == 2
    assert "ema_momentum" not in {p["name"] for trial in trials for p in trial["params"]}
