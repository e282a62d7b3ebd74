"""The trainer's backend-portable tests again, on JAX.

Keras picks its backend once per process, so they run in a pytest of their own; as a
test of this suite it runs beside the TensorFlow tests instead of after them (those
that compile their own models with XLA are left to `make test-long`'s JAX pass).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.long
@pytest.mark.timeout(600)
def test_the_backend_tests_pass_on_jax(tmp_path: Path) -> None:
    if importlib.util.find_spec("jax") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but jax is not installed (the project's `jax` extra)")
        pytest.skip("jax is not installed (the project's `jax` extra)")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--basetemp", str(tmp_path / "pytest"), "-m", "backend and not slow", "tests/trainer"],
        cwd=REPO, env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True, text=True, timeout=580,
    )
    summary = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert summary and " passed" in summary[0] and " failed" not in summary[0], summary
