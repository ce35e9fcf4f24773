"""Ingest with the rules service, end to end on the real kernel and a real nats-server: the default
rules raise their alerts on live events (a shell spawned by a non-shell parent, a read of
/etc/shadow, an outbound connection by an unexpected program: a shell, as reverse shells do),
and the kernel's audit rules follow
the ruleset when a rules file is put and deleted through the control plane."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import subprocess
import sys
import time

import pytest

from tests.audit_helpers import require_audit
from tests.ruleskit import Bus, Workers
from tests.test_ingest_live import start_ingest, stop
from tiercel.common import bus
from tiercel.common.wire import decode_events
from tiercel.ingest.audit.client import AuditControl
from tiercel.ingest.audit.syscall_set import RULE_KEY
from tiercel.ingest.audit.syscalls import B64

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(240), pytest.mark.usefixtures("audit_lock")]

MKDIR_RULE = """
- rule: Directory made under tmp
  desc: test rule on an event type the default rules do not use
  condition: evt.type = mkdirat and evt.dir = <
  output: dir made (%proc.name)
  priority: NOTICE
"""


def audited() -> set[int]:
    """b64 syscall numbers of Tiercel's audit rules now in the kernel."""
    with AuditControl() as c:
        return {n for r in c.list_rules() if RULE_KEY in r.keys() and r.arch() == 0xC000003E for n in r.syscalls()}


async def until_alert(b: Bus, argv: list[str], found, what: str, attempts: int = 4, tap: list | None = None) -> dict:
    """Run `argv` until `found()` gives its alert. The kernel may drop audit records on a loaded
    machine (it counts them: kernel drop reports); a lost event is tried again, a missing alert
    after every attempt fails, with the kernel drops counted meanwhile and what the bus carried
    of the program's events in the message."""
    pids = []
    for i in range(attempts):
        p = await asyncio.to_thread(subprocess.Popen, argv, stdout=subprocess.DEVNULL)
        pids.append(p.pid)
        assert await asyncio.to_thread(p.wait) == 0
        try:
            got = await b.until(found, 10, what)
        except AssertionError:
            continue
        if i:
            print(f"{what}: {i + 1} attempts")
        return got
    lost = sum(r.n_drops for r in b.drops if r.stage in ("kernel", "ingest"))
    seen = [(e.tid, e.code, e.params, e.fd, e.thread and e.thread.comm) for e in (tap or []) if e.tid in pids]
    raise AssertionError(f"no {what} after {attempts} attempts ({lost} events dropped by the kernel/ingest "
                         f"meanwhile, {len(b.core_alerts)} alerts seen); pids {pids}; their events on the bus: "
                         f"{seen[-40:]}")


@contextlib.contextmanager
def remote_listener():
    """A TCP listener on the far end of a veth pair in a network namespace of our own: an address
    outside loopback that this host reaches. Removed afterwards."""
    tag = f"{os.getpid() % 10000}"
    ns, a, b = f"tc-e2e-{tag}", f"tce{tag}a", f"tce{tag}b"
    net = 10 + os.getpid() % 200
    local, remote = f"10.213.{net}.1", f"10.213.{net}.2"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)
    listener = None
    try:
        ip("netns", "add", ns)
        ip("link", "add", a, "type", "veth", "peer", "name", b)
        ip("link", "set", b, "netns", ns)
        ip("addr", "add", f"{local}/30", "dev", a)
        ip("link", "set", a, "up")
        ip("netns", "exec", ns, "ip", "addr", "add", f"{remote}/30", "dev", b)
        ip("netns", "exec", ns, "ip", "link", "set", b, "up")
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             f"import socket\ns = socket.socket()\ns.bind(('{remote}', 0))\ns.listen(8)\n"
             "print(s.getsockname()[1], flush=True)\nwhile True:\n    s.accept()[0].close()"],
            stdout=subprocess.PIPE, text=True)
        port = int(listener.stdout.readline())
        yield remote, port
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot make a network namespace with a veth pair here: {e}")
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "link", "del", a], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


async def test_default_rules_alert_on_live_events_and_audit_follows_the_ruleset(nats_broker, tmp_path):
    require_audit()
    if not pathlib.Path("/usr/sbin/ip").exists() and not pathlib.Path("/sbin/ip").exists():
        pytest.skip("needs iproute2 (ip netns)")
    workers = Workers(nats_broker.url, tmp_path, {"metrics.enabled": "false", "state_dir": tmp_path / "rules"})
    async with Bus(nats_broker.url) as b:
        workers.start(0)
        ingest = None
        try:
            await b.ready(1, timeout=120)
            tap: list = []

            async def on_batch(m) -> None:
                tap.extend(decode_events(bus.EventBatch.decode(m.data))[0])
            await b.nc.subscribe(f"{bus.EVENTS_SUBJECT}.>", cb=on_batch)
            ingest = await asyncio.to_thread(start_ingest, nats_broker.url, tmp_path / "ingest")
            # ingest audits what the committed (default) ruleset needs
            # (before it has read the store it audits every translated syscall but the I/O ones)
            await b.until(lambda: B64["ptrace"] in audited() and B64["mkdirat"] not in audited(), 30,
                          "the default ruleset's syscalls in the audit rules")
            assert B64["read"] not in audited()
            me = pathlib.Path("/proc/self/comm").read_text().strip()
            with remote_listener() as (addr, port):

                def alert(rule: str, **fields: object) -> dict | None:
                    for a in b.core_alerts:
                        if a["rule"] == rule and all(a["output_fields"].get(k) == v for k, v in fields.items()):
                            return a
                    return None

                def connected() -> dict | None:
                    return next((a for a in b.core_alerts if a["rule"] == "Outbound connection from a shell or network tool"
                                 and str(a["output_fields"].get("fd.name", "")).endswith(f"->{addr}:{port}")), None)

                shell = await until_alert(b, ["sh", "-c", "exit 0"], lambda: alert(
                    "Shell spawned by a non-shell parent", **{"proc.name": "sh", "proc.pname": me}), "the shell alert")
                read = await until_alert(b, ["cat", "/etc/shadow"], lambda: alert(
                    "Sensitive file read by untrusted program",
                    **{"fd.name": "/etc/shadow", "proc.name": "cat", "proc.pname": me}), "the /etc/shadow alert")
                conn = await until_alert(b, ["bash", "-c", f"echo > /dev/tcp/{addr}/{port}"], connected,
                                         "the outbound connection alert", tap=tap)
            assert shell["priority"] == "Notice" and read["priority"] == "Warning"
            assert conn["output_fields"]["fd.l4proto"] == "tcp" and conn["output_fields"]["user.name"] == "root"
            assert conn["output_fields"]["proc.name"] == "bash" and conn["output_fields"]["proc.pname"] == me
            assert read["output_fields"]["user.name"] == "root" and read["hostname"]

            # a rules put through the control plane (answered by the worker): the audit rules follow
            r = await b.request("rules", "put", name="extra.yaml", content=MKDIR_RULE)
            assert r["ok"], r
            t0 = time.monotonic()
            await b.until(lambda: B64["mkdirat"] in audited(), 30, "mkdirat in the audit rules after the put")
            followed_s = time.monotonic() - t0
            r = await b.request("rules", "delete", name="extra.yaml")
            assert r["ok"], r
            await b.until(lambda: B64["mkdirat"] not in audited(), 30, "mkdirat gone after the delete")
            assert B64["ptrace"] in audited()
            print(f"audit rules followed the put in {followed_s:.2f} s")
        finally:
            if ingest is not None:
                assert await asyncio.to_thread(stop, ingest) == 0
            workers.stop()
