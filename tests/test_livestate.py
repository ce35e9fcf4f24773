"""The state engine on live audit events, sans-IO: audit records (bytes) -> assembler ->
translation -> LiveState -> wire form and back, checked through the rules' own field extractors.
/proc is an empty directory here, so every process not seeded comes from what its records say."""

from __future__ import annotations

import os
import struct

from tiercel.common.event import ThreadInfo
from tiercel.common.wire import Encoder, decode_events
from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.assembler import Assembler
from tiercel.ingest.audit.client import DatagramReader
from tiercel.ingest.audit.syscalls import B64
from tiercel.ingest.audit.translate import Translator
from tiercel.ingest.livestate import LiveState
from tiercel.ingest.scap import blocks as B
from tiercel.rules.fields import catalog as C


def field(ev, name: str):
    arg = None
    if "[" in name:
        name, arg = name[:-1].split("[", 1)
    f = C.lookup(name, "syscall")
    assert f is not None, name
    return f.extract(ev, arg)


class Kernel:
    """Writes audit records the way the kernel does, one datagram per record."""

    def __init__(self):
        self.serial = 100
        self.datagrams: list[bytes] = []

    def record(self, rtype: int, serial: int, body: str) -> None:
        payload = f"audit(1700000000.{serial % 1000:03d}:{serial}): {body}".encode()
        self.datagrams.append(struct.pack("=IHHII", len(payload), rtype, 0, 0, 0) + payload + b"\0")

    def syscall(self, name: str, ret: int | None, pid: int, ppid: int, comm: str, exe: str, *,
                a: tuple[int, ...] = (0, 0, 0, 0), uid: int = 0, extra: tuple = ()) -> None:
        self.serial += 1
        s = self.serial
        args = " ".join(f"a{i}={(v & 0xFFFFFFFFFFFFFFFF):x}" for i, v in enumerate(a))
        res = f" success={'yes' if ret >= 0 else 'no'} exit={ret}" if ret is not None else ""
        self.record(nl.AUDIT_SYSCALL, s, f"arch=c000003e syscall={B64[name]}{res} {args} items=0 ppid={ppid} "
                    f"pid={pid} auid=1000 uid={uid} gid=0 euid={uid} suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 "
                    f'tty=pts1 ses=2 comm="{comm}" exe="{exe}" key="tiercel"')
        for rtype, body in extra:
            self.record(rtype, s, body)
        self.record(nl.AUDIT_PROCTITLE, s, "proctitle=" + comm.encode().hex().upper())
        self.record(nl.AUDIT_EOE, s, "")


def _path(name: str, ino: int = 7) -> tuple[int, str]:
    return nl.AUDIT_PATH, f'item=0 name="{name}" inode={ino} dev=fe:00 mode=0100644 nametype=NORMAL'


def _engine_with_parents(tmp_path) -> LiveState:
    st = LiveState(proc=str(tmp_path))
    eng = st.engine
    eng.users[0] = B.User(0, 0, "root", "/root", "/bin/sh")
    eng.users[1000] = B.User(1000, 1000, "alice", "/home/alice", "/bin/sh")
    eng.add_thread(ThreadInfo(1, 1, 0, comm="systemd", exe="/sbin/init", uid=0, gid=0))
    eng.add_thread(ThreadInfo(200, 200, 1, comm="python", exe="python3", uid=0, gid=0))
    return st


WIRE_FIELDS = ("proc.name", "proc.pname", "proc.aname[2]", "fd.name", "user.name", "proc.cmdline", "evt.type",
               "container.id", "proc.tty", "user.loginuid", "proc.exepath", "fd.num")


def _run(kernel: Kernel, st: LiveState, seen: list | None = None) -> list:
    """(event, wire item) per translated event; `seen` gets each event's WIRE_FIELDS as they
    were right after it went through the state engine (threads are live objects)."""
    asm, tr = Assembler(), Translator(self_pid=-1, resolve=False)
    done: list = []
    asm.feed_datagrams(kernel.datagrams, 0, done)
    out = []
    enc = Encoder()
    for ae in done:
        got = tr.translate(ae)
        if got is None:
            continue
        ev, ident = got
        st.process(ev, ident)
        if seen is not None:
            seen.append({f: field(ev, f) for f in WIRE_FIELDS})
        out.append((ev, enc.encode(ev)))
    return out


