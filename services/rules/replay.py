"""Reading a capture for `tiercel replay`, through the ingest side's capture reader
(`tiercel.ingest.capfile`): the kind of capture is told by its content, not its name.

- scap (pcapng-style section header block, possibly gzipped) and Tiercel's .tcap -> syscall events
  through the scap reader and the state engine;
- k8s audit JSON (an `Event`, an `EventList`, an array, or one JSON object per line) -> k8s_audit
  events, read as Falco's k8saudit plugin reads them: anything else is counted, reported, skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tiercel.common.event import Event

NOT_AUDIT = "data not recognized as a k8s audit event"
# Reader counters that mean input was skipped, with what `replay` says about them.
SKIPPED = {
    "not_audit": NOT_AUDIT,
    "bad_json": "line is not valid JSON",
    "not_utf8": "k8s audit data is not UTF-8",
}


class TraceError(ValueError):
    """The capture cannot be read at all."""


def sniff(head: bytes) -> str:
    """'scap', 'tcap', 'json' or 'unknown' from the first bytes of a capture."""
    from tiercel.ingest.capfile import sniff as capfile_sniff

    return capfile_sniff(head)


def read_trace(path: str, warn: Callable[[str], None] = lambda m: None,
               stats: dict[str, int] | None = None) -> Iterator[Any]:
    """Events of a capture file, in order. Input the reader skipped is reported through `warn`
    at the end; `stats` receives the reader's counters."""
    from tiercel.ingest.capfile import CaptureError, CaptureReader

    reader = CaptureReader(path)
    try:
        yield from reader.events()
    except CaptureError as e:
        raise TraceError(str(e)) from None
    except OSError as e:
        raise TraceError(f"cannot read {path}: {e.strerror or e}") from None
    counters = reader.stats
    if stats is not None:
        stats.update(counters)
    for key, what in SKIPPED.items():
        n = counters.get(key, 0)
        if n:
            warn(f"{what} ({n} skipped)" if n > 1 else what)


def k8s_audit_events(data: bytes, warn: Callable[[str], None] = lambda m: None,
                     first_num: int = 1) -> Iterator[Event]:
    """k8s_audit events from audit JSON bytes (the ingest reader's sans-IO part); documents that
    are not audit events are reported through `warn` and skipped."""
    from tiercel.ingest.k8saudit import events_from_bytes

    stats: dict[str, int] = {}
    yield from events_from_bytes(data, stats=stats, first_num=first_num)
    for key, what in SKIPPED.items():
        for _ in range(stats.get(key, 0)):
            warn(what)


SHORT_PRIORITY = ("EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")


class Summary:
    """What a replay saw: Falco's end-of-capture statistics plus Tiercel's counters."""

    def __init__(self) -> None:
        self.events = 0
        self.alerts = 0
        self.failed = 0  # events whose evaluation raised (counted, skipped)
        self.seconds = 0.0
        self.by_priority = [0] * len(SHORT_PRIORITY)
        self.by_rule: dict[Any, int] = {}  # rule -> alerts, in first-alert order

    def count(self, rule: Any) -> None:
        self.alerts += 1
        self.by_priority[rule.priority] += 1
        self.by_rule[rule] = self.by_rule.get(rule, 0) + 1

    def text(self) -> str:
        """Falco's `Events detected` block (severities upper-case short names, rules in rule
        order), after one line with the events read and the time taken."""
        rate = self.events / self.seconds if self.seconds > 0 else 0.0
        lines = [f"Events read: {self.events} in {self.seconds:.3f}s ({rate:,.0f} events/s)"]
        if self.failed:
            lines.append(f"Events that failed evaluation: {self.failed}")
        lines.append(f"Events detected: {self.alerts}")
        lines.append("Rule counts by severity:")
        lines += [f"   {SHORT_PRIORITY[p]}: {n}" for p, n in enumerate(self.by_priority) if n]
        lines.append("Triggered rules by rule name:")
        lines += [f"   {r.name}: {n}" for r, n in sorted(self.by_rule.items(), key=lambda x: x[0].index)]
        return "\n".join(lines) + "\n"


def replay_events(ruleset: Any, events: Any, emit: Callable[[Any], None]) -> Summary:
    """Evaluate events in order, `emit` each match; an event whose evaluation raises is counted
    and skipped (the rest of the capture still runs)."""
    import time

    s = Summary()
    process = ruleset.process
    t0 = time.perf_counter()
    for evt in events:
        s.events += 1
        try:
            matches = process(evt)
        except Exception:
            s.failed += 1
            continue
        for m in matches:
            s.count(m.rule)
            emit(m)
    s.seconds = time.perf_counter() - t0
    return s
