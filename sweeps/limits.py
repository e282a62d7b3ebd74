"""Limits on sweep files that no real study reaches: beyond them input is a mistake.

The post's studies are 10–30 runs of ResNet56v2 for 60 epochs on 32×32×3 images with
four breakpoints; these limits are orders of magnitude above that, and each error
message says its limit. They keep a typo (`epochs = 6000000`, a grid of a million
points, a pasted schedule of 10,000 breakpoints) from hanging `sweep check` or
filling a disk.
"""

from __future__ import annotations

import math
import re
import unicodedata

#: A sweep file's size in bytes.
MAX_FILE_BYTES = 1024 * 1024
#: Nesting of tables and arrays; a `[search]` over schedules needs 7.
MAX_NESTING = 10
#: Trials in a study: grid points plus explicit runs, or a search's `n_trials`.
MAX_TRIALS = 10_000
#: Breakpoints of one schedule.
MAX_BREAKPOINTS = 100
#: Epochs of one run.
MAX_EPOCHS = 10_000
#: ResNet v2 depth (ResNet-1001 is the deepest published).
MAX_DEPTH = 1001
#: Height and width of a synthetic image, and its channels.
MAX_IMAGE_SIDE = 1024
MAX_CHANNELS = 4
#: Images per optimizer step.
MAX_BATCH_SIZE = 65_536
#: Characters of a run's label: a grid over every setting makes labels of a few hundred
#: (9 keys: about 90); the database column is this wide (revision 0006_wide_labels).
MAX_LABEL_CHARS = 1000
#: Seeds are 32-bit: numpy's and TensorFlow's generators take 0 <= seed < 2**32.
SEED_LIMIT = 2**32


def nesting(value: object, limit: int = MAX_NESTING) -> int:
    """How deeply tables and arrays nest in parsed TOML, counted up to `limit + 1`."""
    depth, level = 0, [value]
    while level and depth <= limit:
        children: list[object] = []
        for item in level:
            if isinstance(item, dict):
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
        if not children:
            break
        depth, level = depth + 1, children
    return depth


def grid_size(lengths: list[int]) -> int:
    """The number of points of a grid with these lists of values."""
    return math.prod(lengths) if lengths else 0


def control_characters(text: str, allowed: str = "") -> list[str]:
    """The control characters in `text` (NUL, escape, …) other than `allowed`, as
    `U+0000`: PostgreSQL refuses NUL in text, and the others garble a terminal's table."""
    found = {c for c in text if unicodedata.category(c) == "Cc" and c not in allowed}
    return [f"U+{ord(c):04X}" for c in sorted(found)]


__all__ = [
    "MAX_BATCH_SIZE", "MAX_BREAKPOINTS", "MAX_CHANNELS", "MAX_DEPTH", "MAX_EPOCHS",
    "MAX_FILE_BYTES", "MAX_IMAGE_SIDE", "MAX_LABEL_CHARS", "MAX_NESTING", "MAX_TRIALS", "SEED_LIMIT",
    "control_characters", "grid_size", "nesting", "too_deep_key",
]


def too_deep_key(text: str, limit: int = MAX_NESTING) -> str | None:
    """The key (`section.key`) whose value nests tables and arrays more than `limit`
    deep, read from the text itself: the parser may have given up on it (RecursionError)
    before it could say where. Strings are not told apart from brackets: a hint for the
    message, not a parser."""
    section, key, depth = "", None, 0
    for line in text.splitlines():
        if depth == 0:
            header = re.match(r"\s*\[\[?\s*([^\]\s]+)\s*\]\]?\s*(#.*)?$", line)
            if header:
                section = header.group(1)
                continue
            assignment = re.match(r"\s*([A-Za-z0-9_.\"'-]+)\s*=", line)
            if assignment is None:
                continue
            key, line = assignment.group(1).strip("\"'"), line[assignment.end():]
        for character in line.partition("#")[0] if depth == 0 else line:
            depth += character in "[{"
            depth -= character in "]}"
            if depth > limit - 1 - bool(section):
                return f"{section}.{key}" if section else key
    return None
