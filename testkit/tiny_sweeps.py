"""Tiny sweep files, shared by the runner's tests and the benchmarks: ResNet11 on
scikit-learn's bundled digits (16×16), no download, about a second an epoch at 512
training images on one CPU core."""

from __future__ import annotations

from pathlib import Path

TRAIN = """\
dataset = "digits"
depth = 11
batch_size = {batch_size}
train_size = {train_size}
validation_size = {validation_size}
flip = false
ema_momentum = 0.9
"""


def grid_values(points: int) -> list[float]:
    """`points` distinct weight decays λ: a one-key grid of that many runs."""
    return [round(0.01 * (k + 1), 4) for k in range(points)]


def sweep_text(
    name: str,
    *,
    epochs: int,
    space: str = "",
    extra: str = "",
    schedule: bool = True,
    train_size: int = 512,
    validation_size: int = 128,
    batch_size: int = 64,
) -> str:
    """A sweep file's text.

    Args:
        name: the study's name.
        epochs: epochs per run.
        space: the `[space]` section's lines ("" for none).
        extra: more TOML after `[train]` (e.g. a `[study]` section).
        schedule: a relative schedule falling from α to α/10 over epochs 1…`epochs`;
            else a constant α for `epochs` epochs.
        train_size: digits training images.
        validation_size: validation images.
        batch_size: images per step.
    """
    train = TRAIN.format(batch_size=batch_size, train_size=train_size, validation_size=validation_size)
    if schedule:
        train += f'schedule = {{ breakpoints = "[1, 1][0.1, {epochs}]", relative = true }}\n'
    else:
        train += f"epochs = {epochs}\n"
    text = f'name = "{name}"\n[train]\n{train}\n{extra}\n'
    return text + (f"[space]\n{space}\n" if space else "")


def write_sweep(folder: Path, name: str, **settings: object) -> Path:
    """`sweep_text(name, **settings)` written to `folder/name.toml`."""
    path = folder / f"{name}.toml"
    path.write_text(sweep_text(name, **settings), encoding="utf-8")  # type: ignore[arg-type]
    return path
