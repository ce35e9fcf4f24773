"""One event batch through a rules worker, without I/O: bytes in, alerts and counts out.

decode the batch envelope (a bad one is a counted drop, never an exception) → decode its events →
evaluate each with the ruleset current when the batch started (a swap mid-batch does not affect
it; the ruleset holds only rules at or above the `priority` threshold and stops at the first match
under `rule_matching: first`, as Falco's does) → take an output token (`outputs.rate`/`outputs.max_burst`) → assemble the alert: Falco's
JSON alert plus `id` and `seq`, on its subject, with its `Nats-Msg-Id`.

The alert id is `<host>:<seq>:<rule hash>`: the same event matching the same rule always gets the
same id, so re-evaluating a redelivered batch publishes alerts the alerts stream deduplicates.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tiercel.common import bus
from tiercel.common.config import PRIORITIES, Config
from tiercel.rules.ratelimit import TokenBucket

log = logging.getLogger("tiercel.rules")

# Batches larger than this are dropped unread (reason too_large): a batch is normally a few
# hundred events of a few hundred bytes.
MAX_BATCH_BYTES = 4 << 20

PRIORITY_NAMES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")


@dataclass(frozen=True)
class AlertSettings:
    """The live configuration keys that act on alerts, taken from the effective configuration."""

    min_priority: int = 7  # index into PRIORITIES; a match is kept if its index <= this
    rule_matching: str = "first"
    time_iso: bool = False
    rate: float = 0.0
    max_burst: int = 1000

    @classmethod
    def from_config(cls, cfg: Config) -> AlertSettings:
        return cls(min_priority=PRIORITIES.index(cfg["priority"]), rule_matching=cfg["rule_matching"],
                   time_iso=cfg["time_format_iso_8601"], rate=cfg["outputs.rate"],
                   max_burst=cfg["outputs.max_burst"])


@dataclass
class Alert:
    subject: str
    body: bytes
    headers: dict[str, str]
    rule: str
    priority: str
    source: str


@dataclass
class Outcome:
    """What one batch produced."""

    ok: bool = True  # False: the envelope was bad (counted in drops); ack it, nothing else to do
    host: str = ""
    source: str = ""
    seq: int = 0
    n_events: int = 0
    sent_ns: int = 0
    revision: int = 0
    alerts: list[Alert] = field(default_factory=list)
    drops: Counter = field(default_factory=Counter)
    matches: Counter = field(default_factory=Counter)  # (rule, priority, source) -> n, after threshold
    rate_limited: int = 0


class Pipeline:
    """Holds the current ruleset and alert settings of a worker; `process` runs one batch."""

    def __init__(self, engine: Any, hostname: str, settings: AlertSettings | None = None):
        self.engine = engine  # tiercel.rules.compiled adapter: decode_events, evaluate, alert_json
        self.hostname = hostname
        self.ruleset: Any = None
        self.revision = 0
        self.settings = settings or AlertSettings()
        self.bucket = TokenBucket(self.settings.rate, self.settings.max_burst, time.monotonic())
        self.share = 1  # live workers sharing outputs.rate
        self._rule_hash: dict[str, str] = {}

    def swap(self, ruleset: Any, revision: int) -> None:
        """Atomic for batches: each batch reads `self.ruleset` once when it starts."""
        self.ruleset, self.revision = ruleset, revision

    def configure(self, settings: AlertSettings, share: int | None = None) -> None:
        self.settings = settings
        if share is not None:
            self.share = max(1, share)
        self.bucket.reconfigure(settings.rate / self.share, max(1, settings.max_burst // self.share))

    def rule_hash(self, rule: str) -> str:
        h = self._rule_hash.get(rule)
        if h is None:
            h = self._rule_hash[rule] = hashlib.sha256(rule.encode()).hexdigest()[:8]
        return h

    def process(self, data: bytes, now: float | None = None) -> Outcome:
        out = Outcome()
        if len(data) > MAX_BATCH_BYTES:
            out.ok = False
            out.drops["too_large"] += 1
            return out
        try:
            batch = bus.EventBatch.decode(data)
        except bus.BadEnvelope as e:
            out.ok = False
            out.drops[e.reason] += 1
            return out
        out.host, out.source, out.seq, out.sent_ns = batch.host, batch.source, batch.seq, batch.sent_ns
        out.n_events = len(batch.events)
        ruleset, out.revision, st = self.ruleset, self.revision, self.settings
        if ruleset is None:
            out.drops["no_ruleset"] += out.n_events
            return out
        engine = self.engine
        try:
            events, bad = engine.decode_events(batch, ruleset)
        except Exception as e:  # the event model must not take the worker down either
            log.debug("decoding the events of a batch from %s failed: %s", batch.host, e)
            events, bad = [], out.n_events
        if bad:
            out.drops["bad_event"] += bad
        now = time.monotonic() if now is None else now
        for evt in events:
            try:
                matches = engine.evaluate(ruleset, evt)
            except Exception as e:  # a bug on one event must not lose the rest of the batch
                out.drops["eval_error"] += 1
                log.debug("evaluating event %s:%s failed: %s", batch.host, evt.seq, e)
                continue
            if not matches:
                continue
            for m in matches:
                rule = m.rule
                pname = PRIORITY_NAMES[rule.priority]
                out.matches[(rule.name, pname, rule.source)] += 1
                if not self.bucket.claim(now):
                    out.rate_limited += 1
                    continue
                try:
                    alert = engine.alert_json(ruleset, m, evt, batch.host, st)
                except Exception as e:
                    out.drops["format_error"] += 1
                    log.debug("formatting the alert of rule %r failed: %s", rule.name, e)
                    continue
                alert["id"] = f"{batch.host}:{evt.seq}:{self.rule_hash(rule.name)}"
                alert["seq"] = evt.seq
                body, headers = bus.encode_alert(alert)
                out.alerts.append(Alert(bus.alert_subject(pname, rule.source, rule.name), body, headers,
                                        rule.name, pname, rule.source))
        return out
