"""Prometheus metrics of ingest, read live at scrape time from the worker's counters."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class IngestCollector:
    def __init__(self, worker: Any):
        self.w = worker

    def collect(self):
        w = self.w
        seen = CounterMetricFamily("tiercel_ingest_events", "Events seen, by stage.", labels=["stage"])
        seen.add_metric(["kernel"], w.kernel.n_evts)
        seen.add_metric(["ingest"], w.ingest.n_evts)
        yield seen
        drops = CounterMetricFamily("tiercel_ingest_drops", "Events dropped, by stage and reason.",
                                    labels=["stage", "reason"])
        for c in (w.kernel, w.ingest):
            for reason, n in sorted(c.totals.items()):
                drops.add_metric([c.stage, reason], n)
        yield drops
        pub = w.publisher
        pe = CounterMetricFamily("tiercel_ingest_published_events", "Events acked by the bus.", labels=["source"])
        pe.add_metric(["syscall"], pub.published_events if pub else 0)
        if w.k8s is not None:
            pe.add_metric(["k8s_audit"], w.k8s.publisher.published_events)
        yield pe
        rate = GaugeMetricFamily("tiercel_ingest_events_per_second", "Kernel events per second (last second).")
        rate.add_metric([], w.rates.get("events", 0.0))
        yield rate
        q = GaugeMetricFamily("tiercel_ingest_queue_depth", "Events waiting to be published.", labels=["queue"])
        q.add_metric(["syscall"], len(w.queue))
        if w.k8s is not None:
            q.add_metric(["k8s_audit"], len(w.k8s.queue))
        yield q
        hw = GaugeMetricFamily("tiercel_ingest_queue_high_water", "Highest queue depth since start.")
        hw.add_metric([], w.queue.high_water)
        yield hw
        inflight = GaugeMetricFamily("tiercel_ingest_publish_inflight", "Batches waiting for a JetStream ack.")
        inflight.add_metric([], pub.inflight if pub else 0)
        yield inflight
        bl = GaugeMetricFamily("tiercel_ingest_audit_backlog", "Kernel audit records waiting (audit backlog).")
        bl.add_metric([], w.kernel_backlog)
        yield bl
        lost = CounterMetricFamily("tiercel_ingest_audit_lost", "Kernel audit records lost since start.")
        lost.add_metric([], w.kernel_lost_total)
        yield lost


def start_metrics(worker: Any, address: str, port: int):
    """Serve /metrics; returns the server (call .shutdown() to stop)."""
    from tiercel.common.runtime import ServiceError

    reg = CollectorRegistry()
    reg.register(IngestCollector(worker))
    try:
        server, _thread = start_http_server(port, addr=address, registry=reg)
    except OSError as e:
        raise ServiceError(f"metrics cannot listen on {address}:{port}: {e.strerror or e} "
                           f"(set metrics.ingest_port, or metrics.enabled=false)") from None
    return server