def test_shell_cat_open_read_close_exit(tmp_path):
    k = Kernel()
    sh, cat = "/usr/bin/dash", "/usr/bin/cat"
    k.syscall("execve", 0, 300, 200, "sh", sh, extra=(
        (nl.AUDIT_EXECVE, 'argc=3 a0="sh" a1="-c" a2="cat /etc/shadow"'), (nl.AUDIT_CWD, 'cwd="/tmp"'),
        _path("/usr/bin/sh", 11)))
    k.syscall("clone", 301, 300, 200, "sh", sh, a=(0x1200011, 0, 0, 0))
    k.syscall("execve", 0, 301, 300, "cat", cat, extra=(
        (nl.AUDIT_EXECVE, 'argc=2 a0="cat" a1="/etc/shadow"'), (nl.AUDIT_CWD, 'cwd="/tmp"'), _path(cat, 12)))
    k.syscall("openat", 3, 301, 300, "cat", cat, a=(-100, 0x7FFD, 0o2000000, 0),
              extra=((nl.AUDIT_CWD, 'cwd="/tmp"'), _path("/etc/shadow", 42)))
    k.syscall("read", 100, 301, 300, "cat", cat, a=(3, 0x7FFD, 4096, 0))
    k.syscall("close", 0, 301, 300, "cat", cat, a=(3, 0, 0, 0))
    k.syscall("exit_group", None, 301, 300, "cat", cat)
    k.syscall("clone", 302, 300, 200, "sh", sh, a=(0x3D0F00, 0, 0, 0))  # a thread: CLONE_THREAD|...
    k.syscall("setuid", 0, 300, 200, "sh", sh, a=(1000, 0, 0, 0), uid=1000)
    st = _engine_with_parents(tmp_path)
    seen: list[dict] = []
    evs = _run(k, st, seen)
    names = [field(e, "evt.type") for e, _ in evs]
    assert names == ["execve", "clone", "execve", "openat", "read", "close", "procexit", "clone", "setuid"]
    by = {n: e for (e, _), n in zip(evs, names, strict=True) if n not in ("execve", "clone")}
    for n in ("openat", "read", "close"):
        e = by[n]
        assert (field(e, "proc.name"), field(e, "proc.pname"), field(e, "proc.aname[2]"), field(e, "proc.aname[3]")) \
            == ("cat", "sh", "python", "systemd"), n
        assert field(e, "fd.name") == "/etc/shadow" and field(e, "user.name") == "root", n
        assert field(e, "proc.cmdline") == "cat /etc/shadow" and field(e, "proc.exepath") == cat
    assert field(by["openat"], "evt.is_open_read") is True
    assert 301 not in st.threads and 302 not in st.threads  # exited; a thread gets no entry
    assert field(by["setuid"], "user.name") == "alice" and field(by["setuid"], "proc.name") == "sh"
    # the wire form carries the same: decode the batch and ask the same fields
    back, bad = decode_events([w for _, w in evs])
    assert bad == 0
    for want, d in zip(seen, back, strict=True):
        assert {f: field(d, f) for f in WIRE_FIELDS} == want


def test_unknown_process_from_identity_and_identity_changes(tmp_path):
    k = Kernel()
    k.syscall("openat", 4, 500, 200, "worker", "/opt/w", a=(-100, 0, 0, 0),
              extra=((nl.AUDIT_CWD, 'cwd="/srv"'), _path("data.txt")))
    k.syscall("close", 0, 500, 200, "worker", "/opt/w", a=(4, 0, 0, 0))
    # the same pid now under another parent and comm (reparented, renamed): the record wins
    k.syscall("openat", 5, 500, 1, "worker2", "/opt/w", a=(-100, 0, 0, 0),
              extra=((nl.AUDIT_CWD, 'cwd="/var"'), _path("x")))
    st = _engine_with_parents(tmp_path)
    seen: list[dict] = []
    _run(k, st, seen)
    assert seen[0]["fd.name"] == "/srv/data.txt" and seen[0]["proc.pname"] == "python"
    assert seen[0]["proc.cmdline"] == "worker" and seen[0]["proc.tty"] != 0
    assert seen[1]["fd.name"] == "/srv/data.txt"  # close of the fd the open made
    assert seen[2]["proc.pname"] == "systemd" and seen[2]["proc.name"] == "worker2"
    assert seen[2]["fd.name"] == "/var/x"
    assert st.stats["from_identity"] == 1 and st.stats["identity_changes"] == 1


