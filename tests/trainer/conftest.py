"""Fixtures of the trainer's tests, and the `backend` marker.

Tests marked `backend` use Keras layers and `keras.ops` only and run on every backend:
`test_trainer_on_jax.py` runs them again with `KERAS_BACKEND=jax`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backend: backend-portable trainer tests, also run on JAX")
    # `make test` runs them on TensorFlow, and on JAX (where each compiles its models
    # with XLA) leaves them to `make test-long`; -m "not slow" for a quicker loop.
    config.addinivalue_line("markers", "slow: the trainer's longest tests (on JAX: make test-long)")


@pytest.fixture
def tiny_config() -> Callable[..., Any]:
    """A factory of small synthetic runs: depth 11, 16×16×3, 128 + 64 images, batch 16."""
    from sweeps.config import RunConfig

    def make(**overrides: Any) -> RunConfig:
        settings: dict[str, Any] = dict(
            dataset="synthetic", depth=11, epochs=2, batch_size=16, image_shape=(16, 16, 3),
            train_size=128, validation_size=64, learning_rate=1e-3, weight_decay=0.004,
            precision="float32",
        )
        settings.update(overrides)
        return RunConfig(**settings)

    return make
