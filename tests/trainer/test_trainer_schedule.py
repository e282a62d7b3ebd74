"""The piecewise-linear schedule against `sweeps.config.Schedule.value_at`, per step."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweeps.config import RunConfig, Schedule

pytestmark = pytest.mark.backend

STEPS = 782  # CIFAR-10 at batch 64: ceil(50000 / 64)
POST_SCHEDULES = [
    "[8.e-4, 20][8.e-5, 40][1.e-5, 50][4.e-6, 60]",  # Table 1, runs 0-2
    "[8.e-4, 20][4.e-4, 20][8.e-5, 40][1.e-5, 50][2.e-6, 60]",  # run 7: a step at epoch 20
    "[8.e-4, 0][4.e-4, 20][2.e-4, 30][8.e-5, 40][1.e-5, 50][1.e-6, 60]",  # runs 13-15
    "[8.e-4, 18][1.e-5, 26][2.e-6, 36]",  # run 25
]


def _value(schedule, step: int) -> float:
    import keras

    return float(keras.ops.convert_to_numpy(schedule(step)))


@pytest.mark.parametrize("notation", POST_SCHEDULES)
def test_post_schedules_at_chosen_steps(notation: str) -> None:
    from trainer.schedule import PiecewiseLinear

    reference = Schedule.model_validate(notation)
    schedule = PiecewiseLinear(reference.absolute(8e-4), STEPS)
    steps = [0, 1, 391, 20 * STEPS - 1, 20 * STEPS, 20 * STEPS + 1, 25 * STEPS + 100,
             30 * STEPS, 30 * STEPS + 391, 45 * STEPS, 60 * STEPS - 1, 60 * STEPS, 70 * STEPS]
    for step in steps:
        expected = reference.value_at(step / STEPS, 8e-4)
        assert _value(schedule, step) == pytest.approx(expected, rel=2e-6), step


def test_known_values() -> None:
    from trainer.schedule import PiecewiseLinear

    plain = PiecewiseLinear(Schedule.model_validate(POST_SCHEDULES[0]).absolute(8e-4), STEPS)
    assert _value(plain, 10 * STEPS) == pytest.approx(8e-4, rel=1e-6)  # flat phase
    assert _value(plain, 30 * STEPS) == pytest.approx(4.4e-4, rel=1e-6)  # halfway to 8e-5
    assert _value(plain, 60 * STEPS) == pytest.approx(4e-6, rel=1e-6)

    step = PiecewiseLinear(Schedule.model_validate(POST_SCHEDULES[1]).absolute(8e-4), STEPS)
    assert _value(step, 20 * STEPS - 1) == pytest.approx(8e-4, rel=1e-6)
    assert _value(step, 20 * STEPS) == pytest.approx(4e-4, rel=1e-6)  # the later value
    assert _value(step, 30 * STEPS) == pytest.approx(2.4e-4, rel=1e-6)  # 4e-4 → 8e-5

    declining = PiecewiseLinear(Schedule.model_validate(POST_SCHEDULES[2]).absolute(8e-4), STEPS)
    assert _value(declining, STEPS) == pytest.approx(8e-4 - 4e-4 / 20, rel=1e-6)


def test_relative_schedule_and_constant_lr() -> None:
    from trainer.schedule import schedule_for

    config = RunConfig(
        learning_rate=4e-4, epochs=40,
        schedule={"breakpoints": "[1.0, 20][0.1, 40]", "relative": True},
    )
    schedule = schedule_for(config, 100)
    assert _value(schedule, 3000) == pytest.approx(config.lr_at(30), rel=1e-6)
    assert _value(schedule, 3000) == pytest.approx(2.2e-4, rel=1e-6)
    constant = schedule_for(RunConfig(learning_rate=3e-4, epochs=5), 10)
    assert _value(constant, 0) == _value(constant, 49) == pytest.approx(3e-4, rel=1e-7)


def test_serializable() -> None:
    import keras

    from trainer.schedule import PiecewiseLinear

    schedule = PiecewiseLinear([(8e-4, 20), (4e-4, 20), (8e-5, 40)], 782)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(copy, PiecewiseLinear)
    assert copy.get_config() == schedule.get_config()
    assert _value(copy, 25 * 782) == _value(schedule, 25 * 782)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    rebuilt = keras.optimizers.AdamW.from_config(optimizer.get_config())
    assert isinstance(rebuilt._learning_rate, PiecewiseLinear)


@st.composite
def _schedules(draw: st.DrawFn) -> list[tuple[float, float]]:
    count = draw(st.integers(1, 5))
    epochs = sorted(draw(st.lists(st.integers(0, 60), min_size=count, max_size=count)))
    values = draw(st.lists(st.floats(1e-6, 1e-2), min_size=count, max_size=count))
    return list(zip(values, [float(e) for e in epochs], strict=True))


@settings(max_examples=40, deadline=None)
@pytest.mark.fuzz
@given(pairs=_schedules(), steps_per_epoch=st.integers(1, 1000), epoch=st.floats(0, 70))
def test_matches_value_at_anywhere(
    pairs: list[tuple[float, float]], steps_per_epoch: int, epoch: float
) -> None:
    from trainer.schedule import PiecewiseLinear

    step = math.floor(epoch * steps_per_epoch)
    expected = Schedule(breakpoints=tuple(pairs)).value_at(step / steps_per_epoch, 1.0)
    got = _value(PiecewiseLinear(pairs, steps_per_epoch), step)
    # float32 arithmetic, so allow a few ulps of the largest value involved.
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6 * max(v for v, _ in pairs))
    assert np.isfinite(got)
