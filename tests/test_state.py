"""The state engine on hand-built event sequences: process lifecycle, reparenting, fd tables,
cwd, users, containers; and seeding from the live /proc of this machine."""

from __future__ import annotations

import os
import pathlib
import posixpath

from tests.conftest import params_by_name
from tiercel.common import eventtable as et
from tiercel.common.event import Event, FdInfo, ThreadInfo, path_fd
from tiercel.ingest.scap import blocks as B
from tiercel.ingest.state import StateEngine, concatenate_paths, container_id_from_cgroups
from tiercel.rules.fields import catalog as C

_num = 0


def ev(enum: str, evtid: int, **kw) -> Event:
    """An event by its PPME name with parameters by name (the exit-only layout of libs >= 0.22)."""
    global _num
    _num += 1
    code, params = params_by_name(enum, kw)
    return Event(_num, 1_700_000_000_000_000_000 + _num, evtid, code, params)


def field(e: Event, name: str):
    arg = None
    if "[" in name:
        name, arg = name[:-1].split("[", 1)
    return C.lookup(name, "syscall").extract(e, arg)


def engine() -> StateEngine:
    s = StateEngine()
    s.feed(B.UserList([B.User(0, 0, "root", "/root", "/bin/bash"), B.User(1000, 1000, "alice", "/home/alice",
                                                                          "/bin/zsh")],
                      [B.Group(0, "root"), B.Group(1000, "alice")]))
    s.feed(B.ProcessList([
        ThreadInfo(1, 1, 0, comm="systemd", exe="/sbin/init", exepath="/sbin/init", cwd="/", uid=0, gid=0),
        ThreadInfo(100, 100, 1, comm="bash", exe="-bash", exepath="/bin/bash", cwd="/home/alice", uid=1000,
                   gid=1000, sid=100, cgroups=["cpu=/user.slice"]),
    ]))
    s.feed(B.FdList(100, [FdInfo(0, "file", "/dev/pts/0"), FdInfo(1, "file", "/dev/pts/0")]))
    return s


def run(s: StateEngine, *events: Event) -> list[Event]:
    return [s.process(e) for e in events]


def test_fork_execve_and_ancestors():
    s = engine()
    p, c = run(s, ev("PPME_SYSCALL_FORK_20_X", 100, res=200, exe="-bash", tid=100, pid=100, ptid=1,
                     cwd="/home/alice", flags=0, uid=1000, gid=1000, vtid=100, vpid=100, comm="bash"),
               ev("PPME_SYSCALL_FORK_20_X", 200, res=0, exe="-bash", tid=200, pid=200, ptid=100,
                  cwd="/home/alice", flags=0, uid=1000, gid=1000, vtid=200, vpid=200, comm="bash"))
    child = s.threads[200]
    assert c.thread is child and child.parent is s.threads[100] and child.pid == 200
    assert child.fds is not s.threads[100].fds and set(child.fds) == {0, 1}  # fork copies the table
    x = run(s, ev("PPME_SYSCALL_EXECVE_19_X", 200, res=0, exe="cat", args=b"/etc/shadow\0", tid=200, pid=200,
                  ptid=100, cwd="/home/alice", comm="cat", trusted_exepath="/usr/bin/cat", uid=1000,
                  gid=1000, loginuid=1000, flags=1, cap_effective=(1 << 21) | 1))[0]
    assert field(x, "proc.name") == "cat" and field(x, "proc.exepath") == "/usr/bin/cat"
    assert field(x, "proc.cmdline") == "cat /etc/shadow" and field(x, "proc.pname") == "bash"
    assert field(x, "proc.aname[2]") == "systemd" and field(x, "proc.aname") == ["bash", "systemd"]
    assert field(x, "proc.apid[1]") == 100 and field(x, "proc.cwd") == "/home/alice/"
    assert field(x, "user.name") == "alice" and field(x, "user.loginname") == "alice"
    assert field(x, "proc.is_exe_writable") is True
    assert field(x, "thread.cap_effective") == "CAP_CHOWN CAP_SYS_ADMIN"
    assert field(x, "container.id") == "host" and field(x, "proc.sname") == "bash"


