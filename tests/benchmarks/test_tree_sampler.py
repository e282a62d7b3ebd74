"""benchmarks/common.py's TreeSampler: what kind each process of a sweep is."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

from benchmarks.common import TreeSampler


class _Process:
    """What the sampler reads of a process: its pid, RSS, parent and command line."""

    def __init__(self, pid: int, argv: list[str]) -> None:
        self.pid, self.argv = pid, argv

    def memory_info(self) -> SimpleNamespace:
        return SimpleNamespace(rss=1024**3)

    def ppid(self) -> int:
        return os.getpid()  # a live worker, whose RSS the sampler reads when a child ends

    def cmdline(self) -> list[str]:
        return self.argv


def test_an_exiting_child_stays_a_child_and_is_counted_when_it_ends() -> None:
    """While the kernel tears an exiting process down, before it is a zombie, psutil
    reads an empty command line: that is no new kind. (A 1 GB TensorFlow child takes
    long enough to be sampled then; CI's worker_memory once found no child end.)"""
    sampler = TreeSampler(root=1)
    argv = [sys.executable, "-m", "sweep_runner.child", "--parent-pid", str(os.getpid())]
    sampler.sample(_Process(42, argv), now=0.0)
    sampler.sample(_Process(42, []), now=0.1)  # exiting
    assert sampler.seen[42].kind == "child"
    sampler.ended(42)
    assert [(parent, child) for parent, child, _ in sampler.after_child] == [(os.getpid(), 42)]
