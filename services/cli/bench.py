"""`tiercel bench [SUITE...] [--json FILE]`: the benchmark harness (never part of `make test`)."""

from __future__ import annotations

from typing import Annotated

import typer


def bench(
    suites: Annotated[list[str] | None, typer.Argument(help="rules, capture, ingest, pipeline, api, or all.")] = None,
    json_file: Annotated[str | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
    runs: Annotated[int, typer.Option(help="Measured runs per benchmark.")] = 5,
    warmup: Annotated[int, typer.Option(help="Warm-up runs per benchmark.")] = 1,
    size: Annotated[str, typer.Option(help="normal, or tiny for a smoke run.")] = "normal",
) -> None:
    """Measure Tiercel on this machine: medians, spread, and ratios to reference tools."""
    from tiercel.cli.common import fail
    from tiercel.common import benchmark

    names = list(suites or ["all"])
    if names == ["all"]:
        names = list(benchmark.SUITE_MODULES)
    if size not in ("normal", "tiny"):
        fail("--size must be normal or tiny")
    ctx = benchmark.BenchContext(runs=runs, warmup=warmup, size=size)
    try:
        report = benchmark.run_suites(names, ctx)
    except KeyError as e:
        fail(str(e.args[0]))
    print(benchmark.table(report))
    if json_file:
        benchmark.dump(report, json_file)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