def test_threads_share_fds_and_cwd():
    s = engine()
    run(s, ev("PPME_SYSCALL_CLONE_20_X", 100, res=101, exe="bash", tid=100, pid=100, ptid=1,
              cwd="/home/alice", flags=et.flags_table("clone_flags")[13][1] | 1, uid=1000, gid=1000,
              vtid=100, vpid=100, comm="bash"))
    t = s.threads[101]
    assert t.pid == 100 and t.fds is s.threads[100].fds and t.main is s.threads[100]
    run(s, ev("PPME_SYSCALL_CHDIR_X", 101, res=0, path="/tmp"))
    e = run(s, ev("PPME_SYSCALL_OPEN_X", 101, fd=5, name="x.txt", flags=3))[0]
    assert field(e, "fd.name") == "/tmp/x.txt" and field(e, "fd.nameraw") == "x.txt"
    assert field(e, "proc.cwd") == "/tmp/" and 5 in s.threads[100].fds


def test_reparenting_to_reaper_and_subreaper():
    s = engine()
    run(s, ev("PPME_SYSCALL_FORK_20_X", 100, res=200, tid=100, pid=100, ptid=1, flags=0, comm="bash"),
        ev("PPME_SYSCALL_FORK_20_X", 200, res=300, tid=200, pid=200, ptid=100, flags=0, comm="bash"))
    assert s.threads[300].parent is s.threads[200]
    # 200 dies: the kernel names 100 as the reaper
    run(s, ev("PPME_PROCEXIT_1_E", 200, status=0, ret=0, sig=0, core=0, reaper_tid=100),
        ev("PPME_SYSCALL_CLOSE_X", 300, res=0, fd=0))
    assert 200 not in s.threads and s.threads[300].ptid == 100 and s.threads[300].parent is s.threads[100]
    # without a reaper param: a subreaper ancestor wins over init
    pr = dict(et.flags_table("prctl_options"))["PR_SET_CHILD_SUBREAPER"]
    run(s, ev("PPME_SYSCALL_PRCTL_X", 1, res=0, option=pr, arg2_int=1),
        ev("PPME_SYSCALL_FORK_20_X", 300, res=400, tid=300, pid=300, ptid=100, flags=0, comm="sleep"),
        ev("PPME_PROCEXIT_1_E", 300, status=0), ev("PPME_SYSCALL_CLOSE_X", 400, res=0, fd=0))
    assert s.threads[400].ptid == 1


def test_fd_table_operations():
    s = engine()
    e = run(s, ev("PPME_SYSCALL_OPENAT_2_X", 100, fd=3, dirfd=-100, name="notes", flags=1))[0]
    assert e.fd.name == "/home/alice/notes" and e.fdnum == 3
    d = run(s, ev("PPME_SYSCALL_OPENAT_2_X", 100, fd=4, dirfd=-100, name="/etc", flags=1 | 1024))[0]
    assert d.fd.type == "directory"
    e = run(s, ev("PPME_SYSCALL_OPENAT_2_X", 100, fd=5, dirfd=4, name="passwd", flags=1))[0]
    assert field(e, "fd.name") == "/etc/passwd" and field(e, "fd.directory") == "/etc"
    assert field(e, "fd.filename") == "passwd" and field(e, "evt.is_open_read") is True
    e = run(s, ev("PPME_SYSCALL_DUP2_X", 100, res=9, oldfd=5, newfd=9))[0]
    assert s.threads[100].fds[9].name == "/etc/passwd" and e.fdnum == 9
    e = run(s, ev("PPME_SYSCALL_READ_X", 100, res=10, data=b"root:x:0:0", fd=9, size=10))[0]
    assert field(e, "fd.name") == "/etc/passwd" and field(e, "evt.arg.fd") == "<f>/etc/passwd"
    assert field(e, "evt.args") == "res=10 data=root:x:0:0 fd=9(<f>/etc/passwd) size=10 "
    fcntl = dict(et.flags_table("fcntl_commands"))
    run(s, ev("PPME_SYSCALL_FCNTL_X", 100, res=12, fd=9, cmd=fcntl["F_DUPFD"]))
    assert s.threads[100].fds[12].name == "/etc/passwd"
    e = run(s, ev("PPME_SYSCALL_PIPE_X", 100, res=0, fd1=6, fd2=7, ino=99))[0]
    assert s.threads[100].fds[6].type == "pipe" and s.threads[100].fds[7].ino == 99
    run(s, ev("PPME_SYSCALL_CLOSE_X", 100, res=0, fd=9))
    assert 9 in s.threads[100].fds  # libsinsp drops it when the next event comes
    run(s, ev("PPME_SYSCALL_FCHDIR_X", 100, res=0, fd=4))
    assert 9 not in s.threads[100].fds and s.threads[100].cwd == "/etc/"


