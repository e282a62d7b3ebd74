"""The angle per optimizer step of the scale-invariant kernels, measured, and the
rotational equilibrium it should settle at.

Under decoupled weight decay (AdamW: `w ← w(1 − λ·lr) − lr·u`, u = m̂/(√v̂ + ε)), a
kernel a BatchNormalization follows only turns, and its norm settles where decay and
update balance (Kosson, Messmer & Jaggi, "Rotational Equilibrium", ICML 2024, Table 1
and §3; van Laarhoven 2017). Their random-walk model gives, for AdamW:

- the norm ‖w‖ = √(lr·C/(2λ)), C the kernel's number of elements: each gradient,
  normalized by √v̂, moves every element by about lr in all over its momentum's life;
- the angle per step √(2λ·lr·(1 − β₁)/(1 + β₁)): one step moves only the momentum's
  share of that, ‖u‖² ≈ C·(1 − β₁)/(1 + β₁) for uncorrelated gradients. Without
  momentum (β₁ = 0) this is √(2λ·lr); at Keras' β₁ = 0.9 it is 0.23 of it (the
  authors' code, `adamw_etar_func` in epfml's rotational optimizers, uses the same).

The net angle over an epoch saturates near π/2 and says little; this callback measures
single steps instead. Every `k`-th step (about `SAMPLES_PER_EPOCH` samples an epoch) it
copies the kernels after the step and again after the next one, and takes from the
pair the angle each kernel turned through (averaged over the kernels), the predicted
angle with that step's lr, and the predicted norm of the kernels together,
√(lr·ΣC/(2λ)). Each is averaged over the epoch's samples (`epoch_values`). It only
reads the weights, so training does not change.
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
        beta_1: Adam's first-moment decay rate β₁.
    """

    def __init__(
        self, kernels: tuple[Any, ...], optimizer: Any, weight_decay: float, steps_per_epoch: int,
        beta_1: float = 0.9,
    ) -> None:
        super().__init__()
        self.kernels = kernels
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.beta_1 = beta_1
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
        turned = float(np.mean([angle(b, a) for b, a in zip(before, after, strict=True)]))
        predicted, norm = equilibrium(self.weight_decay, lr, self.beta_1, sum(b.size for b in before))
        return turned, predicted, norm

    def epoch_values(self) -> dict[str, float]:
        """The `STEP_NAMES` averaged over this epoch's samples (NaN without any)."""
        if not self._samples or not self.kernels:
            return dict.fromkeys(STEP_NAMES, math.nan)
        columns = np.array(self._samples, dtype=np.float64)
        return {name: float(np.mean(columns[:, i])) for i, name in enumerate(STEP_NAMES)}


def equilibrium(weight_decay: float, lr: float, beta_1: float, elements: int) -> tuple[float, float]:
    """AdamW's rotational equilibrium: the angle per step and the norm of kernels with
    `elements` entries in all (NaN without decay: there is none).

    Args:
        weight_decay: λ.
        lr: the step's learning rate.
        beta_1: Adam's β₁.
        elements: the kernels' number of elements together (C).
    """
    balance = 2.0 * weight_decay * lr
    if not balance > 0:
        return math.nan, math.nan
    return math.sqrt(balance * (1.0 - beta_1) / (1.0 + beta_1)), math.sqrt(lr * elements / (2.0 * weight_decay))
