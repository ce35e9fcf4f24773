"""Fault suite (`make test-faults`): a real nats-server (or a three-node cluster), every service as
a real process (`tiercel rules serve`, `tiercel api`, `tiercel ingest`, `tiercel alerts --grpc`),
events flowing, and then a fault: a rules worker SIGKILLed, nats-server SIGKILLed and restarted,
the API restarted under its subscribers, a subscriber that stops reading, the alerts stream's disk
budget filled, a cluster node lost.

Each test asserts the guarantee of docs/reliability.md (nothing lost unless the docs say so, and
then counted) and records what it measured in build/faults.json (TIERCEL_FAULTS_REPORT), which the
docs quote: events and alerts, lost and duplicated, and how long recovery took.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests import faultkit, syskit
from tests.faultkit import ACK_WAIT_S, Load, Observer, exactly_once, record, stored_alerts
from tiercel.common import bus
from tiercel.common.broker import EmbeddedBroker

pytestmark = [pytest.mark.timeout(300)]
# The longer scenarios run with `make test-faults` only; the two marked fault_smoke (about 25 s
# each) also run in `make test`, so CI (which runs `make test`) proves the API's resume and the
# alerts stream's budget with every service as a real process.
faults = pytest.mark.faults
fault_smoke = pytest.mark.fault_smoke


@pytest.fixture
def broker(tmp_path):
    b = EmbeddedBroker(store_dir=tmp_path / "nats" / "js").start()
    yield b
    b.stop()


@pytest.fixture
def rules_file(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text(faultkit.RULES)
    return p


def workers(tmp_path, url: str, rules_file, n: int = 2, **options) -> list[syskit.Service]:
    return [syskit.rules_worker(tmp_path, url, i, {"rules_files": str(rules_file), "rules.ack_wait_s": ACK_WAIT_S,
                                                  **options}) for i in range(n)]


async def heartbeats(nc, service: str = "rules") -> dict[str, dict]:
    """Latest heartbeat per instance of `service`, kept up to date."""
    beats: dict[str, dict] = {}

    async def cb(msg) -> None:
        hb = json.loads(msg.data)
        beats[hb["instance"]] = hb

    await nc.subscribe(f"{bus.HEARTBEAT_SUBJECT}.{service}.>", cb=cb)
    return beats


async def api_subscribers(beats: dict[str, dict], n: int, timeout: float = 30) -> None:
    """Until the API's heartbeats count `n` connected subscribers (then no alert is missed)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sum(hb["counters"].get("subscribers", 0) for hb in beats.values()
               if time.time_ns() - hb["time_ns"] < 3e9) >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the API did not report {n} subscribers within {timeout:g}s")


def assert_clean_logs(services: list[syskit.Service]) -> None:
    for s in services:
        assert "Traceback" not in s.log(), f"{s.name}: {s.log()[-3000:]}"


@faults
async def test_rules_worker_sigkill_under_load(broker, tmp_path, rules_file):
    """Two workers share the load; one is SIGKILLed while it holds unacked batches, and restarted.
    Every matching event gets exactly one stored alert; the dead worker's batches are evaluated
    again by the survivor one ack wait later."""
    ws = workers(tmp_path, broker.url, rules_file)
    syskit.start_all(ws)
    nc = await faultkit.bus_conn(broker.url)
    try:
        assert await syskit.wait_ready(broker.url, {"rules"}, count=2) == {"rules"}
        beats = await heartbeats(nc)
        obs = await Observer(nc).start()
        load = Load(nc, rate=20).start()
        await asyncio.sleep(3)
        await load.burst(40)  # more than both workers hold at once: a backlog waits in the stream
        t_kill = time.time()
        ws[0].kill()
        await asyncio.sleep(ACK_WAIT_S + 2)
        ws[0].start()
        await asyncio.sleep(3)
        t_end = time.time()
        await load.finish()
        expected = load.hits_before()
        last = await obs.until_all(expected, timeout=60)
        assert last is not None, f"missing alerts on the bus: {len(expected - obs.first_seen.keys())}"
        counts = exactly_once(await stored_alerts(nc.jetstream()), expected)
        redelivered = sum(hb["counters"].get("redelivered", 0) for hb in beats.values())
        figures = {**counts, "events": load.events, "batches": load.batches, "workers": 2,
                   "redelivered_batches": redelivered,
                   "catch_up_s": round(obs.caught_up_after(load.hits_before(t_kill), t_kill), 3),
                   "recovery_s": faultkit.recovery_s(load, obs, t_kill),
                   "latency_before_s": faultkit.latency_s(load, obs, t_kill - 3, t_kill - 1),
                   "end_lag_s": round(max(0.0, last - t_end), 3),
                   "core_nats_duplicates": obs.core_duplicates}
        record("rules_worker_sigkill", figures)
        assert counts["lost"] == counts["duplicated"] == counts["unexpected"] == 0, figures
        assert redelivered > 0, "the kill left no batch in flight: the test proved nothing"
    finally:
        await nc.close()
        syskit.stop_all(ws)
    assert_clean_logs(ws)


