"""Prometheus metrics of the API, read from the hub's own counters at scrape time.

Nothing is counted twice on the hot path: a scrape walks the subscribers and reports what they
already count for `dropped_before` and the drops stream.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger("tiercel.api")


class ApiMetrics:
    """Counters the hub cannot derive from its live subscribers (departed ones), and inputs."""

    def __init__(self) -> None:
        self.hub: Any = None
        self.inputs: Any = None
        self.sent_departed = 0
        self.dropped_departed = 0

    def forget(self, s: Any) -> None:
        self.sent_departed += s.sent
        self.dropped_departed += s.dropped_total

    def collect(self):
        hub = self.hub
        subs = list(hub.subscribers.values()) if hub else []
        g = GaugeMetricFamily("tiercel_api_subscribers", "Alert subscribers connected now.", labels=["method"])
        by_method = collections.Counter(s.method for s in subs)
        for m in ("sub", "sub_batch"):
            g.add_metric([m], by_method.get(m, 0))
        yield g
        yield CounterMetricFamily("tiercel_api_alerts_received", "Alerts read from the alerts stream.",
                                  value=hub.received if hub else 0)
        bad = CounterMetricFamily("tiercel_api_alerts_malformed", "Alerts dropped as malformed, by reason.",
                                  labels=["reason"])
        for reason, n in (hub.bad.items() if hub else ()):
            bad.add_metric([reason], n)
        yield bad
        yield CounterMetricFamily("tiercel_api_alerts_sent", "Alerts written to subscribers (all streams).",
                                  value=self.sent_departed + sum(s.sent for s in subs))
        yield CounterMetricFamily("tiercel_api_alerts_dropped", "Alerts dropped by full subscriber queues "
                                  "(all subscribers, since start).",
                                  value=self.dropped_departed + sum(s.dropped_total for s in subs))
        per = CounterMetricFamily("tiercel_api_subscriber_dropped", "Alerts dropped by this subscriber's full "
                                  "queue.", labels=["subscriber", "peer"])
        depth = GaugeMetricFamily("tiercel_api_subscriber_queue", "Alerts waiting in this subscriber's queue.",
                                  labels=["subscriber", "peer"])
        sent = CounterMetricFamily("tiercel_api_subscriber_sent", "Alerts written to this subscriber.",
                                   labels=["subscriber", "peer"])
        for s in subs:
            per.add_metric([s.name, s.peer], s.dropped_total)
            depth.add_metric([s.name, s.peer], len(s.queue))
            sent.add_metric([s.name, s.peer], s.sent)
        yield per
        yield depth
        yield sent
        if self.inputs is not None:
            yield CounterMetricFamily("tiercel_api_inputs_accepted", "Events accepted through falco.inputs.",
                                      value=self.inputs.accepted)
            yield CounterMetricFamily("tiercel_api_inputs_rejected", "Messages rejected by falco.inputs.",
                                      value=self.inputs.rejected)


def serve(metrics: ApiMetrics, address: str, port: int) -> Any:
    """Serve /metrics on address:port in a thread; returns the server (None when port is 0)."""
    if not port:
        return None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    try:
        server, _thread = start_http_server(port, addr=address, registry=registry)
    except OSError as e:
        from tiercel.common.runtime import ServiceError

        raise ServiceError(f"cannot serve metrics on {address}:{port}: {e.strerror or e}; "
                           "set metrics.api_port (0 = off) or metrics.enabled=false") from None
    log.info("metrics on http://%s:%d/metrics", address, port)
    return server
