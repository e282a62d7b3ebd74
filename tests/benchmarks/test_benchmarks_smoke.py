"""Every benchmark, run in its smallest mode (benchmarks/run_all.py's QUICK), so that
none rots between two `make bench`: it must finish, exit 0 and print its block of
summary lines (ratios, targets, counts). The figures of so small a run mean nothing and are not checked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
from benchmarks.run_all import BENCHMARKS, QUICK

# The cheap ones run with the suite; those that start TensorFlow processes (each about
# 5 s of imports, several per benchmark) run in `make test-long`.
CHEAP = {"export_speed", "report_page"}


def _run_all(tmp_path: Path, *args: str, timeout: float = 540) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run_all.py"), *args], cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True, text=True, timeout=timeout,
    )


def test_every_benchmark_has_a_quick_mode() -> None:
    assert sorted(QUICK) == sorted(BENCHMARKS)
    on_disk = {p.stem for p in (REPO / "benchmarks").glob("*.py")} - {"__init__", "common", "run_all", "gpu_bench"}
    assert on_disk == set(BENCHMARKS)  # a new benchmark joins run_all, and so these tests


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[] if n in CHEAP else [pytest.mark.long]) for n in BENCHMARKS],
)
@pytest.mark.timeout(600)
def test_the_benchmark_runs_in_its_smallest_mode(name: str, tmp_path: Path) -> None:
    done = _run_all(tmp_path, "--quick", "--only", name)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.partition("=== summary")[2]
    assert f"\n{name} (" in summary and "FAILED" not in summary, done.stdout[-3000:]
    assert re.search(r"^  \S.*: \S", summary, re.MULTILINE), summary  # its figures, summed up
    assert list(tmp_path.iterdir()) == []  # it wrote nothing where it was started


def test_an_unknown_benchmark_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _run_all(tmp_path, "--only", "nosuch", timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "nosuch" in done.stderr


@pytest.mark.long
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="gpu_bench.py measures a GPU")
def test_the_gpu_benchmark_runs_in_its_quick_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_bench.py"), "--quick", "--counts", "1",
         "--out", str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, timeout=540,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "gpu.json").is_file() and (tmp_path / "out" / "gpu.md").is_file()
