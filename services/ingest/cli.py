"""`tiercel inspect TRACE [FILTER] [-p FORMAT] [--json]`: what the rules see, like `sysdig -r`.

Prints every event of a capture (.scap, .tcap, k8s audit JSON) that matches an optional Falco
condition, one line each: sysdig's default line, or `-p FORMAT` with sysdig's conventions
(`%field` tokens; without a leading `*` an event with a missing field is not printed, with it the
value prints as `<NA>`), or `--json` (one object per event). Skipped or corrupt data is reported
on stderr at the end; a progress bar shows on stderr when it is a terminal.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Annotated, Any

import typer


def _default_line(ev: Any) -> str:
    from tiercel.rules.condition import evt_time
    from tiercel.rules.fields import render as R
    from tiercel.rules.fields import syscall as S

    if ev.source != "syscall":
        payload = json.dumps(ev.payload, separators=(",", ":"), ensure_ascii=False)
        return f"{ev.num} {evt_time(ev.ts)} {ev.source} {payload}"
    t = ev.thread
    comm = t.comm if t is not None else "<NA>"
    tid = t.tid if t is not None else ev.tid
    return f"{ev.num} {evt_time(ev.ts)} {ev.cpu} {comm} ({tid}) {ev.dir} {S._evt_type(ev)} {R.args_text(ev)}"


def _default_json(ev: Any) -> dict[str, Any]:
    from tiercel.rules.condition import evt_time
    from tiercel.rules.fields import render as R
    from tiercel.rules.fields import syscall as S

    if ev.source != "syscall":
        return {"evt.num": ev.num, "evt.time": evt_time(ev.ts), "evt.source": ev.source, "payload": ev.payload}
    t = ev.thread
    return {"evt.cpu": ev.cpu, "evt.dir": ev.dir, "evt.info": R.args_text(ev), "evt.num": ev.num,
            "evt.outputtime": ev.ts, "evt.type": S._evt_type(ev),
            "proc.name": t.comm if t is not None else None, "thread.tid": t.tid if t is not None else ev.tid}


class _Compiled:
    """The filter and format of one source, compiled on first use."""

    def __init__(self, filter_text: str | None, fmt: str | None):
        self.filter_text = filter_text
        self.fmt = fmt
        self._by_source: dict[str, tuple[Any, Any]] = {}

    def get(self, source: str) -> tuple[Any, Any]:
        got = self._by_source.get(source)
        if got is None:
            from tiercel.rules import condition as cond

            ev = None
            if self.filter_text:
                tree = cond.parse(self.filter_text)
                tree, _ = cond.expand_macros(tree, lambda name: None)
                checked = cond.check(tree, source)
                ev = cond.build_evaluator(source, [(0, checked, None)], matching="first")
            out = cond.compile_output(self.fmt, source, rule_output=False) if self.fmt else None
            got = (ev, out)
            self._by_source[source] = got
        return got


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int):
        self.on = sys.stderr.isatty() and total > 0
        self.total = total
        self.last = 0.0

    def update(self, done: int, events: int) -> None:
        if not self.on:
            return
        now = time.monotonic()
        if now - self.last < 0.25:
            return
        self.last = now
        pct = min(100.0, 100.0 * done / self.total)
        bar = "#" * int(pct / 5)
        sys.stderr.write(f"\r[{bar:<20}] {pct:5.1f}% {events} events")
        sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def inspect(
    trace: Annotated[str, typer.Argument(help="Capture file: .scap (gzip or not), .tcap, k8s audit JSON.")],
    filter_text: Annotated[str | None, typer.Argument(metavar="[FILTER]", help="A Falco condition.")] = None,
    fmt: Annotated[str | None, typer.Option("-p", "--print", help="Output format, sysdig's -p.")] = None,
    as_json: Annotated[bool, typer.Option("--json", "-j", help="One JSON object per event.")] = False,
    source: Annotated[str | None, typer.Option("--source", help="Force the source (syscall, k8s_audit, "
                                               "or a JSON source name).")] = None,
    all_events: Annotated[bool, typer.Option("--all", "-A", help="Also the internal events sysdig hides "
                                             "(procinfo, container metadata).")] = False,
    count: Annotated[int, typer.Option("--count", "-n", help="Stop after N printed events (0: all).")] = 0,
) -> None:
    """Print the events of a capture as the rules see them (like sysdig -r)."""
    from tiercel.cli.common import fail
    from tiercel.ingest.capfile import CaptureError, CaptureReader
    from tiercel.rules.condition import ConditionError

    try:
        total = os.path.getsize(trace)
    except OSError as e:
        fail(f"cannot open {trace}: {e.strerror or e}")
    reader = CaptureReader(trace, all_events=all_events, source=source)
    compiled = _Compiled(filter_text, fmt)
    progress = _Progress(total)
    out = sys.stdout
    write = out.write
    printed = seen = 0
    try:
        for ev in reader.events():
            seen += 1
            if seen & 1023 == 0:
                progress.update(reader.position(), seen)
            evaluator, fmt_c = compiled.get(ev.source)
            if evaluator is not None and not evaluator(ev):
                continue
            if fmt_c is not None:
                if as_json:
                    write(json.dumps(fmt_c.fields(ev), ensure_ascii=False, default=str) + "\n")
                else:
                    text = fmt_c.render(ev)
                    if not text:
                        continue  # a missing field and no leading `*`: sysdig prints nothing
                    write(text + "\n")
            elif as_json:
                write(json.dumps(_default_json(ev), ensure_ascii=False, default=str) + "\n")
            else:
                write(_default_line(ev) + "\n")
            printed += 1
            if count and printed >= count:
                break
    except CaptureError as e:
        progress.close()
        fail(str(e))
    except ConditionError as e:
        progress.close()
        fail(f"bad filter or format: {e}")
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    progress.close()
    problems = {k: v for k, v in reader.stats.items()
                if k not in ("blocks", "events", "sections", "records", "unknown_threads", "container_events")
                and v}
    if problems:
        print("tiercel inspect: " + ", ".join(f"{k}={v}" for k, v in sorted(problems.items())), file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
