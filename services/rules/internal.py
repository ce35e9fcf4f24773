"""Falco's internal alerts raised by a rules worker, and the monitor that decides when.

Two conditions, checked once per second, both handled like Falco's syscall drop monitor
(`syscall_event_drops`: threshold, actions log/alert/exit, token bucket rate/max_burst):

- **drops**: events this worker lost in the last second (bad batches, undecodable events,
  evaluation errors) over `syscall_event_drops.threshold` of the events it saw. Alert: Falco's
  own rule `Falco internal: syscall event drop`.
- **behind**: the worker receives batches that waited in the events stream longer than
  `rules.behind_s`, or batches redelivered because a worker let their ack wait expire. Nothing is
  lost yet (events wait in the stream), but alerts come late. Alert: `Falco internal: rules
  worker behind`, same shape.

Shape (Falco's internal alert): priority Debug, source `internal`, no tags, `output` is the bare
message, every `output_fields` value a string. Plus Tiercel's `id` and `seq` (0: no event).
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tiercel.common.config import Config
from tiercel.rules.ratelimit import TokenBucket

log = logging.getLogger("tiercel.rules")

DROP_RULE = "Falco internal: syscall event drop"
BEHIND_RULE = "Falco internal: rules worker behind"


def iso_time(time_ns: int) -> str:
    secs, ns = divmod(time_ns, 1_000_000_000)
    t = datetime.datetime.fromtimestamp(secs, datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns:09d}Z"


def internal_alert(rule: str, message: str, fields: dict[str, Any], hostname: str, alert_id: str,
                   time_ns: int) -> dict[str, Any]:
    return {"hostname": hostname, "output": message, "output_fields": {k: str(v) for k, v in fields.items()},
            "priority": "Debug", "rule": rule, "source": "internal", "time": iso_time(time_ns),
            "id": alert_id, "seq": 0}


@dataclass
class Window:
    """What happened in one second of a worker."""

    n_evts: int = 0
    drops: Counter = field(default_factory=Counter)
    max_delay_s: float = 0.0  # longest wait in the stream of a batch received
    redelivered: int = 0  # batches received again after an ack-wait expiry
    lag: int = 0  # batches waiting in the stream (consumer pending)


@dataclass
class Action:
    rule: str
    message: str
    fields: dict[str, Any]
    alert: bool
    exit: bool


class DropMonitor:
    """Falco's event_drops manager, applied to a rules worker's one-second windows."""

    def __init__(self, cfg: Config, now: float):
        self.occurrences = 0
        self.actions_taken = 0
        self.bucket = TokenBucket(1, 1, now)
        self.configure(cfg)

    def configure(self, cfg: Config) -> None:
        self.threshold = cfg["syscall_event_drops.threshold"]
        self.actions = list(cfg["syscall_event_drops.actions"])
        self.simulate = cfg["syscall_event_drops.simulate_drops"]
        self.behind_s = cfg["rules.behind_s"]
        self.bucket.reconfigure(cfg["syscall_event_drops.rate"], cfg["syscall_event_drops.max_burst"])

    def check(self, w: Window, now: float) -> list[Action]:
        out: list[Action] = []
        if not self.actions or self.actions == ["ignore"]:
            return out
        n_drops = sum(w.drops.values())
        threshold = self.threshold
        if self.simulate:
            threshold, n_drops = 0.0, n_drops + 1
            w.drops["simulated"] += 1
        if n_drops > 0 and (w.n_evts == 0 or n_drops / w.n_evts > threshold):
            fields = {"n_evts": w.n_evts, "n_drops": n_drops}
            fields.update({f"n_drops_{r}": n for r, n in sorted(w.drops.items())})
            out.append(Action(DROP_RULE, f"{DROP_RULE}. {n_drops} system calls dropped in last second.",
                              fields, "alert" in self.actions, "exit" in self.actions))
        if (self.behind_s > 0 and w.max_delay_s > self.behind_s) or w.redelivered:
            fields = {"n_evts": w.n_evts, "lag": w.lag, "max_delay_ms": int(w.max_delay_s * 1000),
                      "n_redelivered": w.redelivered}
            out.append(Action(BEHIND_RULE, f"{BEHIND_RULE}. Events waited up to {w.max_delay_s:.1f} s for a "
                                            f"rules worker in last second ({w.lag} batches waiting, "
                                            f"{w.redelivered} redelivered).",
                              fields, "alert" in self.actions, False))
        if not out:
            return out
        self.occurrences += len(out)
        if not self.bucket.claim(now):
            log.debug("drop actions skipped: token bucket depleted")
            return []
        self.actions_taken += 1
        if "log" in self.actions:
            for a in out:
                log.warning("%s %s", a.message,
                            " ".join(f"{k}={v}" for k, v in sorted(a.fields.items())))
        return out
