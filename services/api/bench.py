"""`tiercel bench api`: alerts per second from NATS through `tiercel api` to gRPC subscribers.

Everything runs as it does in production, each in its own process: an embedded nats-server, the
API (`tiercel api`, default unix-socket listener with its peer-credential relay), the subscribers
(Python gRPC clients), and this process publishing alerts straight onto NATS (no rules needed).

Figures:
- one subscriber, `sub` (Falco's wire form, one alert per gRPC message) and `sub_batch` (every
  queued alert in one message): a burst of N alerts, rate = N / (last alert received - first
  publish); the subscriber's queue holds the burst, so nothing is dropped;
- 100 subscribers at 1,000 alerts/s each (`sub_batch`, and `sub` for comparison): alerts paced
  at 1,000/s for a few seconds; received, dropped (the subscribers' `dropped_before`) and the
  delivered rate summed over subscribers;
- the API process's CPU time per alert delivered (less sensitive to other load than rates), and
  its peak resident memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request
from typing import Any

from tiercel.common import bus
from tiercel.common.benchmark import BenchContext, Result, register, status_mb

CLIENT = r'''
import json, sys, threading, time
import grpc
from tiercel.pb.falco import outputs_pb2, outputs_pb2_grpc
target, mode, streams, expect, qsize, idle = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
batched = mode == "sub_batch"
results = []

def one():
    # The sync client: Python's fastest way to read a stream (no per-message task or timer).
    ch = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 256 << 20)])
    stub = outputs_pb2_grpc.serviceStub(ch)
    done = threading.Event()
    def reqs():
        yield outputs_pb2.request(queue_size=qsize)
        done.wait()
    call = (stub.sub_batch if batched else stub.sub)(reqs())
    st = {"n": 0, "dropped": 0, "first": None, "last": None, "msgs": 0}
    def watchdog():
        while not done.wait(0.5):
            last = st["last"]
            if last is not None and time.time() - last > idle:
                call.cancel()
                return
    threading.Thread(target=watchdog, daemon=True).start()
    try:
        for m in call:
            now = time.time()
            if st["first"] is None:
                st["first"] = now
            items = m.alerts if batched else (m,)
            for r in items:
                st["dropped"] += r.dropped_before
            st["n"] += len(items)
            st["msgs"] += 1
            st["last"] = now
            if st["n"] + st["dropped"] >= expect:
                break
    except grpc.RpcError:
        pass
    done.set()
    call.cancel()
    ch.close()
    results.append(st)

threads = [threading.Thread(target=one) for _ in range(streams)]
for th in threads:
    th.start()
for th in threads:
    th.join()
print(json.dumps(results), flush=True)
'''


def _alert(i: int, host: str = "bench-host") -> tuple[str, bytes, dict[str, str]]:
    a = {"hostname": host, "id": f"{host}:{i}:5e1f0c2e",
         "output": f"13:53:31.726060287: Warning Sensitive file opened for reading by non-trusted program "
                   f"(file=/etc/shadow gparent=systemd ggparent=<NA> gggparent=<NA> evt_type=openat user=root "
                   f"user_uid=0 user_loginuid=-1 process=cat proc_exepath=/usr/bin/cat parent=bash n={i})",
         "output_fields": {"evt.time": 1718000000123456789 + i, "evt.type": "openat", "fd.name": "/etc/shadow",
                           "proc.name": "cat", "proc.exepath": "/usr/bin/cat", "proc.pname": "bash",
                           "user.name": "root", "user.uid": 0, "user.loginuid": -1,
                           "container.id": "host"},
         "priority": "Warning", "rule": "Read sensitive file untrusted", "seq": i, "source": "syscall",
         "tags": ["filesystem", "mitre_credential_access", "T1555"],
         "time": f"2024-06-10T06:13:20.{i % 1_000_000_000:09d}Z"}
    body, headers = bus.encode_alert(a)
    return bus.alert_subject(a["priority"], a["source"], a["rule"]), body, headers


class Rig:
    """nats-server + `tiercel api` for one benchmark run, cleaned up on exit."""

    def __init__(self, workdir: str):
        self.dir = pathlib.Path(workdir) / "api-bench"
        self.dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Rig:
        from tiercel.common.broker import EmbeddedBroker, free_port

        self.broker = EmbeddedBroker(store_dir=self.dir / "js").start()
        self.sock = self.dir / "api.sock"
        self.metrics_port = free_port()
        self.api = subprocess.Popen(
            [sys.executable, "-m", "tiercel", "api", "--nats-url", self.broker.url, "--bind", f"unix://{self.sock}",
             "-o", f"metrics.api_port={self.metrics_port}", "-o", "metrics.address=127.0.0.1",
             "-o", f"state_dir={self.dir / 'state'}", "-o", "log_level=warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.metric("tiercel_api_subscribers")
                if self.sock.exists():
                    return self
            except OSError:
                pass
            if self.api.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("tiercel api did not start: " + (self.api.stderr.read() or "")[-1000:])
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.api.poll() is None:
            self.api.terminate()
            try:
                self.api.wait(20)
            except subprocess.TimeoutExpired:
                self.api.kill()
        self.broker.stop()

    def metric(self, name: str) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the API process has used so far."""
        f = pathlib.Path(f"/proc/{self.api.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory of the API process, MB."""
        return status_mb("VmRSS", self.api.pid) or 0.0, status_mb("VmHWM", self.api.pid) or 0.0

    def clients(self, mode: str, procs: int, streams: int, expect: int, qsize: int,
                idle: float) -> list[subprocess.Popen]:
        """`streams` subscriber streams spread over `procs` client processes."""
        env = dict(os.environ)
        counts = [streams // procs + (1 if i < streams % procs else 0) for i in range(procs)]
        return [subprocess.Popen([sys.executable, "-c", CLIENT, f"unix://{self.sock}", mode, str(k),
                                  str(expect), str(qsize), str(idle)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                for k in counts if k]

    def wait_subscribers(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.metric("tiercel_api_subscribers") < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.metric('tiercel_api_subscribers'):.0f} of {n} subscribers connected")
            time.sleep(0.05)

    def wait_gone(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.metric("tiercel_api_subscribers") > 0 and time.monotonic() < deadline:
            time.sleep(0.05)


async def _publish(url: str, messages: list[tuple[str, bytes, dict[str, str]]], rate: float = 0.0) -> float:
    """Publish; paced at `rate` alerts/s when given. Returns the wall-clock time of the first publish."""
    import nats

    nc = await nats.connect(url, pending_size=256 << 20)
    t0 = time.time()
    start = time.monotonic()
    if rate <= 0:
        for subject, body, headers in messages:
            await nc.publish(subject, body, headers=headers)
    else:
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        for i in range(0, len(messages), per_tick):
            for subject, body, headers in messages[i:i + per_tick]:
                await nc.publish(subject, body, headers=headers)
            due = start + (i + per_tick) / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
    await nc.flush(timeout=60)
    await nc.close()
    return t0


def _collect(procs: list[subprocess.Popen], timeout: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"bench client failed: {stderr[-1500:]}")
        out.extend(json.loads(stdout.strip().splitlines()[-1]))
    return out


# The fleet "keeps up" when alerts arrive at 95% or more of the offered rate: the rate is counted
# from the first publish to the last delivery, so even a fleet that keeps up exactly shows the last
# alert's latency (50 ms on a 5 s run is 99%); one that falls behind shows far less.
KEEPS_UP = 0.95


def _burst(rig: Rig, mode: str, n: int, seq0: int) -> tuple[float, dict[str, Any]]:
    procs = rig.clients(mode, 1, 1, n, n, idle=10.0)
    rig.wait_subscribers(1)
    msgs = [_alert(seq0 + i) for i in range(n)]
    c0 = rig.cpu_s()
    t0 = asyncio.run(_publish(rig.broker.url, msgs))
    (res,) = _collect(procs, 300)
    res["cpu_us_per_alert"] = (rig.cpu_s() - c0) / n * 1e6
    rig.wait_gone()
    if res["n"] != n or res["last"] is None:
        raise RuntimeError(f"{mode}: received {res['n']} of {n} alerts ({res['dropped']} dropped)")
    return n / (res["last"] - t0), res


def _fleet(rig: Rig, mode: str, subs: int, rate: float, seconds: float, seq0: int,
           procs: int = 4) -> dict[str, Any]:
    n = int(rate * seconds)
    clients = rig.clients(mode, procs, subs, n, 0, idle=5.0)
    rig.wait_subscribers(subs)
    msgs = [_alert(seq0 + i) for i in range(n)]
    c0 = rig.cpu_s()
    t0 = asyncio.run(_publish(rig.broker.url, msgs, rate=rate))
    res = _collect(clients, seconds + 300)
    cpu = rig.cpu_s() - c0
    rig.wait_gone()
    received = sum(r["n"] for r in res)
    last = max((r["last"] or t0) for r in res)
    return {"subscribers": len(res), "published": n, "received": received,
            "dropped": sum(r["dropped"] for r in res), "missing": n * len(res) - received,
            "delivered_per_s": received / max(last - t0, 1e-9), "messages": sum(r["msgs"] for r in res),
            "cpu_us_per_delivery": cpu / max(received, 1) * 1e6}


@register("api")
def bench(ctx: BenchContext) -> list[Result]:
    n = ctx.scale(50_000, 2_000)
    subs = ctx.scale(100, 10)
    rate = float(ctx.scale(1_000, 200))
    seconds = float(ctx.scale(5, 1))
    results: list[Result] = []
    with Rig(ctx.workdir) as rig:
        seq = 1
        for mode, target in (("sub", None), ("sub_batch", 20_000.0)):
            rates, msgs, cpus = [], [], []
            for i in range(ctx.warmup + ctx.runs):
                r, res = _burst(rig, mode, n, seq)
                seq += n
                if i >= ctx.warmup:
                    rates.append(r)
                    msgs.append(res["msgs"])
                    cpus.append(res["cpu_us_per_alert"])
                ctx.log(f"bench api: 1 subscriber {mode}: {r:,.0f} alerts/s ({res['msgs']} messages, "
                        f"API CPU {res['cpu_us_per_alert']:.0f} us/alert)")
            results.append(Result(f"1 subscriber, {mode}: alerts/s", "alerts/s", rates, target=target,
                                  extra={"alerts": n, "grpc_messages": msgs}))
            results.append(Result(f"1 subscriber, {mode}: API CPU per alert", "us", cpus, higher_is_better=False))
        for mode in ("sub_batch", "sub"):
            runs = []
            for i in range(ctx.warmup + ctx.runs):
                f = _fleet(rig, mode, subs, rate, seconds, seq)
                seq += f["published"]
                ctx.log(f"bench api: {subs} x {mode} at {rate:g}/s: received {f['received']:,} of "
                        f"{f['published'] * f['subscribers']:,}, dropped {f['dropped']:,}, "
                        f"{f['delivered_per_s']:,.0f} alerts/s delivered")
                if i >= ctx.warmup:
                    runs.append(f)
            results.append(Result(f"{subs} subscribers x {rate:g}/s, {mode}: delivered/s", "alerts/s",
                                  [f["delivered_per_s"] for f in runs], target=KEEPS_UP * subs * rate,
                                  extra={"runs": runs, "offered_per_s": subs * rate}))
            results.append(Result(f"{subs} subscribers x {rate:g}/s, {mode}: lost", "alerts",
                                  [float(f["missing"]) for f in runs], higher_is_better=False, target=0.0))
            results.append(Result(f"{subs} subscribers x {rate:g}/s, {mode}: API CPU per delivery", "us",
                                  [f["cpu_us_per_delivery"] for f in runs], higher_is_better=False))
        cur, peak = rig.rss_mb()
        results.append(Result("api process memory, peak RSS", "MB", [peak], higher_is_better=False,
                              extra={"rss_now_mb": cur}))
    return results
