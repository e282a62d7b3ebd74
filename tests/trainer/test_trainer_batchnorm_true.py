"""Issue 19's per-epoch measurements: BatchNorm-true validation (PreciseBN), the
cross-entropy without the penalty, the norms of the head and of γ, the angle per step.

The BatchNorm measurement runs forward passes in training mode between epochs; it must
put everything back, so that a run with it trains bit for bit as a run without it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainer.records import EpochRecord

BN_COLUMNS = ("val_loss_bn", "val_acc_bn", "val_loss_ema_bn", "val_acc_ema_bn", "train_loss_eval")
NORM_COLUMNS = ("weight_norm_invariant", "weight_norm_other", "dense_kernel_norm", "bn_gamma_norm")
STEP_COLUMNS = ("angle_per_step", "angle_equilibrium", "weight_norm_equilibrium")


def _train(config, folder, stop_after: int | None = None) -> list[EpochRecord]:
    """The run's records; with `stop_after` it stops after that many epochs, so that
    its checkpoint (every variable of the model and the optimizer) stays."""
    from trainer import train

    records: list[EpochRecord] = []
    result = train(config, records.append, folder, should_stop=lambda: len(records) == stop_after)
    assert result.status == ("completed" if stop_after is None else "stopped")
    return records


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_batchnorm_measurement_changes_nothing_of_the_training(tiny_config, tmp_path):
    # Augmentation on (its seed state must be put back), EMA on, a split (test set).
    settings = dict(epochs=3, shift=0.1, flip=True, validation="stratified:0.25", weight_decay=0.5)
    measured = tiny_config(**settings)
    unmeasured = tiny_config(**settings, bn_subset_size=0)
    assert measured.run_key == unmeasured.run_key  # only measures: the same run
    with_bn = _train(measured, tmp_path / "with", stop_after=2)
    without = _train(unmeasured, tmp_path / "without", stop_after=2)
    for a, b in zip(with_bn, without, strict=True):
        for column in ("loss", "acc", "val_loss", "val_acc", "val_loss_ema", "test_acc", "weight_norm"):
            assert getattr(a, column) == getattr(b, column), column  # bit for bit
        assert all(math.isfinite(getattr(a, c)) for c in BN_COLUMNS + NORM_COLUMNS + STEP_COLUMNS)
        assert all(math.isnan(getattr(b, c)) for c in BN_COLUMNS)
    # Every variable of the model and optimizer (seed state, iterations, moments,
    # averages) after two epochs: the checkpoints are identical.
    saved = [np.load(tmp_path / name / "checkpoint.npz") for name in ("with", "without")]
    assert sorted(saved[0].files) == sorted(saved[1].files)
    variables = [name for name in saved[0].files if name.startswith(("model_", "optimizer_"))]
    assert len(variables) > 50
    for name in variables:
        np.testing.assert_array_equal(saved[0][name], saved[1][name], err_msg=name)
    # The recomputed statistics do change the validation.
    assert any(r.val_loss_bn != r.val_loss for r in with_bn)


@pytest.mark.backend
@pytest.mark.timeout(60)
def test_recomputed_statistics_are_the_cumulative_average_without_augmentation():
    import keras

    from trainer.augment import ShiftFlip
    from trainer.precise_bn import StatisticsRecomputer, everything_restored

    inputs = keras.Input((8, 8, 2))
    shifted = ShiftFlip(0.4, True, seed=3, name="shift_flip")(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.9)(shifted))
    x = np.random.default_rng(0).random((40, 8, 8, 2), dtype=np.float32) ** 3
    x[:, :, :4] += 2.0  # a shift would change the channel means
    recompute = StatisticsRecomputer(model)
    layers = recompute.layers
    seed_before = [np.array(v) for v in model.variables]
    with everything_restored(model, keras.optimizers.Adam()):
        recompute(x, batch_size=16)
        # Batches of 16, 16 and 8 images, each weighted by its size.
        batches = [x[:16], x[16:32], x[32:]]
        mean = sum(len(b) * b.mean(axis=(0, 1, 2)) for b in batches) / len(x)
        variance = sum(len(b) * b.var(axis=(0, 1, 2)) for b in batches) / len(x)
        np.testing.assert_allclose(layers[0].moving_mean.numpy(), mean, rtol=1e-5)
        np.testing.assert_allclose(layers[0].moving_variance.numpy(), variance, rtol=1e-4)
        assert layers[0].momentum == 0.9
    for before, variable in zip(seed_before, model.variables, strict=True):
        np.testing.assert_array_equal(before, np.array(variable))


def test_the_default_subset_is_ten_percent_at_most_two_thousand():
    from trainer.precise_bn import bn_subset, subset_size

    assert subset_size(None, 500) == 50 and subset_size(None, 50_000) == 2000
    assert subset_size(0, 500) == 0 and subset_size(900, 500) == 500
    subset = bn_subset(500, 50, seed=1)
    assert len(set(subset)) == 50 and np.array_equal(subset, bn_subset(500, 50, seed=1))
    assert not np.array_equal(subset, bn_subset(500, 50, seed=2))


def test_a_step_gives_its_angle_the_prediction_and_the_equilibrium_norm():
    from trainer.step_angle import StepAngles

    lr = 0.02
    w = np.zeros((3, 3, 4, 4))
    w[0, 0, 0, 0] = 2.0
    u = np.zeros_like(w)
    u[0, 0, 0, 1] = 1.0  # orthogonal to w
    after = w * (1 - 0.5 * lr) - lr * u
    without_momentum = StepAngles((), None, weight_decay=0.5, steps_per_epoch=100, beta_1=0.0)
    turned, predicted, norm = without_momentum._sample([w], [after], lr)
    assert turned == pytest.approx(math.atan2(lr, 2.0 * (1 - 0.5 * lr)))
    assert predicted == pytest.approx(math.sqrt(2 * 0.5 * lr))
    # ‖w‖² = lr·C/(2λ), C = 144 elements: whatever this step's update was.
    assert norm == pytest.approx(math.sqrt(lr * 144 / (2 * 0.5)))
    # Keras' β₁ = 0.9: a step moves only the momentum's share, √(0.1/1.9) ≈ 0.23 of it;
    # the norm does not depend on β₁.
    with_momentum = StepAngles((), None, weight_decay=0.5, steps_per_epoch=100, beta_1=0.9)
    _, predicted_09, norm_09 = with_momentum._sample([w], [after], lr)
    assert predicted_09 == pytest.approx(math.sqrt(2 * 0.5 * lr * 0.1 / 1.9))
    assert predicted_09 / predicted == pytest.approx(0.2294, abs=1e-4)
    assert norm_09 == pytest.approx(norm)


def test_no_decay_has_no_equilibrium():
    from trainer.step_angle import equilibrium

    assert all(math.isnan(value) for value in equilibrium(0.0, 1e-3, 0.9, 100))
    assert all(math.isnan(value) for value in equilibrium(0.1, 0.0, 0.9, 100))


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cross_entropy_without_the_penalty_the_horizon_and_the_norms(tiny_config, tmp_path):
    plain = _train(tiny_config(epochs=1, ema_momentum=0.9), tmp_path / "plain")[0]
    penalized = _train(tiny_config(epochs=1, ema_momentum=0.9, l2=0.01), tmp_path / "l2")[0]
    assert plain.xent == pytest.approx(plain.loss, rel=1e-5)
    assert plain.val_xent == pytest.approx(plain.val_loss, rel=1e-5)
    assert penalized.xent < penalized.loss - 1e-3 and penalized.val_xent < penalized.val_loss - 1e-3
    # 128 images in batches of 16: 8 steps an epoch; 1/((1 − 0.9)·8) = 1.25 epochs.
    assert plain.ema_horizon_epochs == pytest.approx(1.25)
    total = plain.weight_norm_invariant**2 + plain.weight_norm_other**2
    assert total == pytest.approx(plain.weight_norm**2, rel=1e-6)
    assert plain.dense_kernel_norm > 0 and plain.bn_gamma_norm > 0
    assert 0 < plain.angle_per_step < plain.angular_update


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_group_trains_once_and_its_averages_are_keras_own(tiny_config, tmp_path):
    """Three values of m in one training: the raw columns are the training's, each
    member's EMA columns equal a separate run's with Keras' own average of that m."""
    from trainer import train

    configs = [tiny_config(epochs=2, ema_momentum=m) for m in (0.5, 0.9, 0.99)]
    assert len({c.training_key for c in configs}) == 1 and len({c.run_key for c in configs}) == 3
    assert tiny_config(ema_momentum=0.5, ema_overwrite_frequency=2).training_key != configs[0].training_key
    lead: list[EpochRecord] = []
    others: dict[int, list[EpochRecord]] = {0: [], 1: []}
    result = train(configs[0], lead.append, tmp_path / "group", members=configs[1:],
                   on_member_epoch=lambda i, record: others[i].append(record))
    assert result.status == "completed" and len(lead) == len(others[0]) == len(others[1]) == 2
    alone = _train(configs[2], tmp_path / "alone")
    for a, b, c, solo in zip(lead, others[0], others[1], alone, strict=True):
        for column in ("loss", "acc", "val_loss", "val_acc", "weight_norm", "val_loss_bn", "angle_per_step"):
            assert getattr(a, column) == getattr(b, column) == getattr(c, column), column
        assert len({a.val_loss_ema, b.val_loss_ema, c.val_loss_ema}) == 3  # each its own m
        assert (a.ema_horizon_epochs, b.ema_horizon_epochs) == pytest.approx((1 / (0.5 * 8), 1 / (0.1 * 8)))
        # m 0.99's average in the group = Keras' optimizer EMA of a run with m 0.99.
        assert c.val_loss_ema == pytest.approx(solo.val_loss_ema, rel=1e-5)
        assert c.val_loss_ema_bn == pytest.approx(solo.val_loss_ema_bn, rel=1e-5)
        assert c.loss == solo.loss
