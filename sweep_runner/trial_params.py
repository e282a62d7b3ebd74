"""What a grid's Optuna trials record, so that optuna-dashboard's plots mean something.

A numeric key the grid sweeps is a parameter whose distribution spans the grid's
values (not one point per trial: importance, slice and contour would be degenerate),
with `log=False` so that an extended grid, whose span is wider, stays compatible with
the trials already stored (Optuna refuses only another kind, another `log`, or a
categorical with other choices). A non-numeric swept key (a schedule) is a user
attribute; a setting the grid does not sweep is a study user attribute (`constants`).
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeps.config import RunConfig
from sweeps.sweep_file import Sweep

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

#: The study user attribute that holds the settings every run of the grid shares.
CONSTANTS_ATTR = "constants"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer_key(key: str) -> bool:
    """Whether the setting is an integer by its type (λ written `0` is still a float):
    Optuna refuses an IntDistribution where a FloatDistribution was stored."""
    annotation = RunConfig.model_fields[key].annotation
    return float not in (typing.get_args(annotation) or (annotation,))


@dataclass(frozen=True)
class GridParams:
    """The grid's keys, sorted by how Optuna records them.

    Args:
        spans: each swept numeric key's (low, high, is_integer).
        attributes: the swept keys that are not numbers (user attributes).
        constants: the settings every run shares, in their JSON form.
    """

    spans: dict[str, tuple[float, float, bool]] = field(default_factory=dict)
    attributes: tuple[str, ...] = ()
    constants: dict[str, Any] = field(default_factory=dict)

    def params(self, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
        """A run's params and their distributions (the grid's span, widened to the run's
        value should the run come from an older version of the file)."""
        from optuna.distributions import FloatDistribution, IntDistribution

        params: dict[str, Any] = {}
        distributions: dict[str, BaseDistribution] = {}
        for key, (low, high, integer) in self.spans.items():
            value = config[key]
            if integer:
                params[key] = int(value)
                distributions[key] = IntDistribution(int(min(low, value)), int(max(high, value)))
            else:
                params[key] = float(value)
                distributions[key] = FloatDistribution(float(min(low, value)), float(max(high, value)))
        return params, distributions

    def user_attrs(self, config: dict[str, Any]) -> dict[str, Any]:
        """The swept non-numeric values of a run (the schedule has its own notation)."""
        return {key: config[key] for key in self.attributes if key != "schedule"}


def grid_params(sweep: Sweep) -> GridParams:
    """Sorts the keys of a grid (or of `[[runs]]`) by what their values do across runs.

    Args:
        sweep: a sweep without `[search]` (a search's sampler records its own params).
    """
    configs = [trial.config.model_dump(mode="json") for trial in sweep.trials()]
    if not configs:
        return GridParams()
    spans: dict[str, tuple[float, float, bool]] = {}
    attributes: list[str] = []
    constants: dict[str, Any] = {}
    for key in configs[0]:
        values = [config[key] for config in configs]
        if len({json.dumps(v, sort_keys=True) for v in values}) == 1:
            constants[key] = values[0]
        elif all(_is_number(v) for v in values):
            spans[key] = (min(values), max(values), _is_integer_key(key))
        else:
            attributes.append(key)
    return GridParams(spans, tuple(attributes), constants)
