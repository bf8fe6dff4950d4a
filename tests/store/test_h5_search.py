"""Issue 13, helper 5: the run filter names an operator from another language and the one to write."""

from __future__ import annotations

import pytest

from keel.core.errors import InvalidArgument
from keel.store.metadata.search import Clause, parse_filter


@pytest.mark.parametrize(("text", "op", "write"), [
    ('params.model == "x"', "==", "params.model = ..."),
    ("metrics.auc == 0.9", "==", "metrics.auc = ..."),
    ("tags.team <> 'ml'", "<>", "tags.team != ..."),
])  # fmt: skip
def test_an_unknown_operator_is_named_with_the_accepted_ones(text: str, op: str, write: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_filter(text)
    assert caught.value.message == (
        f"filter {text!r} is not valid: operator {op!r} is not one of =, !=, <, <=, >, >=, like; write {write}"
    )


def test_the_accepted_operators_still_parse() -> None:
    assert parse_filter("params.model = 'x' and metrics.auc >= 0.9 and tags.t != 'a'") == [
        Clause("param", "model", "=", "x"), Clause("metric", "auc", ">=", 0.9), Clause("tag", "t", "!=", "a"),
    ]  # fmt: skip
