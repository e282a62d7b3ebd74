"""Whether the worker of a "running" run is still there on this machine: a run whose
worker died (kill -9, a lost machine, a power cut) stays "running" in the store until
a worker releases it. The rules that use it (stale, interrupted, claimable) live in
`results.store.lifecycle`."""

from __future__ import annotations

import os
import socket


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
