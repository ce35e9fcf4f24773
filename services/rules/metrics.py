"""Prometheus metrics of one rules worker (`metrics.address`:`metrics.rules_port` + index).

Names follow Falco's where the meaning is the same (`falcosecurity_falco_rules_matches_total`
with `rule_name`, `priority`, `source`), so Falco dashboards keep working; Tiercel's own series
are `tiercel_rules_*`. Counters are fed from the worker's Stats as deltas, so the hot path only
touches plain integers.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client import Counter as PCounter

log = logging.getLogger("tiercel.rules")


class Metrics:
    def __init__(self, instance: str):
        self.registry = r = CollectorRegistry()
        self.matches = PCounter("falcosecurity_falco_rules_matches", "Rule matches (after the priority threshold).",
                                ["rule_name", "priority", "source"], registry=r)
        self.events = PCounter("tiercel_rules_events", "Events evaluated.", registry=r)
        self.batches = PCounter("tiercel_rules_batches", "Event batches received.", registry=r)
        self.alerts = PCounter("tiercel_rules_alerts", "Alerts stored in the alerts stream.", registry=r)
        self.alerts_duplicate = PCounter("tiercel_rules_alerts_duplicate",
                                         "Alerts the stream already held (redelivered batches).", registry=r)
        self.rate_limited = PCounter("tiercel_rules_alerts_rate_limited",
                                     "Alerts not sent because of outputs.rate/max_burst.", registry=r)
        self.redelivered = PCounter("tiercel_rules_batches_redelivered", "Batches received more than once.",
                                    registry=r)
        self.drops = PCounter("tiercel_rules_drops", "Events (or undecodable batches) lost by this worker.",
                              ["reason"], registry=r)
        self.revision = Gauge("tiercel_rules_ruleset_revision", "Revision of the ruleset this worker runs.",
                              registry=r)
        self.config_revision = Gauge("tiercel_rules_config_revision", "Last configs-store revision applied.",
                                     registry=r)
        self.lag = Gauge("tiercel_rules_lag", "Batches waiting in the events stream (consumer pending).", registry=r)
        self.info = Gauge("tiercel_rules_info", "This worker.", ["instance"], registry=r)
        self.info.labels(instance).set(1)
        self._last: dict[str, Any] = {}
        self.port = 0

    def serve(self, address: str, port: int) -> int:
        """Start the HTTP endpoint; returns the port (0 picks a free one). Raises OSError."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        self.port = server.server_address[1]
        return self.port

    def update(self, stats: Any, revision: int, config_revision: int) -> None:
        for name in ("events", "batches", "alerts", "alerts_duplicate", "rate_limited", "redelivered"):
            v = getattr(stats, name)
            d = v - self._last.get(name, 0)
            if d > 0:
                getattr(self, name).inc(d)
            self._last[name] = v
        for key, attr, metric in (("drops", "drops", self.drops), ("matches", "matches", self.matches)):
            cur: Counter = getattr(stats, attr)
            prev: Counter = self._last.get(key) or Counter()
            for labels, v in cur.items():
                d = v - prev.get(labels, 0)
                if d > 0:
                    metric.labels(*labels if isinstance(labels, tuple) else (labels,)).inc(d)
            self._last[key] = Counter(cur)
        self.revision.set(revision)
        self.config_revision.set(config_revision)
        self.lag.set(stats.lag)
