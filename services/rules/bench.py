"""`tiercel bench rules`: the rules engine's hot path on one core.

Figures: events/s of `Ruleset.process` for the stable upstream ruleset (../shared, when present)
and Tiercel's default ruleset over a realistic syscall mix; compile time of each ruleset; the
process's peak RSS. Targets (issue 3): >= 300,000 events/s, compile < 1 s, RSS < 150 MB.

The mix is built from the event model directly (threads with parents, fd tables), weighted like a
busy Linux server: mostly opens/closes and reads/writes of files, some socket traffic, a few process
starts. Reads and writes are skipped by the engine without -A, as Falco does, and are counted as
processed events (they are part of the stream a worker receives).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from tiercel.common.benchmark import BenchContext, Result, max_rss_mb, register

UPSTREAM = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "rules" / "upstream" / "falco_rules.yaml"
TARGET_EPS = 300_000.0
TARGET_COMPILE_S = 1.0
TARGET_RSS_MB = 150.0


def _code(name: str, exit_: bool = True) -> int:
    from tiercel.common import eventtable as et

    enum = {"open": "PPME_SYSCALL_OPEN", "openat": "PPME_SYSCALL_OPENAT_2", "close": "PPME_SYSCALL_CLOSE",
            "read": "PPME_SYSCALL_READ", "write": "PPME_SYSCALL_WRITE", "execve": "PPME_SYSCALL_EXECVE_19",
            "connect": "PPME_SOCKET_CONNECT", "accept": "PPME_SOCKET_ACCEPT_5", "clone": "PPME_SYSCALL_CLONE_20",
            "socket": "PPME_SOCKET_SOCKET", "sendto": "PPME_SOCKET_SENDTO", "stat": "PPME_SYSCALL_STAT"}[name]
    return et.PPME[enum + ("_X" if exit_ else "_E")]


def event_mix(n: int, seed: int = 7) -> list[Any]:
    """n events of a realistic mix, with threads and fds resolved as the state engine would."""
    from tiercel.common.event import Event, FdInfo, ThreadInfo

    rnd = random.Random(seed)
    init = ThreadInfo(1, comm="systemd", exe="/sbin/init", exepath="/usr/lib/systemd/systemd", uid=0, user="root")
    procs = []
    for i, (comm, exe, uid, user) in enumerate([
        ("nginx", "/usr/sbin/nginx", 33, "www-data"), ("postgres", "/usr/lib/postgresql/bin/postgres", 106, "postgres"),
        ("python3", "/usr/bin/python3", 1000, "app"), ("bash", "/bin/bash", 1000, "app"),
        ("sshd", "/usr/sbin/sshd", 0, "root"), ("containerd", "/usr/bin/containerd", 0, "root"),
        ("java", "/usr/bin/java", 1001, "svc"), ("node", "/usr/bin/node", 1002, "web"),
    ]):
        t = ThreadInfo(100 + i, ptid=1, comm=comm, exe=exe, exepath=exe, args=["-x"], uid=uid, user=user,
                       cwd="/srv", parent=init, container_id="" if i % 3 else "3ad7c8e1f2b4")
        procs.append(t)
    files = ["/etc/ld.so.cache", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/srv/app/index.html", "/var/log/app.log",
             "/proc/self/stat", "/tmp/cache.db", "/etc/hosts", "/etc/resolv.conf", "/srv/data/table.dat"]
    mix = [("openat", 18), ("close", 18), ("read", 25), ("write", 15), ("stat", 8), ("connect", 3),
           ("accept", 3), ("sendto", 5), ("socket", 2), ("execve", 2), ("clone", 1)]
    names = [m for m, w in mix for _ in range(w)]
    out = []
    ts = 1_718_000_000_000_000_000
    for num in range(1, n + 1):
        name = rnd.choice(names)
        t = rnd.choice(procs)
        ts += rnd.randint(200, 5000)
        evt = Event(num, ts, t.tid, _code(name), [], cpu=num % 2)
        evt.thread = t
        if name in ("openat", "close", "read", "write", "stat"):
            path = rnd.choice(files)
            flags = 1 if name == "write" else 0
            evt.fd = FdInfo(3 + num % 20, "file", path, nameraw=path, flags=flags)
            evt.fdnum = evt.fd.num
            if name == "openat":
                evt.params = [evt.fd.num, -100, path, flags, 0, 0, 0]
        elif name in ("connect", "accept", "sendto", "socket"):
            evt.fd = FdInfo(10, "ipv4", "10.0.0.5:41234->10.0.0.9:5432", l4proto="tcp", cip="10.0.0.5",
                            cport=41234, sip="10.0.0.9", sport=5432, connected=True)
            evt.fdnum = 10
        out.append(evt)
    return out


def _compile(files: list[tuple[str, str]]) -> tuple[Any, float]:
    from tiercel.rules.engine import Engine

    t0 = time.perf_counter()
    outcome = Engine({"priority": "debug"}).load(files)
    dt = time.perf_counter() - t0
    if outcome.ruleset is None:
        errs = [str(e) for r in outcome.results for e in r.errors]
        raise RuntimeError(f"ruleset failed to load: {errs[:1]}")
    return outcome.ruleset, dt


@register("rules")
def bench(ctx: BenchContext) -> list[Result]:
    from tiercel.rules.cli import default_rules_path

    sets = [("default", [(default_rules_path(), Path(default_rules_path()).read_text())])]
    if UPSTREAM.exists():
        sets.insert(0, ("upstream falco_rules.yaml", [(str(UPSTREAM), UPSTREAM.read_text())]))
    n = ctx.scale(200_000, 5_000)
    events = event_mix(n)
    results: list[Result] = []
    for label, files in sets:
        compile_times = []
        rs = None
        for _ in range(max(1, ctx.runs)):
            rs, dt = _compile(files)
            compile_times.append(dt * 1000)
        results.append(Result(f"compile {label}", "ms", compile_times, higher_is_better=False,
                              target=TARGET_COMPILE_S * 1000, extra={"rules": len(rs.rules)}))
        process = rs.process

        def run(process=process) -> float:
            for e in events:
                process(e)
            return float(len(events))

        rates = ctx.measure(run)
        matched = sum(1 for e in events if process(e))
        results.append(Result(f"process {label}", "events/s", rates, target=TARGET_EPS,
                              extra={"events": n, "events_matched": matched, "pid": os.getpid()}))
    results.append(Result("peak RSS", "MB", [max_rss_mb()], higher_is_better=False, target=TARGET_RSS_MB))
    return results
