"""The angle per optimizer step of the scale-invariant kernels, measured, and the
rotational equilibrium it should settle at.

Under decoupled weight decay (AdamW: `w ← w(1 − λ·lr) − lr·u`, u = m̂/(√v̂ + ε)), a
kernel a BatchNormalization follows only turns: its norm settles where decay and
update balance, ‖w‖² ≈ lr·‖u‖²/(2λ), and there it turns through ≈ √(2λ·lr) radians per
step whatever the gradients (Kosson, Messmer & Jaggi, "Rotational Equilibrium",
ICML 2024; van Laarhoven 2017). The net angle over an epoch saturates near π/2 and
says little; this callback measures single steps instead.

Every `k`-th step (about `SAMPLES_PER_EPOCH` samples an epoch) it copies the kernels
after the step and again after the next one, and takes from the pair:

- the angle each kernel turned through in that one step (averaged over the kernels);
- the prediction √(2λ·lr) with that step's lr;
- the Adam part of the step, lr·u = w_s(1 − λ·lr) − w_{s+1}, whence the equilibrium
  norm of the kernels together, √(Σ‖lr·u‖²/(2λ·lr)).

Each is averaged over the epoch's samples (`epoch_values`). It only reads the
weights, so training does not change.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from trainer.weight_stats import angle, snapshot

SAMPLES_PER_EPOCH = 8
#: The keys of `epoch_values`, as the epoch record names them.
STEP_NAMES = ("angle_per_step", "angle_equilibrium", "weight_norm_equilibrium")


def _learning_rate(optimizer: Any) -> float:
    from trainer.optimizer import current_learning_rate

    return current_learning_rate(optimizer)


class StepAngles(keras.callbacks.Callback):
    """Samples single steps of the scale-invariant kernels during `fit()`.

    Args:
        kernels: the scale-invariant kernels (`KernelGroups.scale_invariant`).
        optimizer: the run's optimizer (for the LR of the next step).
        weight_decay: λ.
        steps_per_epoch: optimizer steps per epoch.
    """

    def __init__(self, kernels: tuple[Any, ...], optimizer: Any, weight_decay: float, steps_per_epoch: int) -> None:
        super().__init__()
        self.kernels = kernels
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.every = max(2, steps_per_epoch // SAMPLES_PER_EPOCH)
        self.steps_per_epoch = steps_per_epoch
        self._before: list[np.ndarray] | None = None
        self._lr = math.nan
        self._samples: list[tuple[float, float, float]] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._samples, self._before = [], None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._before is not None:
            self._samples.append(self._sample(self._before, self._kernels_now(), self._lr))
            self._before = None
        elif batch % self.every == 0 and batch + 1 < self.steps_per_epoch:
            self._before = self._kernels_now()
            self._lr = _learning_rate(self.optimizer)

    def _kernels_now(self) -> list[np.ndarray]:
        # On JAX, fit() keeps the state outside the variables mid-epoch; Keras'
        # `Callback.model` puts it back (a no-op on the other backends).
        _ = self.model
        return snapshot(self.kernels)

    def _sample(self, before: list[np.ndarray], after: list[np.ndarray], lr: float) -> tuple[float, float, float]:
        decay = 1.0 - self.weight_decay * lr
        turned = float(np.mean([angle(b, a) for b, a in zip(before, after, strict=True)]))
        update = sum(float(np.sum(np.square(b * decay - a))) for b, a in zip(before, after, strict=True))
        balance = 2.0 * self.weight_decay * lr
        equilibrium_norm = math.sqrt(update / balance) if balance > 0 else math.nan
        return turned, math.sqrt(balance), equilibrium_norm

    def epoch_values(self) -> dict[str, float]:
        """The `STEP_NAMES` averaged over this epoch's samples (NaN without any)."""
        if not self._samples or not self.kernels:
            return dict.fromkeys(STEP_NAMES, math.nan)
        columns = np.array(self._samples, dtype=np.float64)
        return {name: float(np.mean(columns[:, i])) for i, name in enumerate(STEP_NAMES)}
