"""Error locations are read along the model's own fields: pydantic's names for union
branches and validators never reach a key path, whatever they are called."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from sweeps.problems import from_validation_error


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # A union of two non-None types: pydantic tags each branch in the location.
    mixed: Inner | Annotated[list[int], AfterValidator(lambda v: v)]
    tables: dict[str, Inner] = {}


@pytest.mark.timeout(30)
def test_branch_tags_are_left_out_of_the_key_path() -> None:
    with pytest.raises(ValidationError) as raised:
        Outer.model_validate({"mixed": {"rate": "fast"}, "tables": {"none": {"rate": [], "Inner": 1}}})
    # The raw locations do carry pydantic's tags ("Inner", "function-after[…]").
    assert any(len(e["loc"]) > 2 and e["loc"][1] == "Inner" for e in raised.value.errors())
    problems = dict(from_validation_error(raised.value, Outer, ("train",)))
    assert problems["train.mixed.rate"] == "must be a number, got 'fast'"
    assert problems["train.tables.none.rate"] == "must be a number, got a list"
    # A user's key that happens to share a class's name is still the user's key.
    assert problems["train.tables.none.Inner"].startswith("unknown key 'Inner'")
    assert not any("function-after" in path or ".Inner.rate" in path for path in problems)