def test_sockets():
    s = engine()
    run(s, ev("PPME_SOCKET_SOCKET_X", 100, fd=3, domain=2, type=1, proto=0))
    e = run(s, ev("PPME_SOCKET_CONNECT_X", 100, res=0, tuple=(2, "10.0.0.5", 40000, "93.184.216.34", 443),
                  fd=3))[0]
    assert field(e, "fd.name") == "10.0.0.5:40000->93.184.216.34:443"
    assert str(field(e, "fd.sip")) == "93.184.216.34" and field(e, "fd.sport") == 443
    assert field(e, "fd.lport") == 40000 and field(e, "fd.rport") == 443 and field(e, "fd.l4proto") == "tcp"
    assert field(e, "fd.is_server") is False and field(e, "fd.connected") is True
    assert [str(x) for x in field(e, "fd.ip")] == ["10.0.0.5", "93.184.216.34"]
    run(s, ev("PPME_SOCKET_SOCKET_X", 100, fd=4, domain=10, type=1, proto=6),
        ev("PPME_SOCKET_BIND_X", 100, res=0, addr=(10, "::", 8080), fd=4),
        ev("PPME_SOCKET_LISTEN_X", 100, res=0, fd=4, backlog=5))
    assert s.threads[100].fds[4].name == ":::8080"
    e = run(s, ev("PPME_SOCKET_ACCEPT4_6_X", 100, fd=5, tuple=(10, "::ffff:10.1.1.1", 5555, "::ffff:10.0.0.5",
                                                                 8080)))[0]
    assert e.fd.type == "ipv4" and field(e, "fd.name") == "10.1.1.1:5555->10.0.0.5:8080"
    assert field(e, "fd.is_server") is True and str(field(e, "fd.rip")) == "10.1.1.1"
    e = run(s, ev("PPME_SOCKET_SOCKET_X", 100, fd=6, domain=1, type=1, proto=0),
            ev("PPME_SOCKET_CONNECT_X", 100, res=-2, tuple=(1, 0, 0xFFFF88003C420800, "/run/nscd/socket"),
               fd=6))[1]
    assert field(e, "fd.name") == "0->ffff88003c420800 /run/nscd/socket" and field(e, "evt.res") == "ENOENT"


def test_users_and_containers():
    s = engine()
    e = run(s, ev("PPME_SYSCALL_SETUID_X", 100, res=0, uid=0))[0]
    assert field(e, "user.name") == "root" and field(e, "user.uid") == 0 and field(e, "user.shell") == "/bin/bash"
    cid = "3f7e2b1c9d8a" + "0" * 52
    assert container_id_from_cgroups([f"cpu=/docker/{cid}"]) == "3f7e2b1c9d8a"
    assert container_id_from_cgroups([f"0::/system.slice/cri-containerd-{cid}.scope"]) == "3f7e2b1c9d8a"
    assert container_id_from_cgroups(["cpu=/user.slice"]) == ""
    run(s, ev("PPME_SYSCALL_FORK_20_X", 100, res=500, tid=100, pid=100, ptid=1, flags=0, comm="nginx",
              cgroups=f"cpu=/kubepods/pod1/{cid}\0".encode()))
    s.process(Event(99_999, 1, 0, et.PPME_CONTAINER_JSON_E,
                    ['{"container":{"id":"3f7e2b1c9d8a","name":"web","image":"nginx:1.25","type":0,'
                     '"privileged":true,"imagerepo":"nginx","imagetag":"1.25"}}']))
    e = run(s, ev("PPME_SYSCALL_CLOSE_X", 500, res=0, fd=0))[0]
    assert field(e, "container.id") == "3f7e2b1c9d8a" and field(e, "container.name") == "web"
    assert field(e, "container.image.repository") == "nginx" and field(e, "container.privileged") is True


