"""A storage URL, parsed and checked once, passed on as a value.

`--storage` is checked where it comes in (`StorageUrl.parse`); the runner, the store,
Optuna's storage and the reports take the checked value, so that the URL is neither
re-parsed nor its file re-examined (`check_url` may wait a second on an empty file) at
every step. A string is still accepted wherever a URL is (`results.load("sqlite:///…")`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from results.store.engine import check_url, safe_url, sqlite_file
from sweeps.errors import InputError


@dataclass(frozen=True)
class StorageUrl:
    """A checked storage URL.

    Args:
        text: the URL as given (what messages print and other processes are handed).
        url: the parsed URL, driver normalised (`postgresql+psycopg`).
    """

    text: str
    url: URL

    @classmethod
    def parse(cls, value: str | StorageUrl, *, must_exist: bool = False) -> StorageUrl:
        """The checked value of `value`; a value already checked is only asked whether
        its file exists, when it must.

        Args:
            value: `sqlite:///FILE.db`, `postgresql+psycopg://…`, or a checked value.
            must_exist: a SQLite file must already be there (the commands that read).

        Raises:
            InputError: naming the URL and what is allowed (`engine.check_url`).
        """
        if isinstance(value, StorageUrl):
            if must_exist:
                value.require_file()
            return value
        return cls(value, check_url(value, must_exist=must_exist))

    def __str__(self) -> str:
        return self.text

    @property
    def shown(self) -> str:
        """The URL as it may appear in a message: the password hidden."""
        return safe_url(self.url)

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file; None for a server or an in-memory database."""
        return sqlite_file(self.url)

    def require_file(self) -> None:
        """Raises `InputError` when a SQLite database file is not (or no longer) there."""
        path = self.sqlite_file
        if path is not None and not os.path.exists(path):
            raise InputError(
                f"--storage {self.shown}: no database file {path} (run a sweep first, or "
                f"give --storage the sweep's database)"
            )
