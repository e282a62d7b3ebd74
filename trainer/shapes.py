"""The valid ResNet v2 depths and input shapes, checked without importing Keras."""

from __future__ import annotations

from sweeps.resnet import blocks_per_stage


def check_depth(depth: int) -> int:
    """The number of blocks per stage n for a depth 9n+2; ValueError otherwise."""
    return blocks_per_stage(depth)


def check_input_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(height, width, channels) with height and width divisible by 4; ValueError otherwise."""
    if len(input_shape) != 3 or any(int(side) < 1 for side in input_shape):
        raise ValueError(f"expected height,width,channels, got {tuple(input_shape)}")
    height, width, channels = (int(side) for side in input_shape)
    if height % 4 or width % 4:
        raise ValueError(
            f"height and width must be divisible by 4 (two stride-2 stages), got {height}×{width}"
        )
    return height, width, channels
