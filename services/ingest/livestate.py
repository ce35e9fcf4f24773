"""The state engine on a live host: seeded from /proc, fed by a live driver, kept true to what the
kernel states with each event.

Replayed captures carry the process list and every state-changing syscall; a live driver does
not: processes start before us, audit rules leave out syscalls (setuid when no rule asks,
read/write), the kernel drops records under load. So each live event comes with the identity
its source states (audit's SYSCALL record: ppid, uids, gids, loginuid, tty, comm, exe, and the
CWD record; the proc connector's /proc read), and before the event goes through the engine:

- a process the engine does not know is read from /proc (cmdline, env, cwd, cgroups, fds; what
  libsinsp's proc scan gathers), or built from the identity when it is already gone;
- a known process whose stated identity changed since we last compared gets the new values
  (compared as raw bytes: the common case, no change, costs one comparison);
- its parent, when unknown, is read from /proc too, so `proc.pname`/`proc.aname[N]` resolve.

Threads: audit names the process (thread group), never the thread, so live audit events carry
tid = pid and the thread of every event is its process's main thread. A clone that makes a
thread (CLONE_THREAD; for clone3, whose flags audit does not log, told by /proc/<pid>/task) adds
no thread entry, and only exit_group ends a process. Fields that differ per thread
(`thread.tid`, per-thread cwd after unshare(CLONE_FS)) therefore show the process's values.
Threads whose process has gone without an exit we saw are swept out every `sweep_s` seconds.
"""

from __future__ import annotations

import os
import posixpath
import time
from typing import Any

from tiercel.common import eventtable as et
from tiercel.common.event import Event, ThreadInfo
from tiercel.ingest.audit.records import parse_fields, untrusted
from tiercel.ingest.audit.translate import thread_hint, tty_number
from tiercel.ingest.state import CL_CLONE_THREAD, StateEngine, read_proc_thread

_CLONE_CODES = frozenset(c for n in ("clone", "clone3", "fork", "vfork") for c in et.codes(n))
_CLONE3_CODES = frozenset(et.codes("clone3"))
_CWD = 1307  # AUDIT_CWD
_UNKNOWN = 0xFFFFFFFF


