"""The resolved configuration of one training run, and its learning-rate schedule.

`RunConfig` is what a trial *is*: every setting the trainer needs, validated, with a
stable run key. The trainer takes it as input; the sweep files expand into it; the
results store keeps its JSON form.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sweeps.limits import (
    MAX_BATCH_SIZE, MAX_BREAKPOINTS, MAX_CHANNELS, MAX_DEPTH, MAX_EPOCHS, MAX_IMAGE_SIDE, SEED_LIMIT,
)
from sweeps.notation import Breakpoint, format_schedule, parse_schedule
from sweeps.resnet import blocks_per_stage, check_input_shape

Dataset = Literal["cifar10", "fashion_mnist", "digits", "synthetic"]
Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
#: Settings that change what is measured, not what is trained: outside the run key, so
#: that a run keeps its key (and its checkpoints) whichever way they are set.
MEASUREMENT_ONLY = ("evaluate_ema", "bn_subset_size")
_VALIDATION = re.compile(r"^(test|stratified:(0?\.\d+)|split:(0?\.\d+))$")


class Schedule(BaseModel):
    """A piecewise-linear learning-rate schedule written as the post writes it.

    Constant at the first value before the first breakpoint, linear between
    breakpoints, constant after the last; two breakpoints at one epoch make a step.

    Args:
        breakpoints: `(value, epoch)` pairs, epochs non-decreasing, values > 0. Accepts
            the post's string `"[8.e-4, 20][8.e-5, 40]"` or a list of pairs.
        relative: the values are factors η of the initial learning rate α, so that one
            schedule serves an α sweep.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    breakpoints: tuple[tuple[float, float], ...]
    relative: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_notation(cls, data: Any) -> Any:
        if isinstance(data, (str, list, tuple)):
            data = {"breakpoints": data}
        if isinstance(data, dict):
            pairs = data.get("breakpoints")
            if isinstance(pairs, str):
                pairs = parse_schedule(pairs)
            if isinstance(pairs, (list, tuple)) and all(isinstance(p, (list, tuple)) for p in pairs):
                # Tuples, so that strict validation (sweep files) accepts the pairs.
                data = {**data, "breakpoints": tuple(tuple(p) for p in pairs)}
        return data

    @field_validator("breakpoints")
    @classmethod
    def _check_breakpoints(cls, pairs: tuple[Breakpoint, ...]) -> tuple[Breakpoint, ...]:
        if not pairs:
            raise ValueError("needs at least one [lr, epoch] breakpoint")
        if len(pairs) > MAX_BREAKPOINTS:
            raise ValueError(f"at most {MAX_BREAKPOINTS} breakpoints, got {len(pairs)}")
        for i, (value, epoch) in enumerate(pairs):
            if value <= 0:
                raise ValueError(f"breakpoint {i + 1}: learning rate must be > 0, got {value:g}")
            if epoch < 0:
                raise ValueError(f"breakpoint {i + 1}: epoch must be >= 0, got {epoch:g}")
            if i and epoch < pairs[i - 1][1]:
                raise ValueError(
                    f"breakpoint {i + 1}: epochs must not decrease, got {epoch:g} after "
                    f"{pairs[i - 1][1]:g}"
                )
        return pairs

    @property
    def last_epoch(self) -> float:
        return self.breakpoints[-1][1]

    def absolute(self, learning_rate: float) -> list[Breakpoint]:
        """The breakpoints in learning rates: η·α for a relative schedule."""
        scale = learning_rate if self.relative else 1.0
        return [(value * scale, epoch) for value, epoch in self.breakpoints]

    def notation(self, learning_rate: float | None = None) -> str:
        """The post's notation, in learning rates when `learning_rate` is given."""
        if learning_rate is None:
            return format_schedule(self.breakpoints)
        return format_schedule(self.absolute(learning_rate))

    def value_at(self, epoch: float, learning_rate: float) -> float:
        """The learning rate at a fractional epoch (0 is the start of training)."""
        pairs = self.absolute(learning_rate)
        epochs = [e for _, e in pairs]
        # bisect_right: at a step (two breakpoints at one epoch) take the later value.
        i = bisect.bisect_right(epochs, epoch)
        if i == 0:
            return pairs[0][0]
        if i == len(pairs):
            return pairs[-1][0]
        (v0, e0), (v1, e1) = pairs[i - 1], pairs[i]
        return v0 + (v1 - v0) * (epoch - e0) / (e1 - e0)