@faults
async def test_nats_server_sigkill_and_restart(broker, tmp_path, rules_file):
    """nats-server is SIGKILLed under load and restarted 2 s later on the same store. The publisher
    (like ingest) re-sends unacknowledged batches under the same id; workers, the API and its
    subscriber reconnect. Stored events and alerts survive; nothing is lost or duplicated."""
    ws = workers(tmp_path, broker.url, rules_file)
    sock = tmp_path / "api.sock"
    api = syskit.api(tmp_path, broker.url, sock)
    services = [*ws, api]
    syskit.start_all(services)
    nc = await faultkit.bus_conn(broker.url)
    tail = None
    try:
        assert await syskit.wait_ready(broker.url, {"rules", "api"}, count=1) == {"rules", "api"}
        api_beats = await heartbeats(nc, "api")
        tail = syskit.alerts_tail(tmp_path, sock, "subscriber").start()
        await api_subscribers(api_beats, 1)
        obs = await Observer(nc).start()
        load = Load(nc, rate=20).start()
        await asyncio.sleep(3)
        t_kill = time.time()
        broker.kill()
        await asyncio.sleep(2)
        t_restart = time.time()
        broker.restart()
        await asyncio.sleep(5)
        t_end = time.time()
        await load.finish()
        expected = load.hits_before()
        last = await obs.until_all(expected, timeout=60)
        missing_bus = len(expected - obs.first_seen.keys())
        counts = exactly_once(await stored_alerts(nc.jetstream()), expected)
        got = await wait_subscriber(tail, expected, timeout=30)
        sub = subscriber_counts(got, expected)
        resumed = obs.stored_after(t_restart)
        figures = {**counts, "events": load.events, "batches": load.batches,
                   "broker_down_s": round(t_restart - t_kill, 3),
                   "publish_outage_s": round(load.max_ack_gap(), 3),
                   "first_alert_after_restart_s": round(resumed[0] - t_restart, 3) if resumed else None,
                   "catch_up_s": round(obs.caught_up_after(load.hits_before(t_kill), t_restart), 3),
                   "recovery_s": faultkit.recovery_s(load, obs, t_restart),
                   "latency_before_s": faultkit.latency_s(load, obs, t_kill - 3, t_kill - 1),
                   "end_lag_s": round(max(0.0, (last or time.time()) - t_end), 3),
                   "subscriber": sub}
        record("nats_server_sigkill_restart", figures)
        assert missing_bus == 0, figures
        assert counts["lost"] == counts["duplicated"] == counts["unexpected"] == 0, figures
        assert sub["lost"] == sub["duplicated"] == 0, figures
    finally:
        await nc.close()
        syskit.stop_all(services + ([tail] if tail else []))
    assert_clean_logs(services)


def subscriber_counts(got: list[dict], expected: set[int]) -> dict[str, int]:
    seqs = [a["seq"] for a in got if a.get("rule") == faultkit.RULE and a.get("hostname") == "fault-host"]
    return {"received": len(seqs), "lost": len(expected - set(seqs)), "duplicated": len(seqs) - len(set(seqs))}


async def wait_subscriber(tail: syskit.Service, expected: set[int], timeout: float) -> list[dict]:
    deadline = time.time() + timeout
    while True:
        got = syskit.read_json_lines(tail.stdout_path)
        have = {a["seq"] for a in got if a.get("rule") == faultkit.RULE}
        if expected <= have or time.time() > deadline:
            return got
        await asyncio.sleep(0.2)