class LiveState:
    """`process(ev, identity)`: enrich one live event (thread, fd, user, container) in order."""

    def __init__(self, engine: StateEngine | None = None, proc: str = "/proc", sweep_s: float = 10.0):
        self.engine = engine if engine is not None else StateEngine()
        self._engine_process = self.engine.process  # bound once: called for every event
        self.proc = proc
        self.sweep_s = sweep_s
        self._next_sweep = time.monotonic() + sweep_s
        # pid -> (thread object, identity span, cwd token) as last compared
        self._seen: dict[int, tuple[ThreadInfo, bytes, bytes | None]] = {}
        self.stats = {"proc_reads": 0, "from_identity": 0, "identity_changes": 0, "thread_clones": 0,
                      "swept": 0}

    def seed(self) -> int:
        """Users, groups and every thread of /proc; returns the thread count."""
        return self.engine.seed_from_proc(self.proc)

    @property
    def threads(self) -> dict[int, ThreadInfo]:
        return self.engine.threads

    # --- per event --------------------------------------------------------------------------
    def process(self, ev: Event, identity: Any = None) -> Event:
        if type(identity) is tuple:  # audit: (span, AuditEvent)
            pid = ev.tid
            t = self.engine.threads.get(pid)
            span, ae = identity
            if t is None:
                self._adopt_audit(pid, span, ae.body(_CWD), ae)
            else:
                seen = self._seen.get(pid)
                if seen is None or seen[0] is not t or seen[1] != span:
                    self._merge_audit(t, span, ae.body(_CWD), seen)  # adds its parent at most: t stays
                else:
                    cwd = ae.changed(_CWD, seen[2])
                    if cwd is not None:
                        self._merge_audit(t, span, cwd, seen)
                if ev.code not in _CLONE_CODES:
                    return self._engine_process(ev, t)
        elif identity is not None and isinstance(identity, ThreadInfo):  # proc connector: read from /proc
            self._merge_hint(ev.tid, identity)
        if ev.code in _CLONE_CODES:
            return self._clone(ev)
        return self._engine_process(ev)

    def _clone(self, ev: Event) -> Event:
        """A clone in the parent: a thread (no entry: its events carry the process's pid), or a
        process whose stale entry (pid reuse after an exit we missed) must not be kept."""
        p = ev.params
        child = p[0] if p and type(p[0]) is int else -1
        threads = self.engine.threads
        if child > 0:
            flags = p[15] if len(p) > 15 and type(p[15]) is int else 0
            if ev.code in _CLONE3_CODES and not flags & CL_CLONE_THREAD \
                    and os.path.exists(f"{self.proc}/{ev.tid}/task/{child}"):
                flags |= CL_CLONE_THREAD  # clone3's flags are in memory audit does not log
                p[15] = flags
            if flags & CL_CLONE_THREAD:
                self.stats["thread_clones"] += 1
                had = child in threads
                self.engine.process(ev)
                if not had:
                    threads.pop(child, None)
                return ev
            old = threads.get(child)
            if old is not None and old.ptid != ev.tid:
                self.engine.forget_thread(child)
                self._seen.pop(child, None)
        return self.engine.process(ev)

    # --- identity ---------------------------------------------------------------------------
    def _adopt_audit(self, pid: int, span: bytes, cwd: bytes | None, ae: Any) -> ThreadInfo:
        """A process we did not know: /proc, else what the records say."""
        t = self._from_proc(pid)
        sc = parse_fields(span)
        if t is None:
            t = thread_hint(ae, sc)
            title = ae.proctitle
            if title:
                t.exe, t.args = title[0], title[1:]
            else:
                t.exe = t.comm
            self.stats["from_identity"] += 1
        else:
            _apply_identity(t, sc)
            if cwd is not None:
                c = untrusted(cwd[4:].split(b" ", 1)[0]) if cwd.startswith(b"cwd=") else None
                if c:
                    t.cwd = c
        t = self._add(t)
        self._seen[pid] = (t, span, cwd)
        return t

    def _merge_audit(self, t: ThreadInfo, span: bytes, cwd: bytes | None, seen: Any) -> None:
        if seen is None or seen[0] is not t or seen[1] != span:
            self.stats["identity_changes"] += 1
            old_ptid = t.ptid
            _apply_identity(t, parse_fields(span))
            if t.ptid != old_ptid or (t.parent is None and t.ptid > 0):
                t.parent = self._thread_or_proc(t.ptid)
            self.engine.resolve_user(t)
        if cwd is not None and (seen is None or seen[2] != cwd):
            c = untrusted(cwd[4:].split(b" ", 1)[0]) if cwd.startswith(b"cwd=") else None
            if c:
                t.cwd = c if c.endswith("/") else c + "/"
        t.version += 1
        self._seen[t.tid] = (t, span, cwd if cwd is not None else (seen[2] if seen else None))

    def _merge_hint(self, tid: int, h: ThreadInfo) -> None:
        t = self.engine.threads.get(tid)
        if t is None:
            t = self._from_proc(tid, h.pid)
            if t is None:
                h.main = h
                t = h
                self.stats["from_identity"] += 1
            self._add(t)
            return
        changed = False
        for a in ("comm", "exepath", "cwd", "uid", "gid"):
            v = getattr(h, a)
            if v and v != getattr(t, a):
                setattr(t, a, v if a != "cwd" or v.endswith("/") else v + "/")
                changed = True
        if h.ptid > 0 and h.ptid != t.ptid:
            t.ptid = h.ptid
            t.parent = self._thread_or_proc(h.ptid)
            changed = True
        if changed:
            self.engine.resolve_user(t)
            t.version += 1

    def _from_proc(self, pid: int, tgid: int | None = None) -> ThreadInfo | None:
        self.stats["proc_reads"] += 1
        return read_proc_thread(self.proc, tgid if tgid is not None else pid, pid)

    def _add(self, t: ThreadInfo, depth: int = 0) -> ThreadInfo:
        t = self.engine.add_thread(t)
        if t.parent is None and t.ptid > 0 and t.ptid != t.tid and depth < 64:
            t.parent = self._thread_or_proc(t.ptid, depth + 1)
        return t

    def _thread_or_proc(self, pid: int, depth: int = 0) -> ThreadInfo | None:
        t = self.engine.threads.get(pid)
        if t is not None or pid <= 0:
            return t
        t = self._from_proc(pid)
        return self._add(t, depth) if t is not None else None

    # --- housekeeping -----------------------------------------------------------------------
    def maybe_sweep(self, now: float | None = None) -> int:
        """Every `sweep_s`: forget the threads /proc no longer has (exits we did not see)."""
        now = time.monotonic() if now is None else now
        if now < self._next_sweep:
            return 0
        self._next_sweep = now + self.sweep_s
        gone = [tid for tid, t in self.engine.threads.items()
                if not t.dead and not os.path.exists(f"{self.proc}/{t.pid}/task/{tid}")]
        for tid in gone:
            self.engine.forget_thread(tid)
            self._seen.pop(tid, None)
        stale = [pid for pid in self._seen if pid not in self.engine.threads]
        for pid in stale:
            del self._seen[pid]
        self.stats["swept"] += len(gone)
        return len(gone)


def _apply_identity(t: ThreadInfo, sc: dict[str, bytes]) -> None:
    """The SYSCALL record's process identity onto a thread."""
    def num(k: str, default: int = _UNKNOWN) -> int:
        v = sc.get(k)
        try:
            return int(v) if v is not None else default
        except ValueError:
            return default
    ppid = num("ppid", -1)
    if ppid >= 0:
        t.ptid = ppid
    t.uid, t.gid, t.euid, t.egid = num("uid"), num("gid"), num("euid"), num("egid")
    t.loginuid = num("auid")
    t.tty = tty_number(sc.get("tty"))
    comm = untrusted(sc.get("comm"))
    if comm:
        t.comm = comm
    exe = untrusted(sc.get("exe"))
    if exe:
        t.exepath = exe
        if not t.exe:
            t.exe = posixpath.basename(exe)
