"""What a run is doing before its next epoch is stored: its child's phase.

The 20–30 s between a run's claim and its first stored epoch (imports, the data, the
model, Keras' tracing of the first step) would otherwise be silence. The child writes
its phase to a small file in the run's checkpoint folder (a rename, so that a reader
never sees half of it); the front's progress reads it for the runs on this machine.
Its worker writes the first phase as it hands the child its run (`STARTING`, until the
child has imported Keras and says what it does next), so that a file left by an
earlier attempt is never read as this one's.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

#: The file in a run's checkpoint folder.
PHASE_FILE = "phase.json"
#: What a run that has claimed no phase of this attempt is doing.
STARTING = "starting (importing Keras)"


def write_phase(checkpoint_dir: str | Path, phase: str) -> None:
    """Records the run's phase (`building the model`, `epoch 1/60 (compiling)`, …).

    Args:
        checkpoint_dir: the run's checkpoint folder.
        phase: what it is doing now, for a person.
    """
    folder = Path(checkpoint_dir)
    temporary = folder / f".{PHASE_FILE}.{os.getpid()}"
    try:
        temporary.write_text(json.dumps({"phase": phase, "at": time.time()}), encoding="utf-8")
        os.replace(temporary, folder / PHASE_FILE)
    except OSError:
        pass  # a progress hint only: a full disk fails the run where it matters


def read_phase(checkpoint_dir: Path) -> str:
    """The phase the run's current attempt last recorded, or `STARTING`.

    Args:
        checkpoint_dir: the run's checkpoint folder.
    """
    try:
        recorded = json.loads((checkpoint_dir / PHASE_FILE).read_text(encoding="utf-8"))
        return str(recorded["phase"])
    except (OSError, ValueError, KeyError, TypeError):
        return STARTING
