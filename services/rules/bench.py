"""`tiercel bench rules`: the rules engine's hot path on one core.

Figures: events/s of `Ruleset.process` for the stable upstream ruleset (../shared, when present)
and Tiercel's default ruleset over a realistic syscall mix; compile time of each ruleset; the
process's peak RSS. Targets (issue 3): >= 300,000 events/s, compile < 1 s, RSS < 150 MB.

The mix is generated as exit events with full parameters and run through the real state engine
(threads with parents, fd tables, users, a container), weighted like a busy Linux server: mostly
opens/closes and reads/writes of files, some socket traffic, a few process starts, and now and then
a web server starting a shell that reads /etc/shadow (so the match -> alert path runs too). Reads
and writes are skipped by the engine without -A, as Falco does, and are counted as processed
events (they are part of the stream a worker receives).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from tiercel.common.benchmark import BenchContext, Result, current_rss_mb, max_rss_mb, register

UPSTREAM = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "rules" / "upstream" / "falco_rules.yaml"
TARGET_EPS = 300_000.0
TARGET_COMPILE_S = 1.0
TARGET_RSS_MB = 150.0


CID = "3ad7c8e1f2b4"
SERVICES = [  # (comm, exepath, uid, in a container)
    ("nginx", "/usr/sbin/nginx", 33, False), ("postgres", "/usr/lib/postgresql/bin/postgres", 106, False),
    ("python3", "/usr/bin/python3", 1000, True), ("bash", "/usr/bin/bash", 1000, False),
    ("sshd", "/usr/sbin/sshd", 0, False), ("containerd", "/usr/bin/containerd", 0, False),
    ("java", "/usr/bin/java", 1001, True), ("node", "/usr/bin/node", 1002, True),
]
FILES = ["/etc/ld.so.cache", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/srv/app/index.html", "/var/log/app.log",
         "/proc/self/stat", "/tmp/cache.db", "/etc/hosts", "/etc/resolv.conf", "/srv/data/table.dat",
         "/etc/passwd", "/usr/share/zoneinfo/UTC"]
PROGRAMS = [("ls", "/usr/bin/ls"), ("cat", "/usr/bin/cat"), ("grep", "/usr/bin/grep"), ("date", "/usr/bin/date"),
            ("python3", "/usr/bin/python3"), ("git", "/usr/bin/git"), ("curl", "/usr/bin/curl")]
# (what, weight): a busy server's syscalls, as a worker receives them (enter events dropped)
MIX = [("openat", 18), ("close", 18), ("read", 25), ("write", 15), ("stat", 8), ("connect", 3), ("accept", 3),
       ("sendto", 5), ("socket", 2), ("execve", 2), ("suspicious", 1)]


class _Host:
    """Generates exit events with full parameters and runs them through the real state engine, so
    threads, fd tables, users and containers are what a worker would see."""

    def __init__(self, seed: int):
        from tiercel.common import eventtable as et
        from tiercel.common.event import ThreadInfo
        from tiercel.ingest.scap import blocks as B
        from tiercel.ingest.state import StateEngine

        self.et = et
        self.rnd = random.Random(seed)
        self.s = StateEngine()
        self.events: list[Any] = []
        self.ts = 1_718_000_000_000_000_000
        self.next_tid = 5000
        self.s.feed(B.UserList([B.User(0, 0, "root", "/root", "/bin/bash"), B.User(33, 33, "www-data", "/var/www", ""),
                                B.User(106, 106, "postgres", "/var/lib/postgresql", ""),
                                B.User(1000, 1000, "app", "/home/app", "/bin/bash")],
                               [B.Group(0, "root"), B.Group(33, "www-data"), B.Group(1000, "app")]))
        procs = [ThreadInfo(1, 1, 0, comm="systemd", exe="/sbin/init", exepath="/usr/lib/systemd/systemd", cwd="/",
                            uid=0)]
        for i, (comm, exe, uid, _c) in enumerate(SERVICES):
            procs.append(ThreadInfo(100 + i, 100 + i, 1, comm=comm, exe=exe, exepath=exe, cwd="/srv/", uid=uid,
                                    gid=uid))
        self.s.feed(B.ProcessList(procs))
        self.tids = [100 + i for i in range(len(SERVICES))]
        self.fds: dict[int, list[int]] = {t: [] for t in self.tids}
        for i, (comm, exe, _uid, container) in enumerate(SERVICES):  # re-exec in their cgroups
            self.emit("PPME_SYSCALL_EXECVE_19_X", 100 + i, res=0, exe=exe, args=b"--serve\0", tid=100 + i,
                      pid=100 + i, ptid=1, cwd="/srv/", comm=comm, cgroups=self._cgroups(container),
                      trusted_exepath=exe, uid=SERVICES[i][2], gid=SERVICES[i][2])
        self.events.clear()

    @staticmethod
    def _cgroups(container: bool) -> bytes:
        return f"cpu=/docker/{CID}{'0' * 52}\0".encode() if container else b"cpu=/system.slice\0"

    def emit(self, enum: str, thread: int, /, **kw) -> Any:
        from tiercel.common.event import Event

        code = self.et.PPME[enum]
        info = self.et.info(code)
        params = [kw.pop(p.name, None) for p in info.params]
        while params and params[-1] is None:
            params.pop()
        self.ts += self.rnd.randint(200, 5000)
        e = Event(len(self.events) + 1, self.ts, thread, code, params, cpu=thread % 2)
        self.s.process(e)
        self.events.append(e)
        return e

    def step(self, what: str) -> None:
        r, tid = self.rnd, self.rnd.choice(self.tids)
        fds = self.fds[tid]
        if what == "openat" or (what in ("read", "write", "close") and not fds):
            fd = 3 + len(fds)
            path = r.choice(FILES)
            flags = 2 | 8 if path.startswith("/var/log") else 1  # O_WRONLY|O_APPEND, O_RDONLY
            self.emit("PPME_SYSCALL_OPENAT_2_X", tid, fd=fd, dirfd=-100, name=path, flags=flags, mode=0, dev=0,
                      ino=r.randint(1, 1 << 20))
            fds.append(fd)
        elif what == "close":
            self.emit("PPME_SYSCALL_CLOSE_X", tid, res=0, fd=fds.pop())
        elif what in ("read", "write"):
            enum = "PPME_SYSCALL_READ_X" if what == "read" else "PPME_SYSCALL_WRITE_X"
            self.emit(enum, tid, res=512, data=b"x" * 32, fd=r.choice(fds), size=512)
        elif what == "stat":
            self.emit("PPME_SYSCALL_STAT_X", tid, res=0, path=r.choice(FILES))
        elif what in ("connect", "socket", "sendto", "accept"):
            fd = 40 + r.randint(0, 9)
            self.emit("PPME_SOCKET_SOCKET_X", tid, fd=fd, domain=2, type=1, proto=0)
            if what == "connect":
                self.emit("PPME_SOCKET_CONNECT_X", tid, res=0, tuple=(2, "10.0.0.5", r.randint(30000, 60000),
                                                                      "10.0.0.9", 5432), fd=fd)
            elif what == "accept":
                self.emit("PPME_SOCKET_ACCEPT_5_X", tid, fd=fd + 10, tuple=(2, "10.0.0.7", r.randint(30000, 60000),
                                                                            "10.0.0.5", 443))
            elif what == "sendto":
                self.emit("PPME_SOCKET_SENDTO_X", tid, res=64, data=b"q" * 16, fd=fd, size=64,
                          tuple=(2, "10.0.0.5", 5353, "10.0.0.2", 53))
        elif what in ("execve", "suspicious"):
            parent = tid
            comm, exe = r.choice(PROGRAMS)
            if what == "suspicious":  # a shell started by the web server, then a credentials read
                parent, comm, exe = 100, "sh", "/bin/sh"
            p = self.s.threads[parent]
            child = self.next_tid
            self.next_tid += 1
            cg = self._cgroups(bool(p.container_id))
            self.emit("PPME_SYSCALL_CLONE_20_X", child, res=0, exe=p.exe, args=b"", tid=child, pid=child,
                      ptid=parent, cwd=p.cwd, comm=p.comm, cgroups=cg, flags=0, uid=p.uid, gid=p.gid, vtid=child,
                      vpid=child)
            self.emit("PPME_SYSCALL_EXECVE_19_X", child, res=0, exe=exe, args=b"-c\0id\0", tid=child, pid=child,
                      ptid=parent, cwd=p.cwd, comm=comm, cgroups=cg, trusted_exepath=exe, uid=p.uid, gid=p.gid)
            if what == "suspicious":
                self.emit("PPME_SYSCALL_OPENAT_2_X", child, fd=3, dirfd=-100, name="/etc/shadow", flags=1, mode=0,
                          dev=0, ino=7)
            self.emit("PPME_PROCEXIT_1_E", child, status=0, ret=0, sig=0, core=0)


def event_mix(n: int, seed: int = 7) -> list[Any]:
    """About n events of a busy server (file I/O, sockets, process starts, and one suspicious
    process start in ~100 steps), generated with full parameters and run through the state engine."""
    host = _Host(seed)
    names = [m for m, w in MIX for _ in range(w)]
    while len(host.events) < n:
        host.step(host.rnd.choice(names))
    return host.events[:n]


def _compile(files: list[tuple[str, str]]) -> tuple[Any, float]:
    from tiercel.rules.engine import Engine

    t0 = time.perf_counter()
    outcome = Engine({"priority": "debug"}).load(files)
    if outcome.ruleset is None:
        errs = [str(e) for r in outcome.results for e in r.errors]
        raise RuntimeError(f"ruleset failed to load: {errs[:1]}")
    outcome.ruleset.prepare()  # the generated evaluators are part of compiling
    return outcome.ruleset, time.perf_counter() - t0


@register("rules")
def bench(ctx: BenchContext) -> list[Result]:
    from tiercel.rules.cli import default_rules_path

    sets = [("default", [(default_rules_path(), Path(default_rules_path()).read_text())])]
    if UPSTREAM.exists():
        sets.insert(0, ("upstream falco_rules.yaml", [(str(UPSTREAM), UPSTREAM.read_text())]))
    # A pool of distinct events, evaluated `passes` times per run (the pool stays small in memory,
    # so the RSS figure is the engine's, not the benchmark's).
    n, passes = ctx.scale(20_000, 2_000), ctx.scale(10, 1)
    results: list[Result] = []
    rulesets = []
    for label, files in sets:
        compile_times = []
        rs = None
        for _ in range(max(1, ctx.runs)):
            rs, dt = _compile(files)
            compile_times.append(dt * 1000)
        results.append(Result(f"compile {label}", "ms", compile_times, higher_is_better=False,
                              target=TARGET_COMPILE_S * 1000, extra={"rules": len(rs.rules)}))
        rulesets.append((label, rs))
    loaded_rss = current_rss_mb()  # both rulesets compiled, their evaluators built
    events = event_mix(n)
    for label, rs in rulesets:
        process = rs.process

        def run(process=process) -> float:
            for _ in range(passes):
                for e in events:
                    process(e)
            return float(len(events) * passes)

        rates = ctx.measure(run)
        matched = sum(1 for e in events if process(e))
        results.append(Result(f"process {label}", "events/s", rates, target=TARGET_EPS,
                              extra={"events": n * passes, "distinct_events": n, "events_matched": matched,
                                     "pid": os.getpid()}))
        # The same, on only the events some rule is indexed under (the rest cost one dict miss).
        table = rs.evaluator("syscall").table
        hot = [e for e in events if e.code in table]

        def run_hot(process=process, hot=hot) -> float:
            for _ in range(passes):
                for e in hot:
                    process(e)
            return float(len(hot) * passes)

        results.append(Result(f"process {label}, rule-bearing events only", "events/s", ctx.measure(run_hot),
                              extra={"share_of_mix": round(len(hot) / len(events), 3)}))
    results.append(Result("RSS with both rulesets loaded", "MB", [loaded_rss], higher_is_better=False,
                          target=TARGET_RSS_MB))
    results.append(Result("peak RSS", "MB", [max_rss_mb()], higher_is_better=False, target=TARGET_RSS_MB))
    return results
