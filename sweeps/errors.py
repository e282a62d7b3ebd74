"""The one exception for bad input: a sweep file, a flag, a storage URL, a data folder."""

from __future__ import annotations


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