class TailWatch:
    """Timestamps each alert line a `tiercel alerts --json` subscriber writes (polls its output)."""

    def __init__(self, tail: syskit.Service):
        self.tail = tail
        self.seen: dict[int, float] = {}
        self.lines = 0
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        pos = 0
        buf = b""
        while not self._stop.is_set():
            try:
                with open(self.tail.stdout_path, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            pos += len(data)
            buf += data
            *lines, buf = buf.split(b"\n")
            now = time.time()
            for line in lines:
                if line.startswith(b"{"):
                    a = json.loads(line)
                    if a.get("rule") == faultkit.RULE and a.get("hostname") == "fault-host":
                        self.lines += 1
                        self.seen.setdefault(a["seq"], now)
            await asyncio.sleep(0.05)

    def start(self) -> TailWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task

    def first_after(self, t0: float) -> float | None:
        after = [t for t in self.seen.values() if t >= t0]
        return round(min(after) - t0, 3) if after else None


@fault_smoke
async def test_api_restart_under_connected_subscribers(broker, tmp_path, rules_file):
    """Two `tiercel alerts --grpc` subscribers stay attached while the API is SIGKILLed and
    restarted, then stopped (SIGTERM) and restarted: each resumes after the last alert id it saw
    and ends with every alert exactly once."""
    ws = workers(tmp_path, broker.url, rules_file)
    sock = tmp_path / "api.sock"
    api = syskit.api(tmp_path, broker.url, sock)
    services = [*ws, api]
    syskit.start_all(services)
    nc = await faultkit.bus_conn(broker.url)
    tails = [syskit.alerts_tail(tmp_path, sock, f"subscriber-{i}") for i in range(2)]
    try:
        assert await syskit.wait_ready(broker.url, {"rules", "api"}) == {"rules", "api"}
        api_beats = await heartbeats(nc, "api")
        syskit.start_all(tails)
        await api_subscribers(api_beats, 2)
        watches = [TailWatch(t).start() for t in tails]
        obs = await Observer(nc).start()
        load = Load(nc, rate=20).start()
        await asyncio.sleep(3)
        t_kill = time.time()
        api.kill()
        await asyncio.sleep(1)
        t_restart1 = time.time()
        api.start()
        await asyncio.sleep(4)
        t_term = time.time()
        assert api.stop() == 0
        await asyncio.sleep(1)
        t_restart2 = time.time()
        api.start()
        await asyncio.sleep(4)
        await load.finish()
        expected = load.hits_before()
        assert await obs.until_all(expected, timeout=60) is not None
        counts = exactly_once(await stored_alerts(nc.jetstream()), expected)
        deadline = time.time() + 60
        while time.time() < deadline and not all(expected <= w.seen.keys() for w in watches):
            await asyncio.sleep(0.2)
        for w in watches:
            await w.stop()
        subs = [subscriber_counts(syskit.read_json_lines(t.stdout_path), expected) for t in tails]
        figures = {**counts, "events": load.events, "subscribers": subs,
                   "api_down_after_kill_s": round(t_restart1 - t_kill, 3),
                   "api_down_after_term_s": round(t_restart2 - t_term, 3),
                   "resumed_after_kill_restart_s": [w.first_after(t_restart1) for w in watches],
                   "resumed_after_term_restart_s": [w.first_after(t_restart2) for w in watches]}
        record("api_restart_under_subscribers", figures)
        assert counts["lost"] == counts["duplicated"] == 0, figures
        for s in subs:
            assert s["lost"] == 0 and s["duplicated"] == 0, figures
        for t in tails:
            assert t.alive(), f"{t.name} gave up: {t.log()[-1500:]}"
    finally:
        await nc.close()
        syskit.stop_all(services + tails)
    assert_clean_logs(services + tails)


@faults
async def test_stalled_subscriber_loses_alone_and_every_drop_is_counted(broker, tmp_path, rules_file):
    """One gRPC subscriber (queue of 200) stops reading while alerts flow; another keeps reading.
    The stalled one's overflow is dropped oldest-first and counted (`dropped_before` on its next
    alert, drop reports of stage api); when it reads again, received + dropped = every alert. The
    other subscriber and the alerts stream lose nothing."""
    import grpc

    from tiercel.pb.falco import outputs_pb2, outputs_pb2_grpc

    ws = workers(tmp_path, broker.url, rules_file)
    sock = tmp_path / "api.sock"
    api = syskit.api(tmp_path, broker.url, sock)
    services = [*ws, api]
    syskit.start_all(services)
    nc = await faultkit.bus_conn(broker.url)
    tail = syskit.alerts_tail(tmp_path, sock, "fast-subscriber")
    reports: list[bus.DropReport] = []

    async def on_drop(msg) -> None:
        reports.append(bus.DropReport.decode(msg.data))

    await nc.subscribe(f"{bus.DROPS_SUBJECT}.api.>", cb=on_drop)
    # A slow client as the network makes it: HTTP/2 flow control with its initial 64 KiB window
    # (no BDP probing to grow it), so the API's writes wait and its queue for this client fills.
    ch = grpc.aio.insecure_channel(f"unix://{sock}", options=[("grpc.http2.bdp_probe", 0)])
    try:
        assert await syskit.wait_ready(broker.url, {"rules", "api"}) == {"rules", "api"}
        api_beats = await heartbeats(nc, "api")
        tail.start()
        await api_subscribers(api_beats, 1)

        async def requests():
            yield outputs_pb2.request(rules=[faultkit.RULE], queue_size=200)
            await asyncio.Event().wait()

        call = outputs_pb2_grpc.serviceStub(ch).sub(requests())
        await api_subscribers(api_beats, 2)
        watch = TailWatch(tail).start()
        obs = await Observer(nc).start()
        load = Load(nc, rate=20).start()
        await asyncio.sleep(8)  # the stalled subscriber reads nothing all along
        await load.finish()
        expected = load.hits_before()
        assert await obs.until_all(expected, timeout=60) is not None
        await asyncio.sleep(2)  # the hub has offered every alert to both queues
        received, dropped, last = 0, 0, 0
        t_read = time.time()
        while True:
            try:
                r = await asyncio.wait_for(call.read(), 5)
            except TimeoutError:
                break
            received += 1
            dropped += r.dropped_before
            last = max(last, r.seq)
            # Two workers publish side by side, so the newest alert can reach the API before an
            # older batch of the other worker: read until everything is accounted for (or 5 s of
            # silence), not until the newest alert.
            if received + dropped >= len(expected):
                break
        read_s = time.time() - t_read
        call.cancel()
        deadline = time.time() + 30
        while time.time() < deadline and not expected <= watch.seen.keys():
            await asyncio.sleep(0.2)
        await watch.stop()
        fast = subscriber_counts(syskit.read_json_lines(tail.stdout_path), expected)
        await asyncio.sleep(2.5)  # the API's drop report of the last second
        reported = sum(r.drops.get("queue_full", 0) for r in reports)
        counts = exactly_once(await stored_alerts(nc.jetstream()), expected)
        figures = {**counts, "alerts": len(expected), "stalled": {"queue_size": 200, "received": received,
                                                                  "dropped_before_sum": dropped,
                                                                  "drops_reported": reported,
                                                                  "drained_in_s": round(read_s, 3)},
                   "fast_subscriber": fast}
        record("stalled_subscriber", figures)
        assert last == max(expected), figures  # the newest alert is never the one dropped
        assert received + dropped == len(expected), figures  # nothing unaccounted
        assert dropped > 0 and reported == dropped, figures
        assert fast["lost"] == fast["duplicated"] == 0, figures
        assert counts["lost"] == counts["duplicated"] == 0, figures
    finally:
        await ch.close()
        await nc.close()
        syskit.stop_all([*services, tail])
    assert_clean_logs(services)


@fault_smoke
async def test_alerts_stream_disk_budget_full(broker, tmp_path, rules_file):
    """TIERCEL_ALERTS limited to 256 KiB (max_bytes, discard old) while alerts flow: the stream
    drops its oldest alerts to keep the newest, workers never fail a publish, live subscribers get
    everything; what the stream deleted is its own count (first_seq - 1), a resume after a deleted
    alert is refused with NOT_FOUND, and the limit survives a service restart."""
    import grpc

    from tiercel.pb.falco import outputs_pb2, outputs_pb2_grpc

    budget = 256 << 10
    ws = workers(tmp_path, broker.url, rules_file)
    sock = tmp_path / "api.sock"
    api = syskit.api(tmp_path, broker.url, sock)
    services = [*ws, api]
    syskit.start_all(services)
    nc = await faultkit.bus_conn(broker.url)
    js = nc.jetstream()
    tail = syskit.alerts_tail(tmp_path, sock, "subscriber")
    rules_drops: list[bus.DropReport] = []

    async def on_drop(msg) -> None:
        rules_drops.append(bus.DropReport.decode(msg.data))

    await nc.subscribe(f"{bus.DROPS_SUBJECT}.rules.>", cb=on_drop)
    try:
        assert await syskit.wait_ready(broker.url, {"rules", "api"}) == {"rules", "api"}
        info = await js.stream_info(bus.ALERTS_STREAM.name)
        info.config.max_bytes = budget
        await js.update_stream(info.config)
        api_beats = await heartbeats(nc, "api")
        tail.start()
        await api_subscribers(api_beats, 1)
        watch = TailWatch(tail).start()
        obs = await Observer(nc).start()
        load = Load(nc, rate=20).start()
        await asyncio.sleep(4)
        ws[1].stop()  # a restarted service declares the streams again: the budget must stay
        ws[1].start()
        await asyncio.sleep(4)
        await load.finish()
        expected = load.hits_before()
        assert await obs.until_all(expected, timeout=60) is not None
        deadline = time.time() + 30
        while time.time() < deadline and not expected <= watch.seen.keys():
            await asyncio.sleep(0.2)
        await watch.stop()
        live = subscriber_counts(syskit.read_json_lines(tail.stdout_path), expected)
        info = await js.stream_info(bus.ALERTS_STREAM.name)
        first_alert = min(expected)  # long deleted by the stream
        ch = grpc.aio.insecure_channel(f"unix://{sock}")
        try:
            call = outputs_pb2_grpc.serviceStub(ch).sub(
                _one(outputs_pb2.request(resume_after_id=f"fault-host:{first_alert}:{faultkit.rule_hash(faultkit.RULE)}")))
            try:
                await asyncio.wait_for(call.read(), 10)
                resume_code = "OK"
            except grpc.aio.AioRpcError as e:
                resume_code = e.code().name
            retained = [r async for r in outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(), timeout=30)]
        finally:
            await ch.close()
        failed = sum(r.drops.get("publish_error", 0) + r.drops.get("publish_failed", 0) for r in rules_drops)
        figures = {"alerts": len(expected), "budget_bytes": budget, "stream_bytes": info.state.bytes,
                   "stream_max_bytes_after_restart": info.config.max_bytes,
                   "retained": info.state.messages, "deleted_by_stream": info.state.first_seq - 1,
                   "get_returned": len(retained), "resume_after_deleted": resume_code,
                   "rules_publish_failures": failed, "live_subscriber": live}
        record("alerts_stream_budget_full", figures)
        assert live["lost"] == live["duplicated"] == 0, figures
        assert info.state.bytes <= budget and info.state.first_seq > 1, figures
        assert info.state.messages + info.state.first_seq - 1 == info.state.last_seq, figures  # all counted
        assert resume_code == "NOT_FOUND" and len(retained) == info.state.messages, figures
        assert failed == 0, figures
        assert info.config.max_bytes == budget, figures
    finally:
        await nc.close()
        syskit.stop_all([*services, tail])
    assert_clean_logs(services)


