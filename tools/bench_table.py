"""Print a `tiercel bench --json` report as the Markdown table of docs/performance.md.

    .venv/bin/python tools/bench_table.py [build/bench-all.json]

Every benchmark of the report is a row: median (min..max), the reference measured in the same run
with the ratio, the target and whether the median meets it.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any


def number(v: float, unit: str) -> str:
    if unit in ("events/s", "alerts/s", "events", "alerts", "bytes"):
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def verdict(r: dict[str, Any]) -> str:
    t = r.get("target")
    if t is None:
        return ""
    ok = r["median"] >= t if r.get("higher_is_better", True) else r["median"] <= t
    return "met" if ok else "**missed**"


def row(suite: str, r: dict[str, Any]) -> str:
    unit = r["unit"]
    spread = f" ({number(r['min'], unit)}..{number(r['max'], unit)})" if r.get("runs", 1) > 1 else ""
    median = f"{number(r['median'], unit)} {unit}{spread}"
    ref = r.get("reference")
    reference = ""
    if ref:
        reference = f"{ref['name']}: {number(ref['median'], ref['unit'])} {ref['unit']}"
        if r.get("ratio") is not None:
            reference += f" (ratio {r['ratio']:.2f})"
    target = "" if r.get("target") is None else f"{'≥' if r.get('higher_is_better', True) else '≤'} {number(r['target'], unit)}"
    return f"| {suite} | {r['name']} | {median} | {reference} | {target} | {verdict(r)} |"


def main(path: str) -> None:
    report = json.loads(pathlib.Path(path).read_text())
    m = report["machine"]
    print(f"`tiercel bench` at {report['time']}, {m.get('cpus')} CPUs ({m.get('cpu', '?')}), Python {m.get('python')}, "
          f"load average at the start {m.get('loadavg', ['?'])[0]:.1f}, {report['runs']} runs per benchmark:\n")
    print("| Suite | Benchmark | Median (min..max) | Reference in the same run | Target | Verdict |")
    print("|---|---|---|---|---|---|")
    for suite, results in report["suites"].items():
        for r in results:
            print(row(suite, r))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/bench-all.json")
