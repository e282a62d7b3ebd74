"""The post's notation: numbers like `8.e-4` and schedules like `[8.e-4, 20][8.e-5, 40]`.

Pure Python, so that the sweep files, the tables and the trainer share one reading and
one writing of it without importing Keras.
"""

from __future__ import annotations

import math
import re

Breakpoint = tuple[float, float]  # (learning rate or factor η, epoch)

#: The post's symbol of each swept quantity: table headers, derived labels, axes.
SYMBOLS = {"weight_decay": "λ", "learning_rate": "α", "ema_momentum": "m"}
#: What each symbol stands for, in words (tooltips, axis titles).
MEANINGS = {"weight_decay": "weight decay", "learning_rate": "initial learning rate", "ema_momentum": "EMA momentum"}


def axis_title(setting: str) -> str:
    """`λ (weight decay)` for a quantity with a symbol; the setting's name otherwise."""
    return f"{SYMBOLS[setting]} ({MEANINGS[setting]})" if setting in SYMBOLS else setting


_PAIR = re.compile(r"\s*\[\s*([^,\[\]]+?)\s*,\s*([^,\[\]]+?)\s*\]\s*")


def format_number(value: float | None) -> str:
    """Writes a number as the post's tables do: `8.e-4`, `5.e-4`, `0.10`, `0.0`.

    Small values get one significant mantissa (more when needed, `2.5e-4`), values of
    0.01 and above two decimals when that is exact, else as few digits as round-trip.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    value = float(value)
    if value == 0.0:
        return "0.0"
    if abs(value) < 0.01:
        mantissa, exponent = f"{value:.6e}".split("e")
        mantissa = mantissa.rstrip("0")
        if mantissa.endswith("."):
            pass  # `8.` as the post writes it
        return f"{mantissa}e{int(exponent)}"
    two = f"{value:.2f}"
    if float(two) == value:
        return two
    return repr(value)


def format_value(value: object) -> str:
    """A setting's value as labels and listings show it: numbers as the post writes
    them, booleans as TOML does (`true`), anything else as text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def format_epoch(epoch: float) -> str:
    return str(int(epoch)) if float(epoch).is_integer() else repr(float(epoch))


def format_schedule(breakpoints: list[Breakpoint] | tuple[Breakpoint, ...]) -> str:
    """`[(8e-4, 20), (8e-5, 40)]` → `[8.e-4, 20][8.e-5, 40]`."""
    return "".join(f"[{format_number(v)}, {format_epoch(e)}]" for v, e in breakpoints)


def parse_schedule(text: str) -> list[Breakpoint]:
    """`[8.e-4, 20][8.e-5, 40]` → `[(8e-4, 20.0), (8e-5, 40.0)]`.

    Raises:
        ValueError: with a message that says what is wrong and what is expected.
    """
    pairs: list[Breakpoint] = []
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if match is None:
            rest = text[position:].strip()
            if not rest:
                break
            raise ValueError(
                f"cannot read {rest[:30]!r} at character {position + 1}: "
                "write breakpoints as [lr, epoch][lr, epoch]…, e.g. '[8.e-4, 20][8.e-5, 40]'"
            )
        try:
            pair = (float(match.group(1)), float(match.group(2)))
        except ValueError:
            raise ValueError(
                f"[{match.group(1)}, {match.group(2)}] is not a pair of numbers"
            ) from None
        if not all(math.isfinite(number) for number in pair):
            raise ValueError(f"[{match.group(1)}, {match.group(2)}]: learning rate and epoch must be finite numbers")
        pairs.append(pair)
        position = match.end()
    if not pairs:
        raise ValueError("no breakpoints: write e.g. '[8.e-4, 20][8.e-5, 40]'")
    return pairs
