"""Fuzz suite: every parser that takes input from outside, fed generated and mutated inputs the way
its service feeds it. Zero crashes, zero hangs: each input is accepted or rejected with the
target's typed error (tests/fuzzkit.py lists the targets and what each may raise).

`make test-fuzz` runs each target with many examples (TIERCEL_FUZZ_EXAMPLES, default 1500, new
random inputs on every run); `make test` runs a smoke of each (a few examples, derandomized so it
is the same every run). A failing input is printed (minimized) with the `@reproduce_failure` blob
that replays it. The coverage-guided runner, tools/fuzz_atheris.py, drives the same targets with
atheris. Inputs found this way are kept as plain tests in tests/test_fuzz_regressions.py.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests import fuzzkit

SMOKE_EXAMPLES = 8
FUZZ_EXAMPLES = int(os.environ.get("TIERCEL_FUZZ_EXAMPLES", "1500"))
_SETTINGS = dict(deadline=None, print_blob=True, database=None, phases=[p for p in Phase if p is not Phase.explain],
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much, HealthCheck.large_base_example])


def run_target(name: str, examples: int, derandomize: bool = False) -> dict[str, float]:
    t = fuzzkit.TARGETS[name]
    fuzzkit.warm()  # build what the targets share (the default ruleset) outside the time limit
    t.stats.clear()
    slowest = [0.0]

    @settings(max_examples=examples, derandomize=derandomize, **_SETTINGS)
    @given(t.strategy())
    def check(value):
        t0 = time.perf_counter()
        try:
            with fuzzkit.time_limit():
                t.run(value)
        except t.allowed:
            pass
        slowest[0] = max(slowest[0], time.perf_counter() - t0)

    check()
    return {"slowest_s": slowest[0], **t.stats}


@pytest.mark.parametrize("name", sorted(fuzzkit.TARGETS))
def test_fuzz_smoke(name):
    run_target(name, SMOKE_EXAMPLES, derandomize=True)


@pytest.mark.fuzz
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", sorted(fuzzkit.TARGETS))
def test_fuzz(name, record_property):
    stats = run_target(name, FUZZ_EXAMPLES)
    for k, v in stats.items():
        record_property(k, v)
    print(f"\nfuzz {name}: {FUZZ_EXAMPLES} examples, {stats}")
