"""The benchmark harness behind `tiercel bench`: warm-up, several runs, median and spread, machine
facts, and a reference measured in the same run where one exists on the machine (sysdig, raw
nats-py), with the ratio.

A benchmark is a function `bench(ctx) -> list[Result]` registered under a suite name
(`rules`, `capture`, `ingest`, `pipeline`, `api`) by the module that owns the code it measures.
Use `ctx.measure(fn)` to time a callable over ctx.runs runs after ctx.warmup warm-ups; `fn`
returns the amount of work done (events, alerts, ...) so the rate is work / seconds.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# Bump when the JSON layout changes incompatibly.
JSON_SCHEMA = "tiercel.bench/1"

# Modules that register benchmarks at import. Each owner adds its module.
SUITE_MODULES: dict[str, str] = {
    "rules": "tiercel.rules.bench",
    "ingest": "tiercel.ingest.bench_live",
    "capture": "tiercel.ingest.bench",
    "api": "tiercel.api.bench",
    "pipeline": "tiercel.rules.bench_pipeline",
}

_REGISTRY: dict[str, Callable[[BenchContext], list[Result]]] = {}


def register(suite: str, module: str | None = None):
    """Decorator: register `fn` as the benchmark of `suite`."""

    def deco(fn: Callable[[BenchContext], list[Result]]):
        _REGISTRY[suite] = fn
        return fn

    return deco


@dataclass
class Result:
    """One measured figure: a rate or a latency, over several runs."""

    name: str
    unit: str  # "events/s", "alerts/s", "ms", "MB", "s" ...
    values: list[float]
    higher_is_better: bool = True
    reference: Result | None = None  # same figure for the reference tool, measured in the same run
    target: float | None = None  # the target, for the table
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def spread(self) -> tuple[float, float]:
        return (min(self.values), max(self.values)) if self.values else (float("nan"), float("nan"))

    @property
    def ratio(self) -> float | None:
        """Ours relative to the reference, > 1 means better than the reference."""
        if self.reference is None or not self.reference.values or not self.values:
            return None
        a, b = self.median, self.reference.median
        if a == 0 or b == 0:
            return None
        return a / b if self.higher_is_better else b / a

    def to_json(self) -> dict[str, Any]:
        d = {"name": self.name, "unit": self.unit, "median": self.median, "min": self.spread[0],
             "max": self.spread[1], "runs": len(self.values), "values": self.values,
             "higher_is_better": self.higher_is_better, "target": self.target, "extra": self.extra,
             "ratio": self.ratio, "reference": self.reference.to_json() if self.reference else None}
        return d


@dataclass
class BenchContext:
    runs: int = 5
    warmup: int = 1
    size: str = "normal"  # tiny (smoke test) | normal
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="tiercel-bench-"))
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)

    @property
    def tiny(self) -> bool:
        return self.size == "tiny"

    def scale(self, normal: int, tiny: int) -> int:
        return tiny if self.tiny else normal

    def measure(self, fn: Callable[[], float], runs: int | None = None, warmup: int | None = None) -> list[float]:
        """Rates (work / second) of `fn` over the runs, after warm-up."""
        for _ in range(self.warmup if warmup is None else warmup):
            fn()
        rates = []
        for _ in range(self.runs if runs is None else runs):
            t0 = time.perf_counter()
            work = fn()
            dt = time.perf_counter() - t0
            rates.append(work / dt if dt > 0 else float("inf"))
        return rates


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "implementation": platform.python_implementation(),
                            "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["mem_kb"] = int(line.split()[1])
                break
    except OSError:
        pass
    try:
        info["loadavg"] = os.getloadavg()
    except OSError:
        pass
    return info


def status_mb(key: str, pid: int | str = "self") -> float | None:
    """A memory line of /proc/PID/status (VmRSS, VmHWM, ...) in MB; None when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def max_rss_mb() -> float:
    """Peak RSS of this process's address space (VmHWM). Not ru_maxrss: Linux carries that across
    fork and exec, so a fresh interpreter started by a big benchmark process reported the parent's
    peak (the capture suite once showed 330 MB for a reader that needs 70)."""
    peak = status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """This process's resident set now (VmRSS), in MB."""
    now = status_mb("VmRSS")
    return now if now is not None else max_rss_mb()


def run_suites(names: list[str], ctx: BenchContext) -> dict[str, Any]:
    import importlib

    for suite in names:
        mod = SUITE_MODULES.get(suite)
        if mod is None:
            raise KeyError(f"unknown benchmark {suite!r}; available: {', '.join(sorted(SUITE_MODULES)) or 'none'}")
        importlib.import_module(mod)
    out: dict[str, Any] = {"schema": JSON_SCHEMA, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "machine": machine(), "size": ctx.size, "runs": ctx.runs, "suites": {}}
    for suite in names:
        ctx.log(f"bench {suite}: running ({ctx.runs} runs, {ctx.warmup} warm-up, size {ctx.size})")
        results = _REGISTRY[suite](ctx)
        out["suites"][suite] = [r.to_json() for r in results]
    return out


def table(report: dict[str, Any]) -> str:
    lines = [f"{'benchmark':44} {'median':>14} {'min..max':>23} {'reference':>14} {'ratio':>7} {'target':>10}"]
    for suite, results in report["suites"].items():
        for r in results:
            ref = r["reference"]
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
            target = "" if r["target"] is None else f"{r['target']:,.4g}"
            lines.append(
                f"{suite + ': ' + r['name']:44} {_num(r['median'])} {r['unit']:<9}"
                f"{_num(r['min'])[-10:]:>10}..{_num(r['max']).strip():<10} "
                f"{(_num(ref['median']) if ref else ''):>14} {ratio:>7} {target:>10}"
            )
    return "\n".join(lines)


def _num(v: float) -> str:
    if v != v:  # nan
        return f"{'-':>14}"
    return f"{v:>14,.1f}" if abs(v) < 1e4 else f"{v:>14,.0f}"


def dump(report: dict[str, Any], path: str) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o))


def sysdig_available() -> bool:
    try:
        return subprocess.run(["sysdig", "--version"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
