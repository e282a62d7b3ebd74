"""Fixtures of the report tests: a storage URL, Debian's chromium driven by Playwright,
and one tiny study trained by `sweep run --report` (shared by the live-page and the
optuna-dashboard tests). The helpers are in `report_studies`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from report_studies import CHROMIUM, TINY_SWEEP, chromium_missing, snapshot


@pytest.fixture
def study_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sweeps.db'}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright; on CI a missing browser fails the test."""
    reason = chromium_missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def trained_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny run trained by `sweep run --report`, the page read each time it changed.

    Returns `url`, `study`, `report` (the page), `returncode`, `stderr` and
    `snapshots`: for each version of the page seen while the sweep ran, whether it
    reloads itself and how many epochs its run's plot has.
    """
    import subprocess
    import sys
    import time

    folder = tmp_path_factory.mktemp("trained")
    (folder / "tiny.toml").write_text(TINY_SWEEP, encoding="utf-8")
    url = f"sqlite:///{folder / 'sweeps.db'}"
    report = folder / "live.html"
    process = subprocess.Popen(
        [sys.executable, "-m", "sweep_runner", "run", "tiny.toml", "--storage", url, "--report", str(report),
         "--log-format", "jsonl"],
        cwd=folder, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    snapshots: list[tuple[bool, int]] = []
    seen = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        done = process.poll() is not None
        try:
            stamp = report.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp is not None and stamp != seen:
            seen = stamp
            snapshots.append(snapshot(report.read_text(encoding="utf-8")))
        if done:
            break
        time.sleep(0.05)
    else:
        process.kill()
    _, stderr = process.communicate(timeout=30)
    return {"url": url, "study": "tiny", "report": report, "returncode": process.returncode,
            "stderr": stderr, "snapshots": snapshots}


