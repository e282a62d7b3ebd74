"""Issue 19's acceptance on real data (`make test-long`).

- A small Fashion-MNIST grid with a large λ (Debian's `dataset-fashion-mnist`): where
  the stored BatchNorm statistics fail (`train_loss_eval` ≫ `loss`), the
  BatchNorm-true val_acc is far above the raw one; where they agree, close to it.
- The rotational equilibrium: at a constant LR and a large λ the angle per step of the
  scale-invariant kernels approaches √(2λ·lr) (tolerance stated below).
"""

from __future__ import annotations

import math
import os

import pytest

from trainer.data import DEBIAN_FASHION_DIR
from trainer.records import EpochRecord

#: `train_loss_eval` at least this many times the training loss: the statistics fail.
ARTIFACT_RATIO = 3.0
#: Then the BatchNorm-true val_acc beats the raw one by at least this much.
ARTIFACT_GAIN = 0.3
#: Where the two losses agree within this ratio, the val_accs agree within this. Over
#: 6 epochs of 47 steps the stored statistics (momentum 0.99: a horizon of 2 epochs)
#: lag even at λ = 0.01: measured there, ratio 1.5-1.8 with a gap of 0.10-0.11, against
#: ratio 5-7 and a gap of 0.6-0.7 at λ = 1 (val_acc 0.10, BatchNorm-true 0.72-0.80).
AGREE_RATIO, AGREE_GAP = 2.0, 0.15


def _fashion_mnist() -> None:
    if not (DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        reason = f"no Fashion-MNIST in {DEBIAN_FASHION_DIR} (apt-get install dataset-fashion-mnist)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


def _train(config, folder) -> list[EpochRecord]:
    from trainer import train

    records: list[EpochRecord] = []
    assert train(config, records.append, folder).status == "completed"
    return records


@pytest.mark.long
@pytest.mark.timeout(2400)
def test_batchnorm_true_validation_sees_through_the_statistics_on_fashion_mnist(tmp_path):
    _fashion_mnist()
    from sweeps.config import RunConfig

    runs = {}
    for weight_decay in (0.01, 1.0):
        config = RunConfig(
            dataset="fashion_mnist", depth=11, batch_size=64, train_size=3000, validation_size=2000,
            learning_rate=3e-3, weight_decay=weight_decay, flip=False, precision="float32",
            schedule={"breakpoints": "[1,4][0.1,6]", "relative": True}, epochs=6,
        )
        runs[weight_decay] = _train(config, tmp_path / str(weight_decay))
    artifacts = agreements = 0
    for weight_decay, records in runs.items():
        # Not the first epoch: `loss` is the epoch's mean over weights that changed fast.
        for r in records[1:]:
            shown = (weight_decay, r.epoch, r.loss, r.train_loss_eval, r.val_acc, r.val_acc_bn)
            if r.train_loss_eval > ARTIFACT_RATIO * r.loss:
                artifacts += 1
                assert r.val_acc_bn > r.val_acc + ARTIFACT_GAIN, shown
            elif r.train_loss_eval < AGREE_RATIO * r.loss:
                agreements += 1
                assert abs(r.val_acc_bn - r.val_acc) < AGREE_GAP, shown
    # Both cases occur, or the test proves nothing: λ = 1 breaks the statistics.
    table = [(wd, r.epoch, round(r.loss, 3), round(r.train_loss_eval, 3), round(r.val_acc, 3), round(r.val_acc_bn, 3))
             for wd, records in runs.items() for r in records]
    print(table)
    assert artifacts >= 1 and agreements >= 1, table
    assert any(r.train_loss_eval > ARTIFACT_RATIO * r.loss for r in runs[1.0])


#: The measured angle per step within this fraction of √(2λ·lr) once the norm has
#: settled (the prediction assumes updates orthogonal to the kernels, on average).
ANGLE_TOLERANCE = 0.5


@pytest.mark.long
@pytest.mark.timeout(1800)
@pytest.mark.xfail(strict=True, reason=(
    "not reached with Keras' AdamW on ResNet11 here: the scale-invariant kernels' norm stalls "
    "at 2-4x the predicted equilibrium and the angle per step stays at 0.15-0.3 of sqrt(2*lambda*lr) "
    "(digits, lr 1e-3..1e-2, lambda 0.7..20, 8-10 epochs; issue 19's report). Strict: the day "
    "it agrees, this test fails and the marker must go"
))
def test_the_angle_per_step_settles_at_the_rotational_equilibrium(tmp_path):
    from sweeps.config import RunConfig

    # Constant lr 3e-3, λ 3: λ·lr = 0.009, 1/(2λ·lr) ≈ 56 steps to settle; 10 epochs of
    # 32 steps. γ and β exempt, as in the equilibrium's derivation.
    config = RunConfig(
        dataset="digits", depth=11, batch_size=16, train_size=512, validation_size=128, flip=False,
        learning_rate=3e-3, weight_decay=3.0, epochs=10, precision="float32", bn_subset_size=0,
        exclude_from_weight_decay=True, evaluate_ema=False,
    )
    records = _train(config, tmp_path / "run")
    predicted = math.sqrt(2 * 3.0 * 3e-3)
    assert all(r.angle_equilibrium == pytest.approx(predicted) for r in records)
    for r in records[-3:]:  # settled
        assert abs(r.angle_per_step / predicted - 1) < ANGLE_TOLERANCE, [(x.angle_per_step, predicted) for x in records]
