"""`sweep model`: the ResNet v2 layer summary and its parameter counts."""

from __future__ import annotations

import sys

from sweeps.errors import InputError
from sweeps.resnet import blocks_per_stage, check_input_shape
from sweeps.terminal import plain_wanted
from trainer.native_logs import native_logs_shown_on_failure


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """`"32,32,3"` as (32, 32, 3), checked; InputError otherwise."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
        return check_input_shape(shape)
    except ValueError as error:
        raise InputError(
            f"--input-shape: expected H,W,C with H and W divisible by 4 (e.g. 32,32,3), "
            f"got {text!r} ({error})"
        ) from None


def parameter_counts(model: object) -> tuple[int, int, int]:
    """(total, trainable, non-trainable) parameters of a Keras model."""
    import numpy as np

    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)  # type: ignore[attr-defined]
    non_trainable = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)  # type: ignore[attr-defined]
    return trainable + non_trainable, trainable, non_trainable


def model_command(depth: int, input_shape: str) -> int:
    """Prints the layer summary of ResNet{depth}v2 and its parameter counts.

    Args:
        depth: 9n+2 (56 is the post's ResNet56v2).
        input_shape: `H,W,C`, H and W divisible by 4.

    Raises:
        InputError: an invalid depth or input shape.
    """
    try:
        blocks_per_stage(depth)
    except ValueError as error:
        raise InputError(f"--depth: {error}") from None
    shape = parse_input_shape(input_shape)

    with native_logs_shown_on_failure():
        from trainer.model import build_resnet_v2

        model = build_resnet_v2(depth, shape)
    if plain_wanted():  # Keras' own rich console keeps bold under NO_COLOR; its capture does not
        model.summary(print_fn=lambda text: sys.stdout.write(text))
    else:
        model.summary()
    total, trainable, non_trainable = parameter_counts(model)
    print(
        f"ResNet{depth}v2 at {','.join(map(str, shape))}: {total:,} parameters, "
        f"{trainable:,} trainable, {non_trainable:,} non-trainable"
    )
    return 0
