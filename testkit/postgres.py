"""A throw-away PostgreSQL cluster for the tests, from Debian's `postgresql` package.

`initdb` and `pg_ctl` refuse to run as root, so they run as the `postgres` user. On CI
(CI=true) a missing server fails the tests that need it instead of skipping them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_reason() -> str | None:
    if not (_bin("initdb") and _bin("pg_ctl")):
        return "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    return None


def _as_postgres(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def _as_postgres_popen(command: list[str]) -> subprocess.Popen:
    """A long-running command as the `postgres` user (pgbouncer refuses root too)."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Starts a private cluster on a free port; yields a SQLAlchemy URL to a fresh database."""
    with restartable_cluster() as cluster:
        yield cluster.url


class Cluster:
    """A private cluster's URL, and its server stopped and started again (a restart, a
    fail-over) while clients use it."""

    def __init__(self, url: str, data: str, folder: str, port: int) -> None:
        self.url, self._data, self._folder, self._port = url, data, folder, port

    def stop(self) -> None:
        _as_postgres([_bin("pg_ctl"), "-D", self._data, "-m", "fast", "-w", "stop"])

    def start(self) -> None:
        _as_postgres([
            _bin("pg_ctl"), "-D", self._data, "-l", os.path.join(self._folder, "log"), "-w", "start",
            "-o", f"-p {self._port} -k {self._folder} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
        ])


@contextmanager
def restartable_cluster() -> Iterator[Cluster]:
    """`postgres_cluster`, yielding the `Cluster` that can be stopped and started."""
    folder = tempfile.mkdtemp(prefix="sweep-pg-")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    data = os.path.join(folder, "data")
    _as_postgres([_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    cluster = Cluster(f"postgresql+psycopg://postgres@127.0.0.1:{port}/sweeps", data, folder, port)
    cluster.start()
    try:
        _as_postgres([_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "sweeps"])
        yield cluster
    finally:
        _as_postgres([_bin("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def create_database(base_url: str, name: str) -> str:
    """A new empty database on the cluster of `base_url`; its URL."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return base_url.rsplit("/", 1)[0] + f"/{name}"
