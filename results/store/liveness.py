"""Whether the worker of a "running" run is still there: a run whose worker died (kill -9,
a lost machine, a power cut) stays "running" in the store until a worker releases it,
and every reader must tell it apart from one that trains."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from typing import Any

#: Seconds without a heartbeat after which a run's worker is presumed dead; the
#: runner's `GRACE_PERIOD` (workers beat every 5 s).
STALE_AFTER = 20.0


def is_dead_local(worker: str | None) -> bool:
    """Whether `worker` (`host/pid/token`) ran on this machine and its process is gone."""
    if not worker:
        return False
    host, _, rest = worker.partition("/")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    """A killed process stays a zombie until its parent (or init) reaps it: dead all
    the same, though signal 0 still reaches it."""
    import psutil

    try:
        return psutil.Process(pid).status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:  # gone, or not ours to inspect
        return False


def age_seconds(moment: Any) -> float:
    """Seconds since a timestamp (naive ones are UTC); inf for none."""
    if moment is None or moment != moment:  # None, NaT
        return float("inf")
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if hasattr(moment, "to_pydatetime"):
        moment = moment.to_pydatetime()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - moment).total_seconds()


def is_interrupted(run: dict[str, Any], stale_after: float = STALE_AFTER) -> bool:
    """A "running" run whose worker is gone: silent for `stale_after` seconds, or a
    process of this machine that no longer exists."""
    return run["state"] == "running" and (
        age_seconds(run["heartbeat_at"]) > stale_after or is_dead_local(run["worker"])
    )
