"""The ResNet v2 depths a sweep may ask for: one rule, for the sweep file's check and
for the trainer that builds the model."""

from __future__ import annotations


def blocks_per_stage(depth: int) -> int:
    """The number n of blocks per stage of a ResNet v2 of depth 9n+2 (three stages of
    n bottleneck blocks of three layers, the stem and the head).

    Args:
        depth: the network's depth.

    Raises:
        ValueError: a depth that is not 9n+2 with n >= 1, in the words a sweep file's
            error shows.
    """
    if depth < 11 or (depth - 2) % 9:
        raise ValueError(f"must be 9n+2 (11, 20, 29, …, 56), got {depth}")
    return (depth - 2) // 9
