"""Fixtures shared by the test folders: a PostgreSQL server when one can be had."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import HealthCheck, settings

from testkit.postgres import create_database, missing_reason, postgres_cluster

_names = itertools.count()

# `make test` runs each property test on a few dozen examples; `make test-long` (and CI,
# time allowing) on 400: `pytest --hypothesis-profile=long -m fuzz`.
_SHARED = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("default", max_examples=40, **_SHARED)
settings.register_profile("long", max_examples=400, **_SHARED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backend: backend-portable trainer tests, also run on JAX")
    config.addinivalue_line("markers", "postgres: needs a PostgreSQL server (started by the tests)")
    config.addinivalue_line("markers", "fuzz: property tests whose examples `make test-long` raises to 400")
    config.addinivalue_line("markers", "long: run by `make test-long`, not `make test` (benchmarks' smoke tests)")


# `make test` spreads the tests over the cores (pytest-xdist, `--dist loadgroup`): the
# tests that share an expensive session fixture stay on one worker, so that it is built
# once, not once per worker.
_SHARED_FIXTURES = {
    "trained": "runner-trained-study", "trained_study": "report-trained-study", "browser": "chromium",
    "variant": "trainer-variants",
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, group in _SHARED_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))
                break
    # xdist hands tests out in this order: the longest first, so that the last ones
    # to finish are short and both workers stay busy to the end. A test's timeout
    # is its cost's rough measure (the tests that train sweeps mark the largest).
    default = float(config.getini("timeout") or 0)
    items.sort(key=lambda item: -_timeout(item, default))


def _timeout(item: pytest.Item, default: float) -> float:
    marker = item.get_closest_marker("timeout")
    return float(marker.args[0]) if marker and marker.args else default


@pytest.fixture(scope="session")
def postgres_server():
    """A base URL of a running cluster: $SWEEP_TEST_POSTGRES_URL, else one we start.

    On CI a missing server is a failure, not a skip.
    """
    given = os.environ.get("SWEEP_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    reason = missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    with postgres_cluster() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database for one test."""
    return create_database(postgres_server, f"test_{os.getpid()}_{next(_names)}")
