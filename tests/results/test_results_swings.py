"""Issue 19's swings both ways (`val_loss_swing`, `val_acc_dip`), the equilibrium
epoch, test_acc at the best epoch and the BatchNorm-true best val_acc."""

from __future__ import annotations

import math

import numpy as np
import pytest

from results.report.metrics import (
    delta_val_loss,
    equilibrium_epoch,
    run_metrics,
    swing_amplitude,
    value_at_best,
)

EPOCHS = np.arange(40, dtype=np.float64)
CONSTANT_LR = np.full(40, 1e-3)


@pytest.mark.parametrize("curve", [5 * np.exp(-EPOCHS / 8), 1 + 0.05 * EPOCHS, 0.5 + np.sqrt(EPOCHS)])
def test_a_smooth_monotone_curve_either_way_gives_zero(curve):
    assert swing_amplitude(curve, CONSTANT_LR) == 0.0
    assert swing_amplitude(-curve, CONSTANT_LR) == 0.0


def test_a_u_shaped_curve_counts_no_rise_that_follows_a_fall_before_the_window():
    overfitting = (EPOCHS - 3) ** 2 / 10  # lowest at epoch 4, then a smooth rise
    assert swing_amplitude(overfitting, CONSTANT_LR, start=5) == 0.0
    # Today's Δval_loss counts that rise in full.
    assert delta_val_loss(overfitting, CONSTANT_LR) == pytest.approx(overfitting[-1] - overfitting[3])
    # With the fall inside the window, the part no monotone trend explains: here the
    # fall from epoch 6 (the shorter arm).
    late = (EPOCHS - 22) ** 2 / 10
    assert swing_amplitude(late, CONSTANT_LR, start=5) == pytest.approx(late[5] - late[22])


@pytest.mark.parametrize("h", [0.3, 3.0])
@pytest.mark.parametrize("trend", [np.ones(40), 2 + np.exp(-EPOCHS / 5)])
def test_a_bump_of_height_h_gives_h(h, trend):
    bumped = trend.copy()
    bumped[20] += h
    assert swing_amplitude(bumped, CONSTANT_LR) == pytest.approx(h, rel=0.02)
    dipped = trend.copy()
    dipped[20] -= h  # a dip counts as a bump does: the curve swings both ways
    assert swing_amplitude(dipped, CONSTANT_LR) == pytest.approx(h, rel=0.02)


def test_the_window_skips_the_start_and_ends_where_the_lr_falls():
    curve = np.ones(40)
    curve[2] += 5.0  # a start-up spike
    curve[30] += 1.0  # after the LR fell below α/10
    lr = np.where(EPOCHS < 25, 1e-3, 1e-5)
    assert swing_amplitude(curve, lr, start=5) == 0.0
    assert swing_amplitude(curve, lr, start=0) == pytest.approx(5.0)
    assert math.isnan(swing_amplitude([1.0] * 6, [1e-3] * 6, start=5))  # one value: no trend
    assert swing_amplitude(np.r_[np.ones(10), math.inf], np.ones(11), start=5) == math.inf


def test_val_acc_dips_and_the_run_level_columns():
    val_acc = np.minimum(0.9, 0.5 + 0.02 * EPOCHS)
    val_acc[25] -= 0.4  # one dip
    records = [
        {"epoch": e + 1, "loss": 1.0, "acc": 0.9, "val_loss": 1.0, "val_acc": val_acc[e], "lr": 1e-3,
         "val_acc_bn": 0.95 if e == 10 else 0.5, "val_acc_ema_bn": 0.97 if e == 12 else 0.6,
         "test_acc": 0.8 + e / 1000,
         "weight_norm_invariant": 30 - 0.6 * e, "weight_norm_equilibrium": 20.0}
        for e in range(40)
    ]
    metrics = run_metrics(records)
    assert metrics.val_acc_dip == pytest.approx(0.4, rel=0.02)
    assert metrics.val_loss_swing == 0.0
    assert metrics.val_acc_bn_best == 0.95
    assert metrics.val_acc_ema_bn_best == 0.97
    best = int(np.argmax(val_acc))  # the first epoch at 0.9
    assert metrics.test_acc_at_best == pytest.approx(0.8 + best / 1000)
    # 30 − 0.6·e within 10 % of 20 (≤ 22) first at e = 14 (21.6): epoch 15.
    assert metrics.epoch_equilibrium == 15
    assert equilibrium_epoch([1, 2], [1.0, 1.0], [math.nan, math.nan]) is None
    assert math.isnan(value_at_best([1, 2], np.array([math.nan, math.nan]), np.array([0.1, 0.2])))
