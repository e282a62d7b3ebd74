"""Lazy public names for a package's `__init__` (PEP 562 module `__getattr__`).

A package's door lists its public names and the module each lives in; the module is
imported when a name is first used. So `from results.store import ResultStore` in a
trial's child imports SQLAlchemy and not pandas, plotly or matplotlib, which only the
reports need.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

#: A public name's home: its module (the name is the same there), or (module, name).
Home = str | tuple[str, str]


def lazy_names(
    package: dict[str, Any], public: Mapping[str, Home]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of a package whose public names load on first use.

    Args:
        package: the package's `globals()`; a name, once loaded, is cached there.
        public: each public name and its home.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - the name PEP 562 looks up
        home = public.get(name)
        if home is None:
            raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")
        module, attribute = (home, name) if isinstance(home, str) else home
        value = getattr(importlib.import_module(module), attribute)
        package[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*package, *public})

    return __getattr__, __dir__
