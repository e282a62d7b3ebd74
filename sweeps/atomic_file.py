"""Writing a file whole or not at all, with the mode an ordinary write would give it.

A temporary file in the target's own folder is written, fsynced and renamed over the
target, so that a reader (or a crash) sees the old file or the new one, never a part.
`tempfile.mkstemp` creates its file 0600; the result gets the mode `open(path, "w")`
would have given it instead: an existing file keeps its mode, a new one gets 0666
minus the umask. A symbolic link is followed: its target is replaced, the link stays.

In `sweeps`, the bottom layer every package may import: the trainer (checkpoints) and
the results (tables, plots, the page) both write through it, and neither may import
the other for it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def current_umask() -> int:
    """The process's umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Elsewhere the only way is to set it and set it back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_directory(directory: Path) -> None:
    """Makes a rename in `directory` durable; not every platform can open a folder."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some filesystems refuse fsync on a folder (EINVAL); the rename stands
    finally:
        os.close(descriptor)


def write_atomically(path: Path | str, write: Callable[[IO[bytes]], None]) -> Path:
    """Writes a file so that readers see the old or the new one, never a part.

    Args:
        path: the file to (re)place; a symbolic link is followed, and its target
            written.
        write: writes the contents to the open temporary file.

    Returns:
        The file written (the link's target for a link).
    """
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)
    return target


def write_bytes_atomically(path: Path | str, data: bytes) -> Path:
    """`write_atomically` of a whole byte string."""
    return write_atomically(path, lambda stream: stream.write(data))


__all__ = ["current_umask", "fsync_directory", "write_atomically", "write_bytes_atomically"]