def test_sweep_forgets_processes_proc_no_longer_has(tmp_path):
    proc = tmp_path / "proc"
    (proc / "7" / "task" / "7").mkdir(parents=True)
    st = LiveState(proc=str(proc), sweep_s=0.0)
    st.engine.add_thread(ThreadInfo(7, 7, 1, comm="alive"))
    st.engine.add_thread(ThreadInfo(8, 8, 7, comm="gone"))
    st.engine.add_thread(ThreadInfo(9, 9, 8, comm="orphan"))
    (proc / "9" / "task" / "9").mkdir(parents=True)
    assert st.maybe_sweep() == 1
    assert set(st.threads) == {7, 9} and st.threads[9].ptid == 1  # reparented to init, as on an exit


def test_batch_shares_one_thread_snapshot_across_fd_events(tmp_path):
    k = Kernel()
    for _i in range(50):
        k.syscall("openat", 3, 400, 200, "gen", "/usr/bin/gen", a=(-100, 0, 0, 0), extra=(_path("/etc/hostname"),))
        k.syscall("close", 0, 400, 200, "gen", "/usr/bin/gen", a=(3, 0, 0, 0))
    evs = _run(k, _engine_with_parents(tmp_path))
    assert len(evs) == 100
    sizes = [len(w) for _, w in evs]
    # the first open and the first close define the snapshots (thread with 1 and 0 fds); the
    # rest refer to them
    assert max(sizes[4:]) < 160 < sizes[0], sizes[:6]


def test_datagram_reader_many_per_call():
    import socket

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        b.setblocking(False)
        r = DatagramReader(b, slots=4)
        msgs = [os.urandom(n) for n in (1, 50, 9000, 3, 4, 5, 6)]
        for m in msgs:
            a.send(m)
        assert r.read(5) == msgs[:5]
        assert r.read(100) == msgs[5:] and r.read(10) == []
        a.send(b"x" * (DatagramReader.SLOT + 10))
        assert r.read(10) == [] and r.truncated == 1
        # in one call: a cut datagram among others, and one that fills its slot exactly (kept)
        full = os.urandom(DatagramReader.SLOT)
        for m in (b"a", b"y" * (DatagramReader.SLOT + 1), full, b"b"):
            a.send(m)
        assert r.read(10) == [b"a", full, b"b"] and r.truncated == 2
        plain = DatagramReader(b, use_mmsg=False)
        a.send(b"abc")
        assert plain.read(10) == [b"abc"]
    finally:
        a.close()
        b.close()


def test_known_process_identity_and_exit_between_events(tmp_path):
    """The engine is handed the thread LiveState looked up: an identity change (exe, ppid) is
    on it, and a thread whose exit the previous event told is not handed on."""
    k = Kernel()
    k.syscall("openat", 3, 600, 200, "app", "/opt/app-1", a=(-100, 0, 0, 0), extra=(_path("/etc/hostname"),))
    k.syscall("close", 0, 600, 200, "app", "/opt/app-1", a=(3, 0, 0, 0))
    # same pid, another executable and parent since (an execve and a reparenting audit did not log)
    k.syscall("openat", 4, 600, 1, "app", "/opt/app-2", a=(-100, 0, 0, 0), extra=(_path("/etc/hosts"),))
    k.syscall("exit_group", None, 600, 1, "app", "/opt/app-2")
    # the pid again, right after its exit (reused)
    k.syscall("openat", 5, 600, 200, "next", "/usr/bin/next", a=(-100, 0, 0, 0), extra=(_path("/etc/passwd"),))
    st = _engine_with_parents(tmp_path)
    seen: list[dict] = []
    evs = _run(k, st, seen)
    assert [s["fd.name"] for s in seen] == ["/etc/hostname", "/etc/hostname", "/etc/hosts", None, "/etc/passwd"]
    assert (seen[0]["proc.exepath"], seen[0]["proc.pname"]) == ("/opt/app-1", "python")
    assert (seen[2]["proc.exepath"], seen[2]["proc.pname"]) == ("/opt/app-2", "systemd")
    gone, again = evs[3][0].thread, evs[4][0].thread
    assert gone.dead and again is not gone and not again.dead
    assert st.threads[600] is again and again.fds[5].name == "/etc/passwd" and 4 not in again.fds
