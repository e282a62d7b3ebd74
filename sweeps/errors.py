"""The one exception for bad input: a sweep file, a flag, a storage URL, a data folder."""

from __future__ import annotations

from collections.abc import Iterable


class InputError(Exception):
    """Bad input, reported to the user as one line per problem and exit status 2.

    Args:
        problems: one message per problem, each naming the file or flag, the key and
            what is allowed, e.g. `sweeps/x.toml: space.weight_decay[2]: must be >= 0,
            got -0.1`.
    """

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def unknown_study(study: str, storage: str, studies: Iterable[str]) -> InputError:
    """The error for a study the storage does not hold, listing those it holds.

    Args:
        study: the name asked for.
        storage: the storage as it may be shown (without a password).
        studies: the studies it holds.
    """
    names = ", ".join(studies)
    known = f"its studies: {names}" if names else "it has no studies yet"
    return InputError(f"unknown study {study!r} in {storage}; {known}")
