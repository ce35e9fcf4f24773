"""Per-event cost of the generated condition code, by event type (a developer tool; the official
figure is `tiercel bench rules`).

    .venv/bin/python tools/bench_conditions.py [--print-code] [--runs N]

Loads the stable ruleset (../shared) with the loader, compiles it with
`tiercel.rules.condition.build_evaluator` (one module, per-code folding, one dispatch) and times
it over `tiercel bench rules`' event mix: events/s over the whole mix, and microseconds per event
for each event type, best of N runs.
"""

from __future__ import annotations

import argparse
import collections
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--print-code", action="store_true")
    args = ap.parse_args()

    from tiercel.common import eventtable as et
    from tiercel.rules import condition as C
    from tiercel.rules.bench import UPSTREAM, _compile, event_mix

    rs, load_s = _compile([(str(UPSTREAM), UPSTREAM.read_text())])
    t0 = time.perf_counter()
    ev = C.build_evaluator("syscall", [(r.name, r.compiled.filter, None) for r in rs.rules if r.source == "syscall"])
    build_s = time.perf_counter() - t0
    if args.print_code:
        print(ev.source_code)
        return
    events = event_mix(args.events)
    f = ev.evaluate
    best = float("inf")
    for _ in range(args.runs):
        t = time.perf_counter()
        for e in events:
            f(e)
        best = min(best, time.perf_counter() - t)
    print(f"load {load_s * 1000:.1f} ms, build_evaluator {build_s * 1000:.1f} ms, "
          f"{len(set(ev.table.values()))} functions")
    print(f"whole mix: {len(events) / best:,.0f} events/s (best of {args.runs})")
    by: dict[int, list] = collections.defaultdict(list)
    for e in events:
        by[e.code].append(e)
    for code, es in sorted(by.items(), key=lambda kv: -len(kv[1])):
        best = float("inf")
        for _ in range(args.runs):
            t = time.perf_counter()
            for e in es:
                f(e)
            best = min(best, time.perf_counter() - t)
        info = et.info(code)
        print(f"  {info.name if info else code:12s} {len(es):7d} events {best / len(es) * 1e6:6.2f} us/event")
    assert ev.errors == 0, ev.last_error


if __name__ == "__main__":
    main()