class RunConfig(BaseModel):
    """Every setting of one training run, resolved and validated.

    Args:
        dataset: `cifar10`, `fashion_mnist`, `digits` (scikit-learn's 8×8 digits) or
            `synthetic` (deterministic, learnable, for tests and benchmarks).
        depth: ResNet v2 depth, 9n+2; 56 is the post's ResNet56v2.
        epochs: training epochs; defaults to the schedule's last breakpoint.
        batch_size: images per optimizer step.
        shift: random shift up to this fraction of width and height, edges repeated.
        flip: random horizontal flips.
        augment: `false` switches shift and flip off.
        l2: L2 factor on the conv kernels (the post: 0).
        subtract_pixel_mean: subtract the training set's per-pixel mean image.
        validation: `test`, `stratified:F` (a seeded stratified fraction F of the
            training set) or `split:F` (the last fraction F, as Keras'
            `validation_split`).
        precision: `auto` (mixed on a GPU, float32 on a CPU), `float32`,
            `mixed_float16`, `mixed_bfloat16`.
        seed: initial weights, data order, augmentation and validation split.
        weight_decay: λ, AdamW's `weight_decay` (per step `w -= w·λ·lr`).
        learning_rate: α, the initial learning rate.
        ema_momentum: m, AdamW's EMA momentum.
        use_ema: keep an exponential moving average of the weights.
        ema_overwrite_frequency: steps between overwriting the weights with their
            averages; none = only at the end of training.
        beta_1, beta_2: Adam's moment decay rates.
        schedule: the piecewise-linear schedule; none = constant α.
        exclude_from_weight_decay: exempt biases and BatchNorm γ/β from the decay.
        train_size: use only the first N training images (after shuffling), for quick runs.
        validation_size: use only N validation images.
        image_shape: synthetic data's image shape (height, width, channels).
        evaluate_ema: with `use_ema`, validate each epoch a second time with the
            averaged weights (`val_loss_ema`, `val_acc_ema`). It only measures, so it
            is not part of the run key.
        bn_subset_size: training images over which each epoch recomputes the
            BatchNorm statistics for the BatchNorm-true validation (`val_loss_bn`, …;
            PreciseBN / torch `update_bn`); none = the smaller of 10 % of the training
            set and 2,000; 0 switches the measurement off. Only measures: not part of
            the run key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dataset: Dataset = "cifar10"
    depth: int = 56
    epochs: int = Field(default=60, ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(default=64, ge=1, le=MAX_BATCH_SIZE)
    shift: float = Field(default=0.07, ge=0.0, le=0.5)
    flip: bool = True
    augment: bool = True
    l2: float = Field(default=0.0, ge=0.0)
    subtract_pixel_mean: bool = True
    validation: str = "test"
    precision: Precision = "auto"
    seed: int = Field(default=0, ge=0, lt=SEED_LIMIT)
    weight_decay: float = Field(default=0.004, ge=0.0)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    ema_momentum: float = Field(default=0.99, ge=0.0, lt=1.0)
    use_ema: bool = True
    ema_overwrite_frequency: int | None = Field(default=None, ge=1)
    beta_1: float = Field(default=0.9, ge=0.0, lt=1.0)
    beta_2: float = Field(default=0.999, ge=0.0, lt=1.0)
    schedule: Schedule | None = None
    exclude_from_weight_decay: bool = False
    train_size: int | None = Field(default=None, ge=1)
    validation_size: int | None = Field(default=None, ge=1)
    image_shape: tuple[int, int, int] = (32, 32, 3)
    evaluate_ema: bool = True
    bn_subset_size: int | None = Field(default=None, ge=0)

    @field_validator("image_shape", mode="before")
    @classmethod
    def _shape_from_list(cls, shape: Any) -> Any:
        # A TOML array arrives as a list; strict validation takes only tuples.
        return tuple(shape) if isinstance(shape, list) else shape

    @field_validator("depth")
    @classmethod
    def _check_depth(cls, depth: int) -> int:
        blocks_per_stage(depth)
        if depth > MAX_DEPTH:
            raise ValueError(f"must be at most {MAX_DEPTH}, got {depth}")
        return depth

    @field_validator("image_shape")
    @classmethod
    def _check_image_shape(cls, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        height, width, channels = shape
        if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE and 1 <= channels <= MAX_CHANNELS):
            raise ValueError(
                f"must be [height, width, channels] with height and width 1 to {MAX_IMAGE_SIDE} "
                f"and 1 to {MAX_CHANNELS} channels, got {list(shape)}"
            )
        check_input_shape(shape)  # the model's own rule, so that what `sweep check` accepts builds
        return shape

    @field_validator("validation")
    @classmethod
    def _check_validation(cls, validation: str) -> str:
        match = _VALIDATION.match(validation)
        fraction = match and (match.group(2) or match.group(3))
        if not match or (fraction and not 0 < float(fraction) < 1):
            raise ValueError(
                f"must be 'test', 'stratified:F' or 'split:F' with 0 < F < 1, got {validation!r}"
            )
        return validation

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_schedule(cls, data: Any) -> Any:
        """`epochs` defaults to the last breakpoint; `learning_rate` to the first value
        of an absolute schedule."""
        if not isinstance(data, dict) or data.get("schedule") is None:
            return data
        try:
            schedule = Schedule.model_validate(data["schedule"])
        except ValueError:
            return data  # reported by field validation
        data = dict(data)
        data.setdefault("epochs", max(1, int(round(schedule.last_epoch))))
        if not schedule.relative:
            data.setdefault("learning_rate", schedule.breakpoints[0][0])
        return data

    @model_validator(mode="after")
    def _check_consistency(self, info: ValidationInfo) -> RunConfig:
        if info.context and info.context.get("skip_consistency"):
            return self  # the caller reports these problems itself, with their origin
        problems = consistency_problems(self)
        if problems:
            raise ValueError("; ".join(f"{key}: {message}" for key, message in problems))
        return self

    def canonical_json(self) -> str:
        """The canonical form the run key is a hash of: sorted keys, no spaces, and
        only the settings that change the training (not `MEASUREMENT_ONLY`)."""
        return json.dumps(
            self.model_dump(mode="json", exclude=set(MEASUREMENT_ONLY)), sort_keys=True, separators=(",", ":")
        )

    @property
    def run_key(self) -> str:
        """A stable 16-hex-digit key: the same run gets it on any machine."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @property
    def training_key(self) -> str:
        """The run key without the settings that only measure, m included unless
        `ema_overwrite_frequency` trains on the averages: runs with one training key
        train identically, so they share one training (one average per m)."""
        excluded = set(MEASUREMENT_ONLY) | ({"ema_momentum"} if self.ema_overwrite_frequency is None else set())
        text = json.dumps(self.model_dump(mode="json", exclude=excluded), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def lr_at(self, epoch: float) -> float:
        """The learning rate at a fractional epoch."""
        if self.schedule is None:
            return self.learning_rate
        return self.schedule.value_at(epoch, self.learning_rate)

    def schedule_notation(self) -> str:
        """The schedule in learning rates, as the post's `reduction model` column."""
        if self.schedule is None:
            return format_schedule([(self.learning_rate, 0)])
        return self.schedule.notation(self.learning_rate)


def training_key_of(config: Mapping[str, Any] | None) -> str | None:
    """The training key of a stored run configuration; None for none (a search's slot
    not yet sampled)."""
    return RunConfig.model_validate(config).training_key if config else None


def consistency_problems(config: RunConfig) -> list[tuple[str, str]]:
    """Problems between settings, as `(key, message)` pairs."""
    problems: list[tuple[str, str]] = []
    schedule = config.schedule
    if schedule is not None:
        if schedule.last_epoch > config.epochs:
            problems.append((
                "schedule",
                f"ends at epoch {schedule.last_epoch:g}, after epochs = {config.epochs}: "
                "shorten the schedule or raise epochs",
            ))
        first = schedule.breakpoints[0][0]
        if not schedule.relative and abs(first - config.learning_rate) > 1e-9 * first:
            problems.append((
                "schedule",
                f"an absolute schedule must start at learning_rate = {config.learning_rate:g}, "
                f"got {first:g}: make them equal, or write relative = true to scale it by α",
            ))
    return problems
