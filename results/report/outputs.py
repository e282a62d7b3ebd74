"""Where the commands' outputs may go: never over a database, never over what is not a file.

A typo (`--output sweeps.db` for `sweeps.csv`) must not replace the results with a
table. Every output path is checked before anything is computed, and again just
before it is written: it must not be the storage database (or its `-wal`, `-shm`,
`-journal`), any other SQLite database (its first 16 bytes say so), a folder, a FIFO
or a device; its folder must exist and be writable. Files are written whole or not at
all, with the mode an ordinary write gives them (`sweeps.atomic_file`); a symbolic
link stays a link and its target is written.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from results.store.storage_url import StorageUrl
from sweeps.errors import InputError

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def is_sqlite_file(path: Path | str) -> bool:
    """Whether a file begins with SQLite's header (False when it cannot be read)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def database_files(database: Path | str | None) -> list[Path]:
    """A SQLite database file and the files SQLite keeps beside it, resolved."""
    if database is None:
        return []
    resolved = os.path.realpath(database)
    return [Path(resolved + suffix) for suffix in _SIDE_FILES]


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a plain file"


#: Bytes of one file or folder name (NAME_MAX on Linux, macOS and Windows' NTFS) and
#: of a whole path (PATH_MAX on Linux).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


def refuse_long_names(path: Path | str, *, flag: str = "--output") -> None:
    """Refuses a path the file system would refuse (ENAMETOOLONG), before anything is
    written: a name over `MAX_NAME_BYTES` bytes, or a path over `MAX_PATH_BYTES`.

    Raises:
        InputError: naming the flag, the name's start and the limit.
    """
    encoded = os.fsencode(os.path.abspath(path))
    if len(encoded) > MAX_PATH_BYTES:
        raise InputError(f"{flag}: a path of {len(encoded):,} bytes: at most {MAX_PATH_BYTES:,}")
    for name in Path(path).parts:
        size = len(os.fsencode(name))
        if size > MAX_NAME_BYTES:
            raise InputError(
                f"{flag}: the name {name[:24]}… is {size:,} bytes: a file or folder name has at most "
                f"{MAX_NAME_BYTES} bytes; give a shorter one"
            )


def refuse_file(path: Path | str, *, flag: str = "--output", protected: Iterable[Path] = ()) -> Path:
    """Checks that writing the file `path` destroys nothing.

    Args:
        path: the output file as the user gave it.
        flag: the option named in messages.
        protected: files that must never be written (the storage database and its
            side files), resolved.

    Returns:
        The file that will be written: `path`'s target when it is a symbolic link.

    Raises:
        InputError: one line naming the flag, the path and what is allowed.
    """
    refuse_long_names(path, flag=flag)
    shown = f"{flag} {path}"
    target = Path(os.path.realpath(path))
    if target in set(protected):
        raise InputError(
            f"{shown}: is the storage database {target}: writing it would destroy every "
            "result; give another file name"
        )
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None:
        if stat.S_ISDIR(mode):
            raise InputError(f"{shown}: is a folder; give a file name")
        if not stat.S_ISREG(mode):
            raise InputError(
                f"{shown}: is {_kind(mode)}, not a plain file; give a file name (or no "
                f"{flag} for stdout)"
            )
        if is_sqlite_file(target):
            raise InputError(
                f"{shown}: is a SQLite database; refusing to overwrite it: give another file name"
            )
        if not os.access(target, os.W_OK):
            raise InputError(f"{shown}: is read-only; give another file name")
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"{shown}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{shown}: folder {folder} is not writable")
    return target


def refuse_folder(path: Path | str, *, flag: str = "--output", protected: Iterable[Path] = ()) -> Path:
    """Checks that `path` is a writable folder, or can be created as one.

    Returns:
        `path` as a `Path`.

    Raises:
        InputError: `path` is a file (the storage database above all), or it or the
            folder it would be created in is not writable.
    """
    refuse_long_names(path, flag=flag)
    shown = f"{flag} {path}"
    target = Path(os.path.realpath(path))
    if target in set(protected):
        raise InputError(f"{shown}: is the storage database {target}, not a folder; give a folder")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == target else f"would be created inside {existing}, which is a file"
        raise InputError(f"{shown}: {what}, not a folder; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == target else f" (it would be created in {existing})"
        raise InputError(f"{shown}: folder {existing} is not writable{where}")
    return Path(path)


def write_output(path: Path | str, data: bytes | str) -> Path:
    """Writes an output file whole or not at all, checked once more just before.

    Args:
        path: the output file (a link is followed), checked with `refuse_file`.
        data: its contents; text is written as UTF-8.

    Returns:
        The file written.

    Raises:
        FileExistsError: the path became a database or something other than a plain
            file since it was checked; it is left as it is.
        OSError: the write failed (its folder went away, the disk is full); the old
            file, if any, is intact.
    """
    # Imported here: the atomic writer is shared with the trainer's checkpoints, and
    # reading results must not load the trainer package.
    from sweeps.atomic_file import write_bytes_atomically

    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and (not stat.S_ISREG(mode) or is_sqlite_file(target)):
        what = "a SQLite database" if stat.S_ISREG(mode) else _kind(mode)
        raise FileExistsError(errno.EEXIST, f"is {what} now; not overwritten", str(path))
    return write_bytes_atomically(target, data.encode("utf-8") if isinstance(data, str) else data)


__all__ = [
    "SQLITE_HEADER",
    "database_files",
    "is_sqlite_file",
    "refuse_file",
    "refuse_folder",
    "refuse_long_names",
    "write_output",
]


def storage_files(storage: str | StorageUrl) -> list[Path]:
    """The files of a SQLite storage (the database, its -wal, -shm and -journal), which
    no output may overwrite; none for a server database."""
    return database_files(StorageUrl.parse(storage).sqlite_file)
