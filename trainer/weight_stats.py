"""What the weights do: the conv kernels' norms, effective learning rate and rotation.

The post's argument rests on weight decay shrinking the weights: a conv kernel that a
BatchNormalization follows is scale-invariant (its output is normalized, so only the
kernel's direction matters), and for it the step Adam takes turns the kernel through
an angle of about lr/‖w‖ (van Laarhoven 2017; Zhang et al. 2019). Shrinking ‖w‖ thus
raises the effective learning rate. Per epoch, from the weights alone:

- `weight_norm`: ‖w‖ of all conv kernels together (√ of the summed squares);
  `weight_norm_stage1..3` the same per ResNet stage (the stem only in the total);
- `effective_lr`: lr/‖w‖, averaged over the scale-invariant kernels;
- `angular_update`: the angle (radians) between each scale-invariant kernel at the
  epoch's start and at its end, averaged over them;
- `weight_norm_invariant`, `weight_norm_other`: the norm of the scale-invariant conv
  kernels together, and of the other conv kernels (the blocks' `conv3`, shortcuts);
- `dense_kernel_norm`: the softmax head's kernel, and `bn_gamma_norm`: every
  BatchNorm's γ together. The post's AdamW decays them too (it exempts nothing), and
  neither is scale-invariant: decay shrinks what they compute.

In Atienza's pre-activation ResNet v2 the scale-invariant kernels are the stem's conv
and each block's first two convs (`conv1`, `conv2`): each feeds one BatchNormalization
and nothing else. A block's `conv3` and the projection shortcut feed the residual
addition, whose sum is not normalized as a whole. A test checks this against the
model's graph.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.model import STEM_CONV

_BLOCK_CONV = re.compile(r"^stage([123])_block\d+_(conv[123]|shortcut)$")
_SCALE_INVARIANT_ROLES = ("conv1", "conv2")


@dataclass(frozen=True)
class KernelGroups:
    """The model's conv kernels, grouped.

    Args:
        all: every conv kernel (stem, blocks, shortcuts).
        stages: the kernels of stage 1, 2 and 3.
        scale_invariant: the kernels a BatchNormalization follows.
        head: the Dense head's kernel(s).
        gammas: every BatchNormalization's γ.
    """

    all: tuple[Any, ...]
    stages: tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]
    scale_invariant: tuple[Any, ...]
    head: tuple[Any, ...] = ()
    gammas: tuple[Any, ...] = ()


def kernel_groups(model: Any) -> KernelGroups:
    """The conv kernels of a `trainer.model.build_resnet_v2` model, by its layer names.

    Raises:
        ValueError: the model has no conv named as `build_resnet_v2` names them.
    """
    import keras

    every: list[Any] = []
    stages: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    invariant: list[Any] = []
    head = tuple(layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Dense))
    gammas = tuple(
        layer.gamma for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization) and layer.gamma is not None
    )
    for layer in model.layers:
        match = _BLOCK_CONV.match(layer.name)
        if layer.name != STEM_CONV and match is None:
            continue
        every.append(layer.kernel)
        if match is None or match.group(2) in _SCALE_INVARIANT_ROLES:
            invariant.append(layer.kernel)
        if match is not None:
            stages[int(match.group(1)) - 1].append(layer.kernel)
    if not every:
        raise ValueError(f"model {model.name}: no conv named as build_resnet_v2 names them")
    return KernelGroups(
        tuple(every), (tuple(stages[0]), tuple(stages[1]), tuple(stages[2])), tuple(invariant), head, gammas
    )


def snapshot(kernels: tuple[Any, ...]) -> list[np.ndarray]:
    """Copies of the kernels' values, e.g. at an epoch's start."""
    import keras

    return [np.array(keras.ops.convert_to_numpy(kernel), dtype=np.float64) for kernel in kernels]


def _squares(value: np.ndarray) -> float:
    # Not np.linalg.norm: its BLAS dot spins threads against the training's on a busy CPU.
    return float(np.sum(np.square(value)))


def _norm(values: list[np.ndarray]) -> float:
    return math.sqrt(sum(_squares(v) for v in values)) if values else math.nan


def angle(before: np.ndarray, after: np.ndarray) -> float:
    """The angle in radians between two kernels taken as vectors.

    2·atan2(‖u − v‖, ‖u + v‖) of the unit vectors: exact for the tiny angles of a late
    epoch, where arccos of a cosine near 1 loses every digit. NaN for a zero kernel.
    """
    a, b = before.ravel(), after.ravel()
    norm_a, norm_b = math.sqrt(_squares(a)), math.sqrt(_squares(b))
    if not (norm_a > 0 and norm_b > 0 and math.isfinite(norm_a) and math.isfinite(norm_b)):
        return math.nan
    u, v = a / norm_a, b / norm_b
    return 2.0 * math.atan2(math.sqrt(_squares(u - v)), math.sqrt(_squares(u + v)))


def weight_stats(groups: KernelGroups, learning_rate: float, before: list[np.ndarray]) -> dict[str, float]:
    """The epoch's weight measurements, under their `EpochRecord` field names, from the
    kernels as they are now.

    Args:
        groups: the model's kernels.
        learning_rate: the LR at the epoch's end.
        before: `snapshot(groups.scale_invariant)` taken at the epoch's start.
    """
    stage_of = {id(kernel): stage for stage, kernels in enumerate(groups.stages) for kernel in kernels}
    invariant_ids = {id(kernel) for kernel in groups.scale_invariant}
    per_stage: tuple[list[np.ndarray], ...] = ([], [], [])
    invariant: list[np.ndarray] = []
    every: list[np.ndarray] = []
    values = snapshot(groups.all)
    for kernel, value in zip(groups.all, values, strict=True):
        every.append(value)
        if id(kernel) in stage_of:
            per_stage[stage_of[id(kernel)]].append(value)
        if id(kernel) in invariant_ids:
            invariant.append(value)
    norms = [math.sqrt(_squares(v)) for v in invariant]
    other = [value for kernel, value in zip(groups.all, values, strict=True) if id(kernel) not in invariant_ids]
    return {
        "weight_norm": _norm(every),
        "weight_norm_stage1": _norm(per_stage[0]),
        "weight_norm_stage2": _norm(per_stage[1]),
        "weight_norm_stage3": _norm(per_stage[2]),
        "effective_lr": float(np.mean([learning_rate / n if n else math.inf for n in norms])) if norms else math.nan,
        "angular_update": (
            float(np.mean([angle(b, a) for b, a in zip(before, invariant, strict=True)]))
            if invariant
            else math.nan
        ),
        "weight_norm_invariant": _norm(invariant),
        "weight_norm_other": _norm(other),
        "dense_kernel_norm": _norm(snapshot(groups.head)),
        "bn_gamma_norm": _norm(snapshot(groups.gammas)),
    }