def test_paths():
    assert concatenate_paths("/home/a/", "../b/./c") == "/home/b/c"
    assert concatenate_paths("/x/", "/etc//passwd") == "/etc/passwd"
    assert concatenate_paths("", "rel") == "rel"
    # every absolute path as normpath makes it (a leading "//" collapsed too), whichever test
    # (`_norm`'s exact one, the open handler's quick one) lets it through unchanged
    parts = ["a", ".a", "..a", "a.", "...", ".", "..", ""]
    paths = {"/"} | {"/" + "/".join((x, y, z)) for x in parts for y in parts for z in parts}
    for path in sorted(paths):
        want = posixpath.normpath(path)
        want = "/" + want.lstrip("/") if want.startswith("//") else want
        assert concatenate_paths("/cwd/", path) == want, path


def test_open_exit_names_like_normpath_and_reads_old_layouts():
    s = engine()
    fd = 3
    for name, want in (("/home/alice/.config/app.yaml", "/home/alice/.config/app.yaml"),
                       ("/etc/./passwd", "/etc/passwd"), ("/tmp/../etc", "/etc"), ("/etc/", "/etc"),
                       ("/", "/"), ("//etc//hosts", "/etc/hosts"), ("/a/.", "/a"), ("/a/b/..", "/a"),
                       (".bashrc", "/home/alice/.bashrc"), ("../bob/./x", "/home/bob/x"), ("", "")):
        e = run(s, ev("PPME_SYSCALL_OPENAT_2_X", 100, fd=fd, dirfd=-100, name=name, flags=1, mode=0o644,
                      dev=0x803, ino=77))[0]
        f = s.threads[100].fds[fd]
        assert e.fd is f and e.fdnum == fd and (f.name, f.nameraw) == (want, name), name
        assert (f.type, f.flags, f.mode, f.dev, f.ino, f.pid) == ("file", 1, 0o644, 0x803, 77, 100)
        assert e.fd_name_changed is bool(want)
        fd += 1
    # an open whose exit lacks name, flags and mode (old captures): they come from its enter event
    enter, _ = params_by_name("PPME_SYSCALL_OPEN_E", {"name": "notes/../todo", "flags": 1 | 1024, "mode": 0o600})
    run(s, Event(900, 1, 100, enter, _))
    x = Event(901, 2, 100, et.PPME["PPME_SYSCALL_OPEN_X"], [fd])
    e = run(s, x)[0]
    assert (e.fd.name, e.fd.nameraw, e.fd.type, e.fd.mode, e.fd.dev) == ("/home/alice/todo", "notes/../todo",
                                                                        "directory", 0o600, 0)
    # a failed open adds nothing
    e = run(s, ev("PPME_SYSCALL_OPENAT_2_X", 100, fd=-2, dirfd=-100, name="/nope", flags=1))[0]
    assert e.fd is None and -2 not in s.threads[100].fds


def test_path_fd_is_the_constructors_fd():
    a = path_fd(7, "directory", "/etc", "etc", 1 | 1024, 0o755, 8, 99, 4242)
    b = FdInfo(7, "directory", "/etc", nameraw="etc", flags=1 | 1024, mode=0o755, dev=8, ino=99, pid=4242)
    assert {k: getattr(a, k) for k in FdInfo.__slots__} == {k: getattr(b, k) for k in FdInfo.__slots__}


def test_seed_from_proc_finds_this_process():
    s = StateEngine()
    n = s.seed_from_proc()
    me = s.threads[os.getpid()]
    assert n > 10 and me.comm == pathlib.Path("/proc/self/comm").read_text().strip()
    assert me.exepath == os.readlink("/proc/self/exe") and me.cwd == os.getcwd().rstrip("/") + "/"
    assert me.uid == os.getuid() and me.user is not None
    e = Event(1, 1, os.getpid(), et.PPME["PPME_SYSCALL_CLOSE_X"], [0, 0])
    s.process(e)
    chain = field(e, "proc.apid")
    assert chain and chain[-1] in (0, 1) and field(e, "proc.ppid") == os.getppid()
    assert any(f.num == 0 for f in me.fds.values())
