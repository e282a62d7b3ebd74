"""Database errors a user can fix, as the one line `sweep` prints (exit status 2).

A server that refuses connections, a SQLite file that is damaged or locked for good:
these are the storage, not a bug, and a traceback would hide the one thing to do.
Errors of our own making (an integrity or programming error) stay tracebacks.
"""

from __future__ import annotations

import errno

#: SQLAlchemy's error classes that say the database could not be reached or read.
_TRANSLATED = ("OperationalError", "DatabaseError", "InterfaceError")
#: What to do, by what the driver's message says.
_HINTS = (
    ("malformed", "the file is damaged: restore a backup, or save what SQLite can read "
                  "with `sqlite3 FILE .recover | sqlite3 NEW.db`"),
    ("file is not a database", "give --storage the sweep's database"),
    ("connection refused", "is the server running and accepting TCP/IP connections on that host and port?"),
    ("could not translate host name", "check the host name in --storage"),
    ("password authentication failed", "check the user and password in --storage"),
    ("does not exist", "create the database first (createdb), or check its name in --storage"),
    ("unable to open database file", "check that the folder exists and can be written"),
)


def _chain(error: BaseException) -> list[BaseException]:
    """The error and the errors it was raised from or while handling, nearest first."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _database_error(error: BaseException) -> BaseException | None:
    """The SQLAlchemy connection or database error in `error`'s chain, if any."""
    for found in _chain(error):
        module = type(found).__module__
        if module.startswith("sqlalchemy") and type(found).__name__ in _TRANSLATED:
            return found
    return None


def _revision_error(error: BaseException) -> BaseException | None:
    for found in _chain(error):
        if type(found).__module__.startswith("alembic") and type(found).__name__ == "CommandError":
            return found
    return None


def database_problem(error: BaseException, storage: str | None) -> str | None:
    """One line for a database error a user can fix; None for any other error.

    Args:
        error: what a command raised.
        storage: the `--storage` the command was given (None: the default storage).
    """
    from results.store import safe_url
    from sweep_runner.storage import default_storage

    url = safe_url(storage or default_storage())
    revision = _revision_error(error)
    if revision is not None:
        return f"--storage {url}: {str(revision).splitlines()[0]}"
    found = _database_error(error)
    if found is None:
        return None
    original = getattr(found, "orig", None) or found
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    reason = reason.split("[SQL:")[0].strip()
    hint = next((hint for words, hint in _HINTS if words in reason.lower()), None)
    return f"--storage {url}: cannot use the database: {reason}" + (f" ({hint})" if hint else "")


def path_problem(error: BaseException) -> str | None:
    """One line for a path the file system refuses as too long (ENAMETOOLONG), wherever
    a command met it (an --output is checked before; --storage, --data-dir and
    --checkpoints of `sweep train` meet it here); None for any other error."""
    if isinstance(error, OSError) and error.errno == errno.ENAMETOOLONG:
        name = str(error.filename or "")
        shown = f"{name[:40]}…" if len(name) > 40 else name
        return f"{shown}: file name too long: a file or folder name has at most 255 bytes, a path 4096"
    return None
