"""The ResNet v2 shapes a sweep may ask for, its depths and its input images: one rule
each, for the sweep file's check (`sweep check`) and for the trainer that builds the
model, so that what `sweep check` accepts builds. Checked without importing Keras."""

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


def check_input_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(height, width, channels) of an image the ResNet takes: height and width
    divisible by 4, which its two stride-2 stages halve twice.

    Raises:
        ValueError: any other shape, in the words a sweep file's error shows.
    """
    if len(input_shape) != 3 or any(int(side) < 1 for side in input_shape):
        raise ValueError(f"expected height,width,channels, got {tuple(input_shape)}")
    height, width, channels = (int(side) for side in input_shape)
    if height % 4 or width % 4:
        raise ValueError(
            f"height and width must be divisible by 4 (two stride-2 stages), got {height}×{width}"
        )
    return height, width, channels
