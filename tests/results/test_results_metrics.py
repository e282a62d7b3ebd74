"""The metrics of a run, on hand-made histories."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from results.report.metrics import (
    History,
    best_epoch,
    delta_val_loss,
    val_loss_range,
    epochs_to_thresholds,
    final_minimum,
    first_local_minimum,
    level_epoch,
    run_metrics,
    threshold_epoch,
)


def test_threshold_epoch_is_the_first_epoch_at_or_above_the_threshold(history):
    val_acc = [0.5, 0.8, 0.915, 0.921, 0.93, 0.925]
    records = history(val_acc, acc=[0.6, 0.85, 0.95, 0.9512, 0.96, 0.97])
    metrics = run_metrics(records)
    assert (metrics.threshold_epoch, metrics.threshold_reached, metrics.val_acc_level) == (4, True, 0.92)
    assert metrics.val_acc_at_threshold == 0.921 and metrics.acc_at_threshold == 0.9512
    assert (metrics.epoch_level, metrics.val_acc_at_level, metrics.acc_at_level) == (4, 0.921, 0.9512)
    assert (metrics.epoch_best, metrics.val_acc_best) == (5, 0.93)
    assert metrics.threshold_epochs == {0.92: 4, 0.93: 5}
    assert metrics.epochs_done == 6 and metrics.last_epoch == 6


def _post_run_0() -> list[float]:
    """The post's run 0: never reaches 0.92, peaks at 0.9129 (epoch 60), listed at
    epoch 47 with 0.9123, where it first reached 0.91."""
    val_acc = [0.5 + 0.4 * e / 46 for e in range(1, 47)]  # up to 0.9 at epoch 46
    val_acc += [0.9123] + [0.9105 + 0.0001 * i for i in range(12)] + [0.9129]
    assert len(val_acc) == 60
    return val_acc


def test_a_run_that_never_reaches_the_threshold_shows_its_highest_001_level(history):
    metrics = run_metrics(history(_post_run_0()))
    assert metrics.threshold_reached is False
    # The threshold epoch is empty; the post's (47) is the epoch of its 0.01 level.
    assert metrics.threshold_epoch is None and math.isnan(metrics.val_acc_at_threshold)
    assert math.isnan(metrics.acc_at_threshold)
    assert (metrics.val_acc_level, metrics.epoch_level, metrics.val_acc_at_level) == (0.91, 47, 0.9123)
    assert (metrics.epoch_best, metrics.val_acc_best) == (60, 0.9129)
    assert metrics.threshold_epochs == {0.92: None, 0.93: None}


def test_the_level_survives_float32_and_decimal_rounding():
    # float32's 0.57 is 0.5699999928…, and 0.57 * 100 is 56.99999999999999.
    f32 = float(np.float32(0.57))
    assert f32 < 0.57
    result = level_epoch([1, 2, 3], [0.3, f32, 0.5], 0.92)
    assert (result.epoch, result.reached, result.level) == (2, False, 0.57)
    assert level_epoch([1, 2], [0.3, 0.57], 0.92).level == 0.57


def test_float32_threshold_values_count_as_reached():
    assert threshold_epoch([1, 2], [0.5, float(np.float32(0.92))], 0.92) == 2
    assert threshold_epoch([1, 2], [0.5, 0.92 - 2e-6], 0.92) is None  # beyond the tolerance
    # None and NaN (a diverged epoch) never count; a run that never reaches it: None.
    assert threshold_epoch([1, 2, 3], [None, math.nan, 0.95], 0.92) == 3
    assert threshold_epoch([1, 2], [0.5, 0.6], 0.92) is None


def test_the_runners_objective_uses_the_tables_threshold_epoch():
    """One rule: the objective's threshold epoch has the tables' tolerance."""
    from types import SimpleNamespace

    from sweep_runner.worker import objective_values

    sweep = SimpleNamespace(report=SimpleNamespace(threshold=0.92))
    f32 = float(np.float32(0.92))  # 0.91999996: reached within the tolerance
    epochs = [{"epoch": e, "val_acc": v} for e, v in ((1, 0.5), (2, f32), (3, 0.93))]
    assert objective_values(epochs, sweep) == [0.93, 2.0]
    # Never reached: one past the last epoch, so that a minimising objective ranks it last.
    assert objective_values(epochs[:1], sweep) == [0.5, 2.0]


def test_best_epoch_takes_the_first_of_equal_bests_and_skips_nan():
    assert best_epoch([1, 2, 3, 4], [0.9, 0.93, math.nan, 0.93]) == (2, 0.93)
    epoch, value = best_epoch([1, 2], [math.nan, math.nan])
    assert epoch is None and math.isnan(value)


def test_final_loss_is_the_lowest_loss_before_it_went_up_again(history):
    loss = [1.0, 0.5, 0.1, 0.0203, 0.03, 0.05, 0.045]
    val_loss = [1.2, 0.6, 0.34, 0.3335, 0.36, 0.41, 0.40]
    metrics = run_metrics(history([0.5] * 7, loss=loss, val_loss=val_loss))
    assert metrics.loss_min == 0.0203
    assert metrics.val_loss_min == 0.3335
    assert final_minimum([math.nan, 2.0, 1.0]) == 1.0
    assert math.isnan(final_minimum([]))


def test_delta_val_loss_of_large_fluctuations(history):
    # The LR falls below α/10 (8e-5) at epoch 7: the window is epochs 1 to 6.
    val_loss = [2.0, 1.2, 0.9, 5.0, 0.7, 12.0, 0.3, 0.25]
    lr = [8e-4] * 6 + [4e-5, 1e-5]
    assert first_local_minimum(val_loss) == 2
    # The spike at epoch 6 rises 11.3 above the last low (0.7); the one at epoch 4
    # only 4.2 above the trend from 0.9 to 0.7.
    assert delta_val_loss(val_loss, lr, 8e-4) == pytest.approx(12.0 - 0.7)
    # α defaults to the first epoch's LR.
    assert delta_val_loss(val_loss, lr) == pytest.approx(11.3)
    metrics = run_metrics(history([0.5] * 8, val_loss=val_loss, lr=lr), alpha=8e-4)
    assert metrics.delta_val_loss == pytest.approx(11.3)
    assert metrics.val_loss_range == pytest.approx(12.0 - 0.7)


EPOCHS = np.arange(60)
FALL = 1.5 - 0.9 * EPOCHS / 59  # the steady fall from 1.5 to 0.6
HIGH_LR = [1e-3] * 60


@pytest.mark.parametrize(
    "curve",
    [FALL, 1.5 - 0.9 * (EPOCHS / 59) ** 2, 0.6 + 0.9 * np.exp(-EPOCHS / 10), np.full(60, 0.7)],
    ids=["linear", "concave", "convex", "flat"],
)
def test_a_steady_fall_has_no_fluctuation(curve):
    assert delta_val_loss(curve, HIGH_LR) == 0.0


@pytest.mark.parametrize("height", [0.02, 0.1, 0.5, 4.0])
@pytest.mark.parametrize("at", [1, 30, 58])
def test_one_bump_of_height_h_gives_h(height, at):
    curve = FALL.copy()
    curve[at] += height
    assert delta_val_loss(curve, HIGH_LR) == pytest.approx(height)
    # On a convex fall, too, once the curve falls by less than h per epoch (a bump
    # smaller than the epoch's fall is no swing: the curve still only falls).
    convex = 0.6 + 0.9 * np.exp(-EPOCHS / 10)
    if at >= 30:
        convex[at] += height
        assert delta_val_loss(convex, HIGH_LR) == pytest.approx(height, rel=0.02)


@pytest.mark.parametrize("amplitude", [0.05, 0.1, 0.3, 2.0])
@pytest.mark.parametrize("period", [6, 10, 13])
def test_a_sine_on_a_falling_trend_gives_twice_its_amplitude(amplitude, period):
    curve = FALL + amplitude * np.sin(2 * np.pi * EPOCHS / period)
    # About: the epochs sample the sine, and may miss its exact peaks and troughs.
    assert delta_val_loss(curve, HIGH_LR) == pytest.approx(2 * amplitude, rel=0.15)
    # The range counts the trend too: from the bump's foot down to the end.
    bumped = FALL.copy()
    bumped[30] += 0.1
    assert delta_val_loss(bumped, HIGH_LR) == pytest.approx(0.1)
    assert val_loss_range(bumped, HIGH_LR) == pytest.approx(FALL[30] + 0.1 - 0.6)


def test_the_window_ends_when_the_lr_falls_below_a_tenth_of_alpha():
    curve = FALL.copy()
    curve[45] += 3.0  # after the LR fell: not counted
    curve[10] += 0.2
    lr = [1e-3] * 40 + [5e-5] * 20
    assert delta_val_loss(curve, lr, 1e-3) == pytest.approx(0.2)
    assert delta_val_loss(curve, HIGH_LR, 1e-3) == pytest.approx(3.0)


def test_delta_val_loss_of_small_fluctuations_and_edges():
    val_loss = [1.0, 0.5, 0.45, 0.52, 0.44, 0.49, 0.3]
    lr = [1e-3] * 7  # never falls: the window runs to the end
    # 0.49 stands 0.12 above the trend from 0.44 to 0.3; 0.52 only 0.075.
    assert delta_val_loss(val_loss, lr, 1e-3) == pytest.approx(0.12)
    assert val_loss_range(val_loss, lr, 1e-3) == pytest.approx(0.52 - 0.3)
    # A val_loss that falls until the LR does fluctuates by 0; its range has no window.
    assert delta_val_loss([3.0, 2.0, 1.0, 0.5], [1e-3, 1e-3, 1e-5, 1e-5], 1e-3) == 0.0
    assert math.isnan(val_loss_range([3.0, 2.0, 1.0, 0.5], [1e-3, 1e-3, 1e-5, 1e-5], 1e-3))
    # A diverged run: NaN epochs are skipped, an infinite val_loss is an infinite swing.
    assert delta_val_loss([1.0, 0.8, math.nan, 0.9, 0.5], [1e-3] * 5) == pytest.approx(0.9 - 0.65)
    assert delta_val_loss([1.0, math.inf, 0.5], [1e-3] * 3) == math.inf
    assert math.isnan(delta_val_loss([math.nan] * 3, [1e-3] * 3))
    assert math.isnan(delta_val_loss([2.0, 1.0], [1e-5, 1e-5], 1e-3))  # empty window
    # A val_loss that rises at once has its first local minimum at epoch 1.
    assert first_local_minimum([0.5, 0.9, 0.7]) == 0
    assert first_local_minimum([math.nan, 2.0, 1.0, 3.0]) == 2
    assert first_local_minimum([]) is None


def test_epochs_to_thresholds():
    assert epochs_to_thresholds([1, 2, 3, 4], [0.91, 0.925, 0.931, 0.94], (0.92, 0.93, 0.95)) == {
        0.92: 2,
        0.93: 3,
        0.95: None,
    }


def test_records_in_any_order_and_missing_values(history):
    records = history([0.5, 0.93, 0.92])
    records[1]["val_loss"] = None
    history = History.from_records(reversed(records))
    assert history.epoch.tolist() == [1, 2, 3]
    assert math.isnan(history.val_loss[1])
    assert run_metrics(history).threshold_epoch == 2


def test_an_empty_history():
    metrics = run_metrics([])
    assert metrics.threshold_epoch is None and metrics.epoch_best is None
    assert math.isnan(metrics.val_acc_best) and math.isnan(metrics.delta_val_loss)
    assert metrics.epochs_done == 0 and metrics.last_epoch is None


@settings(max_examples=200, deadline=None)
@pytest.mark.fuzz
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), st.sampled_from([0.5, 0.9, 0.92, 0.93]))
def test_threshold_epoch_properties(val_acc, threshold):
    epochs = list(range(1, len(val_acc) + 1))
    result = level_epoch(epochs, val_acc, threshold)
    assert (threshold_epoch(epochs, val_acc, threshold) is not None) == result.reached
    epoch_best, best = best_epoch(epochs, val_acc)
    assert result.epoch is not None and result.epoch <= epoch_best
    assert val_acc[result.epoch - 1] >= result.level - 1e-6
    if result.reached:
        assert result.level == threshold
    else:
        assert best < threshold and best - 0.01 - 1e-6 <= result.level <= best + 1e-6
        assert all(v < result.level - 1e-6 for v in val_acc[: result.epoch - 1])


@settings(max_examples=200, deadline=None)
@pytest.mark.fuzz
@given(st.lists(st.floats(0.01, 20.0), min_size=1, max_size=40), st.integers(0, 40))
def test_delta_val_loss_properties(val_loss, fall):
    lr = [1e-3 if e < fall else 1e-5 for e in range(len(val_loss))]
    delta = delta_val_loss(val_loss, lr, 1e-3)
    assert math.isnan(delta) == (fall == 0)
    assert math.isnan(delta) or 0.0 <= delta <= max(val_loss) - min(val_loss)
    ranged = val_loss_range(val_loss, lr, 1e-3)
    assert math.isnan(ranged) or 0.0 <= ranged <= max(val_loss) - min(val_loss)
