"""The per-epoch measurements: EMA validation, the kernels' statistics, the test split.

The acceptance test of issue 11 trains a 2 × 2 grid on real data (digits): λ ∈ {0, 0.5}
× m ∈ {0.5, 0.999}. Training must not depend on m (the EMA weights are only evaluated,
never trained on), the EMA columns must, and decay must shrink the kernels.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from trainer.records import EpochRecord

NEW_COLUMNS = (
    "val_loss_ema", "val_acc_ema", "test_loss", "test_acc", "weight_norm", "weight_norm_stage1",
    "weight_norm_stage2", "weight_norm_stage3", "effective_lr", "angular_update",
)
RAW_COLUMNS = ("loss", "acc", "val_loss", "val_acc", "weight_norm", "weight_norm_stage3",
               "effective_lr", "angular_update")


def test_angle_is_exact_for_tiny_and_right_angles():
    from trainer.weight_stats import angle

    a = np.array([1.0, 0.0, 0.0])
    assert angle(a, np.array([0.0, 3.0, 0.0])) == pytest.approx(math.pi / 2)
    assert angle(a, 5 * a) == 0.0  # scale does not turn a kernel
    tiny = np.array([1.0, 1e-9, 0.0])
    assert angle(a, tiny) == pytest.approx(1e-9, rel=1e-6)  # arccos would give 0
    assert math.isnan(angle(a, np.zeros(3)))


def _consumers(model) -> dict[str, list[str]]:
    """Layer name → the class names of the layers that take its output (public config)."""
    consumers: dict[str, list[str]] = {}
    for layer in model.get_config()["layers"]:
        for node in layer["inbound_nodes"]:
            text = json.dumps(node)
            for other in model.layers:
                if f'"keras_history": ["{other.name}",' in text:
                    consumers.setdefault(other.name, []).append(layer["class_name"])
    return consumers


@pytest.mark.slow
@pytest.mark.backend
@pytest.mark.timeout(120)
def test_the_scale_invariant_kernels_are_those_only_batchnorm_follows():
    from trainer.model import build_resnet_v2
    from trainer.weight_stats import kernel_groups

    model = build_resnet_v2(20, (16, 16, 3), 10)
    consumers = _consumers(model)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    followed_by_bn = {l.name for l in convs if consumers[l.name] == ["BatchNormalization"]}
    groups = kernel_groups(model)
    by_kernel = {id(l.kernel): l.name for l in convs}
    assert {by_kernel[id(k)] for k in groups.scale_invariant} == followed_by_bn
    assert len(groups.all) == len(convs) == 1 + 3 * (2 * 3 + 1)  # stem + 3 stages × (2 blocks × 3 + shortcut)
    assert [len(stage) for stage in groups.stages] == [7, 7, 7]


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.backend
@pytest.mark.timeout(120)
def test_evaluating_with_the_averages_puts_the_weights_back_bit_for_bit(tiny_config):
    import keras

    from trainer.ema import averaged_weights
    from trainer.train import build_model

    config = tiny_config(ema_momentum=0.9)
    model, optimizer = build_model(config, (16, 16, 3), 10, 2)
    x = np.random.default_rng(0).random((32, 16, 16, 3), dtype=np.float32)
    y = np.arange(32) % 10
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    raw = [np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
    with averaged_weights(model, optimizer):
        inside = [np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
        model.evaluate(x, y, verbose=0)
    after = [np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
    assert any(not np.array_equal(a, b) for a, b in zip(raw, inside, strict=True))  # averages were in
    assert all(np.array_equal(a, b) for a, b in zip(raw, after, strict=True))  # exactly back


def _train(tmp_path, weight_decay: float, ema_momentum: float) -> list[EpochRecord]:
    from sweeps.config import RunConfig
    from trainer import train

    config = RunConfig(
        dataset="digits", depth=11, epochs=2, batch_size=64, train_size=256, validation_size=128,
        validation="stratified:0.2", learning_rate=2e-3, weight_decay=weight_decay,
        ema_momentum=ema_momentum, precision="float32",
    )
    records: list[EpochRecord] = []
    result = train(config, records.append, tmp_path / f"{weight_decay}-{ema_momentum}")
    assert result.status == "completed"
    return records


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_m_changes_the_ema_columns_only_and_decay_shrinks_the_kernels(tmp_path):
    # Three runs: m 0.5 against 0.999 without decay, then λ 0.5 against none at m 0.5.
    runs = {(wd, m): _train(tmp_path, wd, m) for wd, m in ((0.0, 0.5), (0.0, 0.999), (0.5, 0.5))}
    fast, slow = runs[0.0, 0.5], runs[0.0, 0.999]
    for column in RAW_COLUMNS:  # training does not depend on m
        np.testing.assert_allclose(
            [getattr(r, column) for r in fast], [getattr(r, column) for r in slow], rtol=1e-5,
            err_msg=column,
        )
    ema_gap = max(abs(a.val_loss_ema - b.val_loss_ema) for a, b in zip(fast, slow, strict=True))
    assert ema_gap > 1e-3, ema_gap
    # Every new column is measured: EMA on, validation a split, so a test set.
    for records in runs.values():
        assert all(math.isfinite(getattr(r, c)) for r in records for c in NEW_COLUMNS)
    decayed = runs[0.5, 0.5]
    assert decayed[-1].weight_norm < fast[-1].weight_norm
    assert decayed[-1].effective_lr > fast[-1].effective_lr


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.backend
@pytest.mark.timeout(120)
def test_without_evaluate_ema_or_a_split_those_columns_stay_nan(tmp_path, tiny_config):
    from trainer import train

    config = tiny_config(epochs=1, evaluate_ema=False)
    assert config.run_key == tiny_config(epochs=1).run_key  # only measures: the same run
    records: list[EpochRecord] = []
    train(config, records.append, tmp_path)
    (record,) = records
    # No EMA validation asked for, validation is the test set: not measured.
    assert all(math.isnan(getattr(record, c)) for c in ("val_loss_ema", "val_acc_ema", "test_loss", "test_acc"))
    # The kernels are always measured: 1 + 3 stages, the norms add up.
    stages = [record.weight_norm_stage1, record.weight_norm_stage2, record.weight_norm_stage3]
    assert all(s > 0 for s in stages) and sum(s * s for s in stages) < record.weight_norm**2
    # he_normal kernels have ‖w‖ ≈ √(2·filters) ≥ √32, so lr/‖w‖ is well below lr.
    assert 0 < record.effective_lr < record.lr / 4 and 0 < record.angular_update < math.pi / 2
