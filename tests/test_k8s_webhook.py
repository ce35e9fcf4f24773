"""The k8s audit webhook of `tiercel ingest`, over real HTTP and a real nats-server: each
conformance trace POSTed yields its events on the bus; bad requests get Falco's statuses and
are counted, and the worker keeps serving."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import nats
import pytest

from tiercel.common import bus
from tiercel.common.event import decode_events

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: bytes, ctype: str = "application/json", method: str = "POST") -> int:
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


async def test_webhook_traces_and_bad_requests(nats_broker, tmp_path, conformance_dir):
    traces = sorted((conformance_dir / "traces" / "k8s_audit").glob("*.json"))
    assert traces
    port = _free_port()
    nc = await nats.connect(nats_broker.url)
    events: list[dict] = []
    drops: list[bus.DropReport] = []

    async def on_batch(m):
        b = bus.EventBatch.decode(m.data)
        assert b.source == "k8s_audit"
        evs, bad = decode_events(b)
        assert bad == 0
        events.extend(ev.payload for ev in evs)

    async def on_drop(m):
        drops.append(bus.DropReport.decode(m.data))

    await nc.subscribe(f"{bus.EVENTS_SUBJECT}.k8s_audit.>", cb=on_batch)
    await nc.subscribe(f"{bus.DROPS_SUBJECT}.ingest.>", cb=on_drop)
    p = subprocess.Popen([sys.executable, "-m", "tiercel", "ingest", "--nats-url", nats_broker.url, "--driver", "none",
                          "-o", f"state_dir={tmp_path}", "-o", f"k8s_audit.listen=127.0.0.1:{port}",
                          "-o", "k8s_audit.max_body=20000", "-o", "metrics.enabled=false"],
                         stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/k8s-audit"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and p.poll() is None, "webhook did not start"
                await asyncio.sleep(0.1)
        expected = []
        for t in traces:
            text = t.read_text()
            dec, i, objs = json.JSONDecoder(), 0, []
            while i < len(text):
                if text[i].isspace():
                    i += 1
                    continue
                o, i = dec.raw_decode(text, i)
                objs.append(o)
            good = [o for o in objs if isinstance(o, dict) and o.get("kind") == "Event"]
            status = await asyncio.to_thread(post, url, t.read_bytes())
            assert status == (200 if good else 400), t.name
            expected += [o["auditID"] for o in good]
        # bad requests: status as Falco's k8saudit plugin, each counted, the worker keeps going
        assert await asyncio.to_thread(post, url, b"", method="GET") == 405
        assert await asyncio.to_thread(post, url, b"{}", ctype="text/plain") == 400
        assert await asyncio.to_thread(post, url, b"[" + b" " * 30000 + b"]") == 400
        assert await asyncio.to_thread(post, url, b"{not json") == 400
        assert await asyncio.to_thread(post, f"http://127.0.0.1:{port}/other", b"{}") == 404
        deadline = time.monotonic() + 5
        while len(events) < len(expected) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert sorted(e["auditID"] for e in events) == sorted(expected)
        await asyncio.sleep(1.3)  # one drop report interval
    finally:
        p.terminate()
        assert p.wait(20) == 0
        await asyncio.sleep(0.3)
        await nc.close()
    totals = drops[-1].totals
    for reason in ("k8s_bad_method", "k8s_bad_content_type", "k8s_too_large", "k8s_bad_json", "k8s_bad_event"):
        assert totals.get(reason, 0) >= 1, (reason, totals)
    seen = sum(r.n_evts for r in drops)
    assert seen == len(expected) + sum(totals.values())
