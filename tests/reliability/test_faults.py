"""A child's faults, named as the user needs them: a full disk as a full disk, an input
error at once and whole, neither spending the run's retries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from results.store.result_store import ResultStore
from sweep_runner.child import EXIT_DISK_FULL
from sweep_runner.worker import death_outcome, missing_epochs
from testkit.sweeping import run

CIFAR = """name = "nodata"
[train]
dataset = "cifar10"
depth = 11
epochs = 1
train_size = 128
validation_size = 64
[space]
weight_decay = [0.05]
"""


@pytest.mark.timeout(60)
def test_a_child_that_crashed_on_a_full_disk_is_named_as_a_full_disk(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(
        "Epoch 3\nTraceback (most recent call last):\n"
        "OSError: [Errno 28] No space left on device: 'checkpoints/s/k/.checkpoint.npz.x.tmp'\n"
        "Fatal Python error: Segmentation fault\n"
    )
    outcome = death_outcome(-11, log)  # what a native library's crash looked like: SIGSEGV
    assert outcome.failure_kind == "disk_full"
    assert outcome.failure_reason.startswith("disk full (No space left on device)")
    assert "SIGSEGV" not in outcome.failure_reason
    # Even with no log at all (the disk refused that too), the exit status says it.
    assert death_outcome(EXIT_DISK_FULL, tmp_path / "none.log").failure_kind == "disk_full"


@pytest.mark.timeout(60)
def test_a_crash_reason_is_the_whole_last_line(tmp_path: Path) -> None:
    line = "RuntimeError: " + "a long explanation " * 30 + "ends here"
    (tmp_path / "train.log").write_text(f"noise\n{line}\n")
    reason = death_outcome(1, tmp_path / "train.log").failure_reason
    assert reason == f"child process exited with status 1: {line}"


@pytest.mark.timeout(60)
def test_complete_needs_every_epoch_stored() -> None:
    assert missing_epochs([{"epoch": 1}, {"epoch": 3}], 3) == [2]
    assert missing_epochs([], 2) == [1, 2]
    assert missing_epochs([{"epoch": 1}, {"epoch": 2}], 2) == []


@pytest.mark.long
@pytest.mark.timeout(300)
def test_missing_cifar_files_fail_at_once_with_the_whole_reason(tmp_path: Path) -> None:
    data = tmp_path / "data" / "cifar-10-batches-py"
    data.mkdir(parents=True)
    (data / "test_batch").write_bytes(b"")
    sweep = tmp_path / "nodata.toml"
    sweep.write_text(CIFAR, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"

    result = run(["run", str(sweep), "--storage", url, "--data-dir", str(tmp_path / "data"),
                  "--log-format", "plain"], tmp_path)

    reason = f"{data}: data_batch_1 is missing (expected the official cifar-10-batches-py/)"
    assert result.returncode == 1
    with ResultStore(url) as store:
        (only,) = store.runs("nodata")
    assert only["state"] == "failed"
    assert only["attempts"] == 1  # not retried: another attempt would fail alike
    assert only["failure_reason"] == f"input error: {reason}"
    assert f": failed: input error: {reason}\n" in result.stderr  # whole, on one line


@pytest.mark.timeout(60)
def test_an_impossible_image_shape_is_an_input_error() -> None:
    """The rule has one home (`sweeps.resnet`): a run's settings refuse the shape, and
    the trainer refuses data of that shape as the input's fault (one line, no retry)."""
    import pydantic

    from sweeps.config import RunConfig
    from sweeps.errors import InputError
    from trainer.train import _check_shape

    rule = "height and width must be divisible by 4 (two stride-2 stages), got 6×6"
    with pytest.raises(pydantic.ValidationError, match=re.escape(rule)):
        RunConfig(dataset="synthetic", depth=11, epochs=1, image_shape=[6, 6, 3])
    with pytest.raises(InputError) as raised:
        _check_shape((6, 6, 3))
    # An InputError: the child reports it whole and the worker does not retry it.
    assert str(raised.value) == f"image_shape: {rule}"
    _check_shape((8, 8, 1))  # digits' shape trains
