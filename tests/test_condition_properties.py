"""Property tests of the condition language (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings

from tests.condition_strategies import conditions
from tiercel.rules.condition import parse, to_source


@settings(max_examples=200, deadline=None)
@given(conditions)
def test_round_trip_parse_print_parse(tree):
    text = to_source(tree)
    assert parse(text) == tree, text
    assert to_source(parse(text)) == text
