"""train(): real learning, reports, divergence, stop and resume (also after SIGKILL)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sweeps.config import RunConfig
from sweeps.errors import InputError

pytestmark = pytest.mark.backend

REPO = Path(__file__).resolve().parents[2]


def _train(config: RunConfig, directory: Path, **kwargs):
    from trainer import train

    records = []
    result = train(config, records.append, directory, **kwargs)
    return records, result


@pytest.mark.long
@pytest.mark.slow
def test_two_epochs_on_digits_learn() -> None:
    """Real learning: ResNet11v2 on scikit-learn's digits, two epochs, val_acc > 0.8."""
    # Batch 16 at α 2e-3 takes half the time but reaches only 0.77 on JAX (0.89 on
    # TensorFlow): too close to the bar to prove learning on every backend.
    config = RunConfig(
        dataset="digits", depth=11, epochs=2, batch_size=8, learning_rate=1e-3,
        schedule="[1.e-3, 0][1.e-4, 2]", flip=False, precision="float32",
    )
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        records, result = _train(config, Path(directory))
    assert result.status == "completed"
    assert records[-1].val_acc > 0.8, [r.as_dict() for r in records]
    assert records[-1].loss < records[0].loss


@pytest.mark.long
def test_the_train_step_is_traced_once(tiny_config, tmp_path: Path, monkeypatch) -> None:
    """Keras creates the compiled metrics inside the first traced step on TensorFlow,
    and a traced function that creates variables is traced twice; the trainer builds
    them first. Traced Python runs once per trace: count the calls."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function's double trace; JAX builds the metrics symbolically")
    traces = []
    original = keras.Model.train_step

    def counted(self, data):
        traces.append(1)
        return original(self, data)

    monkeypatch.setattr(keras.Model, "train_step", counted)
    _, result = _train(tiny_config(epochs=2), tmp_path)
    assert result.status == "completed" and len(traces) == 1


@pytest.mark.long
def test_reports_every_epoch_and_keeps_best_and_last(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(epochs=3, schedule="[1.e-3, 0][1.e-4, 3]", ema_momentum=0.9)
    records, result = _train(config, tmp_path)
    assert [r.epoch for r in records] == [1, 2, 3]
    for record in records:
        assert list(record.as_dict()) == [
            "epoch", "loss", "acc", "val_loss", "val_acc", "lr", "seconds", "images_per_second",
            "val_loss_ema", "val_acc_ema", "test_loss", "test_acc", "weight_norm", "weight_norm_stage1",
            "weight_norm_stage2", "weight_norm_stage3", "effective_lr", "angular_update",
            "xent", "val_xent", "val_loss_bn", "val_acc_bn", "val_loss_ema_bn", "val_acc_ema_bn",
            "train_loss_eval", "weight_norm_invariant", "weight_norm_other", "dense_kernel_norm",
            "bn_gamma_norm", "angle_per_step", "angle_equilibrium", "weight_norm_equilibrium",
            "ema_horizon_epochs",
        ]
        # EMA on: measured; validation is the test set: no test columns.
        assert 0.0 <= record.val_acc_ema <= 1.0 and math.isnan(record.test_acc)
        assert record.lr == pytest.approx(config.lr_at(record.epoch), rel=1e-6)
        assert record.seconds > 0 and record.images_per_second > 0
        assert 0.0 <= record.val_acc <= 1.0 and math.isfinite(record.val_loss)
    assert result.status == "completed" and result.epochs_completed == 3
    assert result.diverged_at is None and result.failure_reason is None
    best = max(records, key=lambda r: r.val_acc)
    assert result.best_val_acc == best.val_acc and result.best_epoch == best.epoch
    assert set(result.versions) == {"keras", "backend", "backend_version", "device"}
    assert result.versions["backend"] == os.environ.get("KERAS_BACKEND", "tensorflow")
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["best.weights.h5", "last.weights.h5", "result.json"]

    # An ended run started again reports nothing new and returns the same result.
    again, second = _train(config, tmp_path)
    assert again == [] and second == result


@pytest.mark.long
@pytest.mark.slow
def test_the_same_seed_gives_the_same_run(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(epochs=1, shift=0.1)
    first, _ = _train(config, tmp_path / "a")
    second, _ = _train(config, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.loss == pytest.approx(b.loss, rel=1e-5)
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-5)
        assert a.acc == b.acc and a.val_acc == b.val_acc
    # Another seed: other initial weights (building the model is enough to see it).
    from trainer.train import build_model

    weights = {}
    for seed in (0, 0, 1):
        model, _ = build_model(tiny_config(seed=seed), (16, 16, 3), 10, 8)
        weights.setdefault(seed, []).append(model.trainable_variables[0].numpy())
    np.testing.assert_array_equal(weights[0][0], weights[0][1])
    assert not np.array_equal(weights[0][0], weights[1][0])


@pytest.mark.slow
def test_nan_loss_ends_the_run_as_diverged(tiny_config, tmp_path: Path) -> None:
    # A step to an absurd LR after epoch 1 blows the weights up in epoch 2.
    config = tiny_config(epochs=4, learning_rate=1e-3, schedule="[1.e-3, 1][1.e+30, 1]")
    phases: list[str] = []
    records, result = _train(config, tmp_path, on_phase=phases.append)
    # What a run says it does: only the first epoch of a process compiles.
    assert phases == ["loading the data", "building the model", "epoch 1/4 (compiling)", "epoch 2/4"]
    assert result.status == "diverged"
    assert result.diverged_at == 2 and result.failure_reason == "diverged at epoch 2"
    assert result.epochs_completed == 1 and result.best_epoch == 1
    assert [r.epoch for r in records] == [1, 2]
    assert not math.isfinite(records[1].loss) and math.isnan(records[1].val_acc)
    assert {"best.weights.h5", "last.weights.h5", "result.json"} <= {p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / "checkpoint.npz").exists()
    again, second = _train(config, tmp_path)
    assert again == [] and second.status == "diverged" and second.diverged_at == 2


@pytest.mark.long
@pytest.mark.slow
def test_stop_then_continue_seamlessly(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(epochs=3, schedule="[1.e-3, 0][1.e-4, 3]")
    records, result = _train(config, tmp_path, should_stop=lambda: True)
    assert result.status == "stopped" and result.epochs_completed == 1
    assert result.failure_reason == "stopped after epoch 1"
    assert [r.epoch for r in records] == [1]

    with np.load(tmp_path / "checkpoint.npz") as saved:
        state = json.loads(str(saved["state"]))
        assert state["epochs_done"] == 1 and len(state["history"]) == 1
        steps = math.ceil(128 / 16)
        assert int(saved["optimizer_0"]) == steps  # the iteration count
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    rest, result = _train(config, tmp_path)
    assert [r.epoch for r in rest] == [2, 3]
    assert rest[0].lr == pytest.approx(config.lr_at(2), rel=1e-6)
    assert result.status == "completed" and result.epochs_completed == 3
    history = json.loads((tmp_path / "result.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[0]["loss"] == records[0].loss


@pytest.mark.slow
def test_a_folder_of_another_run_is_refused(tiny_config, tmp_path: Path) -> None:
    _train(tiny_config(epochs=2), tmp_path, should_stop=lambda: True)
    with pytest.raises(InputError, match="holds run"):
        _train(tiny_config(epochs=2, seed=3), tmp_path)


# -- each option changes the run: one epoch of 4 steps, against the same run without it --
# (On TensorFlow only: what they prove is the configuration's path, not the backend.)

# EMA with a short memory (m = 0.5), so that the averages differ clearly from the weights.
_BASE = dict(
    dataset="synthetic", depth=11, epochs=1, batch_size=16, image_shape=(16, 16, 3),
    train_size=64, validation_size=32, learning_rate=1e-3, weight_decay=0.004,
    precision="float32", augment=False, use_ema=True, ema_momentum=0.5,
)
_VARIANTS = {
    "base": {},
    "no_ema": {"use_ema": False},
    "overwrite": {"ema_overwrite_frequency": 3},
    "bfloat16": {"precision": "mixed_bfloat16"},
    "l2": {"l2": 1e-3},
    # λ·α = 10 % a step: in 4 steps a decayed γ would fall to 0.66; Adam alone moves it
    # by about 4·α.
    "decay_excluded": {"use_ema": False, "weight_decay": 100.0, "exclude_from_weight_decay": True},
}


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory):
    """`variant(name)`: (config, epoch records, final weights by variable path) of one of
    `_VARIANTS`, trained once per module."""
    from trainer.train import build_model

    done: dict[str, tuple] = {}

    def get(name: str):
        if name not in done:
            config = RunConfig(**{**_BASE, **_VARIANTS[name]})
            directory = tmp_path_factory.mktemp(name)
            records, result = _train(config, directory)
            assert result.status == "completed"
            model, _ = build_model(config, (16, 16, 3), 10, 8)
            model.load_weights(directory / "last.weights.h5")
            weights = {v.path: np.asarray(v.numpy(), dtype=np.float32) for v in model.weights}
            done[name] = (config, records[0], weights, model)
        return done[name]

    return get


def _differ(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_without_ema_the_final_weights_are_the_trained_ones(variant) -> None:
    _, base, base_weights, _ = variant("base")
    _, plain, plain_weights, _ = variant("no_ema")
    # The same training (EMA only reads the weights), but other final weights: the
    # averages at the end of the EMA run, the weights themselves without it.
    assert plain.loss == pytest.approx(base.loss, rel=1e-5)
    assert plain.val_loss == pytest.approx(base.val_loss, rel=1e-5)
    assert _differ(plain_weights, base_weights) > 1e-4


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ema_overwrites_change_the_training(variant) -> None:
    _, base, _, _ = variant("base")
    _, overwritten, _, _ = variant("overwrite")
    # Every 3 steps the weights become their averages: another path through training.
    assert overwritten.loss != pytest.approx(base.loss, rel=1e-4)


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bfloat16_computes_in_bfloat16_and_keeps_float32_weights(variant) -> None:
    _, base, _, _ = variant("base")
    _, half, weights, model = variant("bfloat16")
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert convs and all(layer.compute_dtype == "bfloat16" for layer in convs)
    assert all(layer.variable_dtype == "float32" for layer in convs)
    # The loss itself is float32 either way: the rounding shows in its last digits (a
    # run repeated in float32 agrees to 1e-6).
    assert half.loss != pytest.approx(base.loss, rel=1e-5) and math.isfinite(half.loss)


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_l2_adds_its_penalty_to_the_loss(variant) -> None:
    _, base, _, _ = variant("base")
    config, penalised, _, model = variant("l2")
    assert len(model.losses) == sum(layer.__class__.__name__ == "Conv2D" for layer in model.layers)
    # The penalty 1e-3·Σw² over the kernels is large against the change it makes to the
    # cross-entropy in 4 steps.
    assert penalised.loss > base.loss + 0.05


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_excluded_batchnorm_scales_do_not_decay(variant) -> None:
    _, _, trained, _ = variant("no_ema")  # λ = 0.004
    _, _, kept, _ = variant("decay_excluded")  # λ = 100, biases and γ/β exempt
    gammas = [path for path in kept if path.endswith("/gamma")]
    kernels = [path for path in kept if path.endswith("/kernel")]
    assert gammas and kernels
    assert all(np.allclose(kept[p], 1.0, atol=0.05) for p in gammas)  # only Adam moved them
    # The kernels did decay: to about 0.9⁴ of their size.
    shrink = [np.linalg.norm(kept[p]) / np.linalg.norm(trained[p]) for p in kernels]
    assert max(shrink) < 0.8


_KILLABLE = textwrap.dedent(
    """
    import json, os, signal, sys
    from sweeps.config import RunConfig
    from trainer import train

    config = RunConfig.model_validate_json(sys.argv[1])
    out, kill_at = sys.argv[3], int(sys.argv[4])

    def on_epoch(record):
        if record.epoch == kill_at:
            # After epoch kill_at - 1's checkpoint, before this epoch's report.
            os.kill(os.getpid(), signal.SIGKILL)
        with open(out, "a") as stream:
            stream.write(json.dumps(record.as_dict()) + "\\n")

    result = train(config, on_epoch, sys.argv[2])
    print(result.status)
    """
)


def _run_killable(config: RunConfig, directory: Path, out: Path, kill_at: int, script: Path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, str(script), config.model_dump_json(), str(directory), str(out), str(kill_at)],
        cwd=REPO, env=env, capture_output=True, text=True,
    )


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(300)  # two TensorFlow processes and a third run: among the first handed out
def test_sigkill_after_epoch_2_then_continue(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(epochs=4, learning_rate=2e-3, schedule="[2.e-3, 0][1.e-4, 4]", shift=0.1)
    script = tmp_path / "killable.py"
    script.write_text(_KILLABLE)
    out = tmp_path / "records.jsonl"

    killed = _run_killable(config, tmp_path / "run", out, 3, script)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = _run_killable(config, tmp_path / "run", out, 0, script)
    assert resumed.returncode == 0 and resumed.stdout.strip() == "completed", resumed.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]  # each reported once

    uninterrupted, result = _train(config, tmp_path / "straight")
    assert result.status == "completed"
    for row, straight in zip(rows, uninterrupted, strict=True):
        # The LR continues from the saved iteration count, not from the start.
        assert row["lr"] == pytest.approx(straight.lr, rel=1e-6)
        # Weights, optimizer, augmentation and data order continue too.
        assert row["loss"] == pytest.approx(straight.loss, rel=1e-3)
        assert row["val_loss"] == pytest.approx(straight.val_loss, rel=1e-3)
    assert rows[2]["lr"] == pytest.approx(config.lr_at(3), rel=1e-6)