async def _one(req):
    yield req
    await asyncio.Event().wait()


@faults
async def test_three_node_cluster_loses_a_node_under_load(tmp_path, rules_file):
    """Three nats-servers clustered on loopback (cluster block, routes, server_name, JetStream on
    each), Tiercel's streams and KV buckets at `nats.replicas=3`, services given all three URLs.
    The node leading the events stream is SIGKILLed under load, a rules change is made while it is
    down, and it is restarted: nothing is lost or duplicated, and it catches up."""
    cl = faultkit.Cluster(tmp_path / "cluster").start()
    services: list[syskit.Service] = []
    nc = None
    try:
        await cl.wait_jetstream()
        url = cl.url
        ws = workers(tmp_path, url, rules_file, **{"nats.replicas": 3})
        sock = tmp_path / "api.sock"
        api = syskit.api(tmp_path, url, sock, {"nats.replicas": 3})
        services = [*ws, api]
        syskit.start_all(services)
        assert await syskit.wait_ready(cl.nodes[0].url, {"rules", "api"}, count=1, timeout=90) == {"rules", "api"}
        nc = await faultkit.bus_conn(url)
        js = nc.jetstream()
        replicas = {s.name: (await js.stream_info(s.name)).config.num_replicas for s in bus.STREAMS}
        for b in bus.KV_BUCKETS:
            replicas[f"KV_{b}"] = (await js.stream_info(f"KV_{b}")).config.num_replicas
        assert set(replicas.values()) == {3}, replicas
        api_beats = await heartbeats(nc, "api")
        tail = syskit.alerts_tail(tmp_path, sock, "subscriber")
        services.append(tail.start())
        await api_subscribers(api_beats, 1)
        watch = TailWatch(tail).start()
        obs = await Observer(nc).start()
        load = Load(nc, rate=20).start()
        await asyncio.sleep(3)
        leaders = {s.name: (await js.stream_info(s.name)).cluster.leader for s in bus.STREAMS}
        victim = leaders[bus.EVENTS_STREAM.name]
        t_kill = time.time()
        cl.node(victim).kill()
        new_leader, t_elected = None, None
        while time.time() - t_kill < 30:
            try:
                ld = (await js.stream_info(bus.EVENTS_STREAM.name)).cluster.leader
            except Exception:
                ld = None
            if ld and ld != victim:
                new_leader, t_elected = ld, time.time()
                break
            await asyncio.sleep(0.1)
        # The control plane works with a node down: a rules file is put (KV write, quorum 2 of 3).
        extra = "- list: fault_test_list\n  items: [a, b]\n"
        msg = await nc.request(bus.control_subject("rules", "put"),
                               bus.encode_request("put", name="extra.yaml", content=extra, wait_s=5), timeout=30)
        put = bus.decode_reply(msg.data)
        await asyncio.sleep(3)
        t_restart = time.time()
        cl.node(victim).restart()
        await asyncio.sleep(5)
        await load.finish()
        expected = load.hits_before()
        assert await obs.until_all(expected, timeout=90) is not None
        counts = exactly_once(await stored_alerts(js), expected)
        deadline = time.time() + 60
        while time.time() < deadline and not expected <= watch.seen.keys():
            await asyncio.sleep(0.2)
        await watch.stop()
        sub = subscriber_counts(syskit.read_json_lines(tail.stdout_path), expected)
        caught_up = None
        while time.time() - t_restart < 60:
            infos = [await js.stream_info(s.name) for s in bus.STREAMS]
            if all(r.current for i in infos for r in (i.cluster.replicas or [])) and \
                    all(len(i.cluster.replicas or []) == 2 for i in infos):
                caught_up = time.time()
                break
            await asyncio.sleep(0.2)
        figures = {**counts, "events": load.events, "replicas": replicas, "killed": victim,
                   "leaders_before": leaders, "events_leader_after": new_leader,
                   "leader_elected_after_s": round(t_elected - t_kill, 3) if t_elected else None,
                   "publish_outage_s": round(load.max_ack_gap(), 3), "publish_retries": load.errors,
                   "catch_up_s": round(obs.caught_up_after(load.hits_before(t_kill), t_kill), 3),
                   "recovery_s": faultkit.recovery_s(load, obs, t_kill),
                   "rules_put_while_down": {"ok": put.get("ok"), "revision": put.get("revision")},
                   "node_current_after_restart_s": round(caught_up - t_restart, 3) if caught_up else None,
                   "subscriber": sub}
        record("cluster_node_loss", figures)
        assert new_leader is not None, figures
        assert counts["lost"] == counts["duplicated"] == counts["unexpected"] == 0, figures
        assert sub["lost"] == sub["duplicated"] == 0, figures
        assert put.get("ok") is True, put
        assert caught_up is not None, figures
    finally:
        if nc is not None:
            await nc.close()
        syskit.stop_all(services)
        cl.stop()
    assert_clean_logs(services)
