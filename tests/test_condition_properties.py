"""Property tests of the condition language (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.condition_fields import SOURCE
from tests.condition_reference import Reference
from tests.condition_strategies import conditions, sample_events, typed_condition_texts
from tiercel.rules.condition import build_evaluator, parse, to_source


@settings(max_examples=200, deadline=None)
@given(conditions)
def test_round_trip_parse_print_parse(tree):
    text = to_source(tree)
    assert parse(text) == tree, text
    assert to_source(parse(text)) == text


@settings(max_examples=150, deadline=None)
@given(st.lists(typed_condition_texts(), min_size=1, max_size=4), st.lists(sample_events(), min_size=1, max_size=6),
       st.sampled_from(["first", "all"]))
def test_compiled_code_agrees_with_the_reference_evaluator(texts, events, matching):
    trees = [parse(t) for t in texts]
    codes = {1, 2, 3, 99}
    ev = build_evaluator(SOURCE, [(i, t, codes) for i, t in enumerate(trees)], matching)
    ref = Reference(SOURCE)
    for evt in events:
        expected = [i for i, t in enumerate(trees) if ref.matches(t, evt)]
        if matching == "first":
            expected = expected[:1]
        got = list(ev(evt))
        assert ev.errors == 0, ev.last_error
        assert got == expected, (texts, evt.code, evt.payload, ev.source_code)
