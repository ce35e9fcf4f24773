"""The state engine, sans-IO: events in, enriched events out (libsinsp's parsers, in Python).

It keeps what Falco's fields speak about and the raw events do not carry: the thread table
(seeded from a capture's process list, or from /proc when live), parent links and ancestors, fd
tables with names and socket tuples, cwd, users and groups, container ids. Each event leaves with
`evt.thread` (its ThreadInfo), `evt.fd` (the FdInfo it operates on) and `evt.fdnum` set, so field
extraction is attribute access.

Semantics follow libsinsp as sysdig 0.29 shows them on the conformance captures (the differential
tests hold us to it), with the current libsinsp rules where captures of that era do not decide
(reparenting to the reaper, exit-only events of libs >= 0.22 carrying their fd).

Threads handed out are live objects: consumers that keep events after the next one was processed
must snapshot them first (the bus codec does, in `tiercel.common.wire`).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from typing import Any

from tiercel.common import eventtable as et
from tiercel.common.event import Event, FdInfo, ThreadInfo, path_fd
from tiercel.ingest.scap import blocks as B

# PPM clone flags (table clone_flags).
_CL = dict(et.flags_table("clone_flags"))
CL_CLONE_FILES = _CL["CLONE_FILES"]
CL_CLONE_FS = _CL["CLONE_FS"]
CL_CLONE_THREAD = _CL["CLONE_THREAD"]
CL_CLONE_VFORK = _CL.get("CLONE_VFORK", 0)
CL_CHILD_IN_PIDNS = _CL["CLONE_CHILD_IN_PIDNS"]
CL_CLONE_NEWPID = _CL["CLONE_NEWPID"]
# Not a PPM flag: the state engine's own mark for prctl(PR_SET_CHILD_SUBREAPER) threads.
CL_CHILD_SUBREAPER = 1 << 40
_PR = dict(et.flags_table("prctl_options"))
PR_SET_CHILD_SUBREAPER = _PR.get("PR_SET_CHILD_SUBREAPER", 36)

AT_FDCWD = -100
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
_IPPROTO_IP, _IPPROTO_ICMP, _IPPROTO_TCP, _IPPROTO_UDP, _IPPROTO_ICMPV6, _IPPROTO_RAW = 0, 1, 6, 17, 58, 255
_SOCK_STREAM, _SOCK_DGRAM, _SOCK_RAW = 1, 2, 3

# PPM open flags
_FF = dict(et.flags_table("file_flags"))
O_CLOEXEC = _FF["O_CLOEXEC"]
O_TMPFILE = _FF.get("O_TMPFILE", 0)
O_DIRECTORY = _FF["O_DIRECTORY"]

_FCNTL = dict(et.flags_table("fcntl_commands"))
F_DUPFD = _FCNTL.get("F_DUPFD", 1)
F_DUPFD_CLOEXEC = _FCNTL.get("F_DUPFD_CLOEXEC", -1)

UNKNOWN_UID = 0xFFFFFFFF
# libsinsp's container type enum, as container events carry it.
_CONTAINER_TYPES = {0: "docker", 1: "lxc", 2: "libvirt-lxc", 3: "mesos", 4: "rkt", 5: "custom", 6: "cri",
                    7: "containerd", 8: "cri-o", 9: "bpm", 10: "static", 11: "podman"}

_CONTAINER_RE = re.compile(
    r"(?:^|/)(?:docker-|cri-containerd-|crio-|libpod-|containerd-)?([0-9a-f]{64})(?:\.scope)?(?:/|$)")


def container_id_from_cgroups(cgroups: Iterable[str]) -> str:
    """Falco's short (12-char) container id from a thread's cgroups, "" for host processes."""
    for cg in cgroups:
        m = _CONTAINER_RE.search(cg)
        if m:
            return m.group(1)[:12]
    return ""


_OPEN_PARAMS = ("name", "path", "flags", "mode", "dirfd", "dev", "ino")


def concatenate_paths(cwd: str, path: str) -> str:
    """libsinsp's path resolution: absolute paths normalised, relative ones joined to cwd."""
    if not path:
        return path
    if path[0] != "/":
        if not cwd:
            return _norm(path) if "/" in path or "." in path else path
        path = cwd + ("" if cwd.endswith("/") else "/") + path
    return _norm(path)


def _is_normal(path: str) -> bool:
    """An absolute path with no empty, "." or ".." component and no trailing slash is already
    normal (most paths are, dot-files included): normpath would return it unchanged."""
    return (path[:1] == "/" and "//" not in path and "/./" not in path and "/../" not in path
            and (path[-1] != "/" or path == "/") and not path.endswith(("/.", "/..")))


def _norm(path: str) -> str:
    if _is_normal(path):
        return path
    n = posixpath.normpath(path)
    if n.startswith("//"):
        n = "/" + n.lstrip("/")
    return n


def _with_slash(cwd: str) -> str:
    return cwd if not cwd or cwd.endswith("/") else cwd + "/"


def _cgroups(b: Any) -> list[str]:
    """A cgroups list; the cgroup v2 `io` controller is named as v1's `blkio`, as libsinsp does."""
    out = _split_list(b)
    return ["blkio=" + c[3:] if c.startswith("io=") else c for c in out]


def _split_list(b: Any) -> list[str]:
    if not b:
        return []
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    if b.endswith(b"\0"):
        b = b[:-1]
    return [x.decode("utf-8", "surrogateescape") for x in b.split(b"\0")]


_L4 = {_IPPROTO_TCP: "tcp", _IPPROTO_UDP: "udp", _IPPROTO_ICMP: "icmp", _IPPROTO_ICMPV6: "icmp",
       _IPPROTO_RAW: "raw"}


def _socket_l4proto(typ: int, proto: int) -> str:
    typ &= 0xF
    if proto == _IPPROTO_TCP:
        return "raw" if typ == _SOCK_RAW else "tcp"
    if proto == _IPPROTO_UDP:
        return "raw" if typ == _SOCK_RAW else "udp"
    if proto == _IPPROTO_IP:
        if typ == _SOCK_STREAM:
            return "tcp"
        if typ == _SOCK_DGRAM:
            return "udp"
        if typ == _SOCK_RAW:
            return "raw"
        return ""
    return _L4.get(proto, "")


def tuple_name(tup: tuple) -> str:
    """A socket tuple as libsinsp names the fd: `cip:cport->sip:sport`, unix `src->dst path`."""
    fam = tup[0]
    if fam in (AF_INET, AF_INET6) and len(tup) == 5:
        s, sp, d, dp = tup[1], tup[2], tup[3], tup[4]
        if fam == AF_INET6 and s.startswith("::ffff:") and d.startswith("::ffff:") and "." in s and "." in d:
            s, d = s[7:], d[7:]
        return f"{s}:{sp}->{d}:{dp}"
    if fam == AF_UNIX and len(tup) == 4:
        return f"{tup[1]:x}->{tup[2]:x} {tup[3]}"
    return ""


def _same_ip(a: str, b: str) -> bool:
    return a == b or _v4mapped(b) == a or _v4mapped(a) == b


def _v4mapped(ip: str) -> str | None:
    if ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    return None


# Event codes by role, from the table (every version of a syscall shares its handler).
def _codes(*names: str, direction: str = "<") -> set[int]:
    out: set[int] = set()
    for n in names:
        for c in et.codes(n):
            info = et.info(c)
            if c not in (et.PPME_GENERIC_E, et.PPME_GENERIC_X) and info.dir == direction:
                out.add(c)
    return out


def _codes_named(info: et.EventInfo, *names: str) -> bool:
    return info.name in names


class StateEngine:
    """The thread table and everything hanging off it. Feed it reader items in order."""

    def __init__(self, *, max_threads: int = 262_144) -> None:
        self.threads: dict[int, ThreadInfo] = {}
        self.users: dict[int, B.User] = {}
        self.groups: dict[int, B.Group] = {}
        self.machine: B.MachineInfo | None = None
        self.interfaces: B.InterfaceList | None = None
        self.max_threads = max_threads
        self.stats: dict[str, int] = {}
        self.containers: dict[str, dict] = {}
        self._pending_remove: int | None = None
        self._pending_close: tuple[ThreadInfo, int] | None = None
        self._build_dispatch()

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, item: Any) -> Event | None:
        """Apply one reader item; events come back enriched, metadata returns None."""
        if isinstance(item, Event):
            return self.process(item)
        if isinstance(item, B.Section):
            self.reset()
        elif isinstance(item, B.ProcessList):
            for t in item.threads:
                self.add_thread(t, link=False)
            self._relink()
        elif isinstance(item, B.FdList):
            t = self.threads.get(item.tid)
            if t is not None:
                for f in item.fds:
                    if f.type == "unix" or f.type == "ipv4" or f.type == "ipv6":
                        f.role = "server" if f.is_server else ("client" if f.cip is not None else "")
                    t.fds[f.num] = f
        elif isinstance(item, B.UserList):
            for u in item.users:
                self.users[u.uid] = u
            for g in item.groups:
                self.groups[g.gid] = g
            for t in self.threads.values():
                self._resolve_user(t)
        elif isinstance(item, B.MachineInfo):
            self.machine = item
        elif isinstance(item, B.InterfaceList):
            self.interfaces = item
        return None

    def run(self, items: Iterable[Any]) -> Iterator[Event]:
        """Every event of a reader item stream, enriched."""
        process = self.process
        for item in items:
            if type(item) is Event:
                yield process(item)
            else:
                self.feed(item)

    def reset(self) -> None:
        """A new section (concatenated capture): forget everything."""
        self.threads.clear()
        self.users.clear()
        self.groups.clear()
        self._pending_remove = None

    # -- threads ---------------------------------------------------------------------------

    def add_thread(self, t: ThreadInfo, *, link: bool = True) -> ThreadInfo:
        if len(self.threads) >= self.max_threads and t.tid not in self.threads:
            self._count("thread_table_full")
            return t
        t.cwd = _with_slash(t.cwd)
        if not t.container_id and t.cgroups:
            t.container_id = container_id_from_cgroups(t.cgroups)
        if t.container_id:
            t.container = self.containers.get(t.container_id)
        self._resolve_user(t)
        self.threads[t.tid] = t
        if t.pid != t.tid:
            main = self.threads.get(t.pid)
            if main is not None and main is not t:
                t.main = main
                if not t.fds:
                    t.fds = main.fds
        else:
            t.main = t
        if link:
            t.parent = self.threads.get(t.ptid)
        return t

    def _relink(self) -> None:
        threads = self.threads
        for t in threads.values():
            t.parent = threads.get(t.ptid) if t.ptid != t.tid else None
            if t.pid == t.tid:
                t.main = t
            else:
                m = threads.get(t.pid)
                t.main = m
                if m is not None and not t.fds:
                    t.fds = m.fds

    def _resolve_user(self, t: ThreadInfo) -> None:
        u = self.users.get(t.uid)
        t.user = u.name if u else None
        t.homedir = u.homedir if u else None
        t.shell = u.shell if u else None
        g = self.groups.get(t.gid)
        t.group = g.name if g else None
        lu = self.users.get(t.loginuid) if t.loginuid != UNKNOWN_UID else None
        t.loginname = lu.name if lu else None

    def _unknown_thread(self, tid: int) -> ThreadInfo:
        """A thread first seen in an event (capture mode: nothing else to ask)."""
        t = ThreadInfo(tid, tid, -1, comm="<NA>", exe="<NA>")
        t.main = t
        self._count("unknown_threads")
        if len(self.threads) < self.max_threads:
            self.threads[tid] = t
        return t

    def _count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    # -- events ----------------------------------------------------------------------------

    def _build_dispatch(self) -> None:
        n = len(et.EVENTS)
        # per code: (is_enter, fd-related, uses_fd, fd param index, handler)
        spec: list[tuple] = [None] * n  # type: ignore[list-item]
        handlers: dict[int, Any] = {}
        # Codes whose handler changes only the fd table: a thread snapshot holds no fds (only
        # their count), so these leave the thread's `version` alone and one snapshot serves a
        # whole run of them on the wire.
        fd_only: set[int] = set()

        def on(names: set[int], fn, fds: bool = False) -> None:
            for c in names:
                handlers[c] = fn
                if fds:
                    fd_only.add(c)

        on(_codes("open", "openat", "openat2", "creat", "open_by_handle_at"), self._on_open_exit, fds=True)
        on(_codes("socket"), self._on_socket_exit, fds=True)
        on(_codes("connect"), self._on_connect_exit, fds=True)
        on(_codes("accept", "accept4"), self._on_accept_exit, fds=True)
        on(_codes("bind"), self._on_bind_exit, fds=True)
        on(_codes("listen"), self._on_listen_exit, fds=True)
        on(_codes("close"), self._on_close_exit, fds=True)
        on(_codes("pipe", "pipe2"), self._on_pipe_exit, fds=True)
        on(_codes("socketpair"), self._on_socketpair_exit, fds=True)
        on(_codes("eventfd", "eventfd2"), self._on_simple_fd("event"), fds=True)
        on(_codes("signalfd", "signalfd4"), self._on_simple_fd("signalfd"), fds=True)
        on(_codes("inotify_init", "inotify_init1"), self._on_simple_fd("inotify"), fds=True)
        on(_codes("timerfd_create"), self._on_simple_fd("timerfd"), fds=True)
        on(_codes("epoll_create", "epoll_create1"), self._on_simple_fd("eventpoll"), fds=True)
        on(_codes("userfaultfd"), self._on_simple_fd("userfaultfd"), fds=True)
        on(_codes("io_uring_setup"), self._on_simple_fd("io_uring"), fds=True)
        on(_codes("pidfd_open", "pidfd_getfd"), self._on_simple_fd("pidfd"), fds=True)
        on(_codes("bpf"), self._on_bpf_exit, fds=True)
        on(_codes("memfd_create"), self._on_memfd_exit, fds=True)
        on(_codes("dup", "dup2", "dup3"), self._on_dup_exit, fds=True)
        on(_codes("fcntl"), self._on_fcntl_exit, fds=True)
        on(_codes("clone", "clone3", "fork", "vfork"), self._on_clone_exit)
        on(_codes("execve", "execveat"), self._on_execve_exit)
        on(_codes("chdir"), self._on_chdir_exit)
        on(_codes("fchdir"), self._on_fchdir_exit)
        on(_codes("chroot"), self._on_chroot_exit)
        on(_codes("setuid", "setresuid", "setreuid"), self._on_setuid_exit)
        on(_codes("setgid", "setresgid", "setregid"), self._on_setgid_exit)
        on(_codes("capset"), self._on_capset_exit)
        on(_codes("prctl"), self._on_prctl_exit)
        on(_codes("sendto", "sendmsg", "recvfrom", "recvmsg"), self._on_io_tuple_exit, fds=True)
        on(_codes("procexit", direction=">"), self._on_procexit)
        on({et.PPME_CONTAINER_JSON_E, et.PPME_CONTAINER_JSON_2_E, et.PPME_CONTAINER_E}, self._on_container)

        fdrel_mask = et.EF_CREATES_FD | et.EF_USES_FD | et.EF_DESTROYS_FD
        # mmap's fd is not its first enter param: sysdig 0.29's table did not count mmap among the
        # fd events, and its fd.* fields show nothing there; we keep that view.
        not_fd = _codes("mmap", "mmap2", direction=">") | _codes("mmap", "mmap2", direction="<")
        vm_attrs = {"vm_size": "vmsize_kb", "vm_rss": "vmrss_kb", "vm_swap": "vmswap_kb",
                    "pgft_maj": "pfmajor", "pgft_min": "pfminor"}
        for info in et.EVENTS:
            c = info.code
            # switch events do not touch the per-thread enter/exit bookkeeping (libsinsp)
            skip = bool(info.flags & et.EF["EF_SKIPPARSERESET"]) or info.unused or info.name == "switch"
            fl = 0 if c in not_fd else info.flags
            vm = (tuple((i, vm_attrs[p.name]) for i, p in enumerate(info.params) if p.name in vm_attrs)
                  if not _codes_named(info, "execve", "execveat", "clone", "clone3", "fork", "vfork") else ())
            pids = tuple(i for i, p in enumerate(info.params) if p.type in ("PT_PID", "PT_PID32"))
            # one tuple per code, unpacked once per event: everything `process` decides by code
            spec[c] = (info.dir == ">", bool(fl & fdrel_mask), bool(fl & et.EF_USES_FD),
                       info.fd_param, handlers.get(c), skip, c not in fd_only, pids, vm)
        self._spec = spec
        self._pidx = [info.param_index for info in et.EVENTS]  # per code: param name -> index
        # per open-like exit code: indices of name, path, flags, mode, dirfd, dev, ino (None: absent),
        # and the param count from which an event has name, flags, mode, dev and ino (no bound
        # checks then; a code without one of them never qualifies)
        self._open_ix = {}
        for c, h in handlers.items():
            if h == self._on_open_exit:
                ix = tuple(et.EVENTS[c].param_index.get(k) for k in _OPEN_PARAMS)
                direct = (ix[0], ix[2], ix[3], ix[5], ix[6])
                whole = 1 + max(direct) if None not in direct else 1 << 62
                self._open_ix[c] = (*ix, whole)

    def process(self, ev: Event, thread: ThreadInfo | None = None) -> Event:
        """Enrich one event and apply what it changes. `thread`: what `threads.get(ev.tid)` gives
        when the caller just looked it up (a live source does), so it is not looked up twice."""
        if self._pending_remove is not None:
            self._remove_thread(self._pending_remove)
            self._pending_remove = None
            thread = None  # the table changed: look again
        if self._pending_close is not None:
            pt, pfd = self._pending_close
            pt.fds.pop(pfd, None)
            self._pending_close = None
        code = ev.code
        try:
            is_enter, fdrel, uses_fd, fdidx, handler, skip, bump, pids, vm = self._spec[code]
        except (IndexError, TypeError):
            return ev
        if ev.source != "syscall":
            return ev
        tid = ev.tid
        t = thread if thread is not None else self.threads.get(tid)
        if skip:
            ev.thread = t
            if handler is not None:
                handler(ev, t)
            if pids:
                self._pid_refs(ev, pids)
            if t is not None and vm:
                self._vm_update(ev, t, vm)
                t.version += 1
            return ev
        if t is None:
            if handler is self._on_clone_exit or handler is self._on_procexit:
                t = None
            else:
                t = self._unknown_thread(tid)
        ev.thread = t
        if is_enter:
            if t is not None:
                t.lastevent_fd = -1
                t.lastevent_code = code
                t.lastevent = ev
                if uses_fd:
                    params = ev.params
                    if fdidx is not None and fdidx < len(params) and type(params[fdidx]) is int:
                        fd = params[fdidx]
                        t.lastevent_fd = fd
                        ev.fdnum = fd
                        ev.fd = t.fds.get(fd)
                        ev.fdrel = True
                    # an old enter event without its fd is no fd event (sysdig 0.29's table)
                elif fdrel:
                    ev.fdrel = True
        elif t is not None:  # exit
            valid = t.lastevent_code == code - 1
            if valid and t.lastevent is not None:
                ev.latency = ev.ts - t.lastevent.ts
            if fdrel:
                ev.fdrel = True
                if uses_fd:
                    params = ev.params
                    if fdidx is not None and fdidx < len(params) and type(params[fdidx]) is int:
                        fd = params[fdidx]
                        t.lastevent_fd = fd
                    elif not valid:
                        t.lastevent_fd = -1
                    fd = t.lastevent_fd
                    ev.fd = t.fds.get(fd) if fd >= 0 else None
                ev.fdnum = t.lastevent_fd
            t.lastevent_code = -1
        if handler is not None:
            handler(ev, t)
            if t is not None:
                if fdrel and not is_enter:
                    ev.fdnum = t.lastevent_fd
                if bump:
                    t.version += 1
        if pids:
            self._pid_refs(ev, pids)
        if vm and t is not None:
            self._vm_update(ev, t, vm)
            t.version += 1
        return ev

    @staticmethod
    def _vm_update(ev: Event, t: ThreadInfo, vm: tuple) -> None:
        """Memory counters ride on brk/mmap/munmap/switch events: keep the thread's (and, for
        the memory of the whole process, its main thread's) current."""
        p = ev.params
        n = len(p)
        m = t.main if t.main is not None else t
        for i, attr in vm:
            if i < n and type(p[i]) is int:
                setattr(m if attr[0] == "v" else t, attr, p[i])
        m.version += 1

    def _pid_refs(self, ev: Event, idxs: tuple[int, ...]) -> None:
        """Record the comm of the threads PID parameters name (`ptid=3200(bash)`), since the
        fields see the event, not the thread table."""
        refs = {}
        p = ev.params
        for i in idxs:
            if i < len(p) and type(p[i]) is int:
                o = self.threads.get(p[i])
                if o is not None:
                    refs[p[i]] = o.comm
        if refs:
            if ev.extra is None:
                ev.extra = {}
            ev.extra["pids"] = refs

    # -- fd helpers ------------------------------------------------------------------------

    def _add_fd(self, t: ThreadInfo, ev: Event, f: FdInfo) -> FdInfo:
        f.pid = t.pid
        ev.fd_name_changed = bool(f.name)
        t.fds[f.num] = f
        t.lastevent_fd = f.num
        ev.fd = f
        ev.fdnum = f.num
        return f

    @staticmethod
    def _res(ev: Event) -> int | None:
        p = ev.params
        if p and type(p[0]) is int:
            return p[0]
        return None

    def _param(self, ev: Event, name: str, default: Any = None) -> Any:
        i = self._pidx[ev.code].get(name)
        p = ev.params
        if i is None or i >= len(p):
            return default
        v = p[i]
        return default if v is None else v

    def _enter_param(self, t: ThreadInfo, ev: Event, name: str) -> Any:
        """A parameter the exit event lacks in old captures, from the stored enter event."""
        v = self._param(ev, name)
        if v is not None:
            return v
        enter = t.lastevent if t is not None else None
        if enter is not None and enter.code == ev.code - 1:
            return self._param(enter, name)
        return None

    def _on_open_exit(self, ev: Event, t: ThreadInfo) -> None:
        p = ev.params
        fd = p[0] if p and type(p[0]) is int else None
        if t is None or fd is None or fd < 0:
            return
        # the parameters by precomputed index; a missing one comes from the enter event
        # (old captures) as `_enter_param` finds it
        i_name, i_path, i_flags, i_mode, i_dirfd, i_dev, i_ino, whole = self._open_ix[ev.code]
        n = len(p)
        if n >= whole:  # the event has all of them (live events, current captures): no bound checks
            name, flags, mode, dev, ino = p[i_name], p[i_flags], p[i_mode], p[i_dev], p[i_ino]
        else:
            name = p[i_name] if i_name is not None and i_name < n else None
            flags = p[i_flags] if i_flags is not None and i_flags < n else None
            mode = p[i_mode] if i_mode is not None and i_mode < n else None
            dev = p[i_dev] if i_dev is not None and i_dev < n else None
            ino = p[i_ino] if i_ino is not None and i_ino < n else None
        if name is None:
            name = self._enter_param(t, ev, "name")
            if name is None:
                name = self._param(ev, "path")
        if flags is None:
            flags = self._enter_param(t, ev, "flags")
        flags = flags or 0
        if mode is None:
            mode = self._enter_param(t, ev, "mode")
        mode = mode or 0
        raw = name or ""
        if not raw:
            full = raw
        elif raw[0] == "/":
            # absolute: the directory it would be joined to does not matter (nor is it looked up).
            # No "//", no "/." and no trailing slash is normal for sure (3 scans, inline: this runs
            # for every open); the rest, dot-files included, gets `_norm`'s exact test.
            full = raw if "//" not in raw and "/." not in raw and raw[-1] != "/" else _norm(raw)
        else:
            if i_dirfd is not None:
                dirfd = p[i_dirfd] if i_dirfd < n else None
                if dirfd is None:
                    dirfd = self._enter_param(t, ev, "dirfd")
                base = self._dir_of(t, dirfd)
            elif et.EVENTS[ev.code].name == "open_by_handle_at":
                base = ""
            else:
                base = self._cwd(t)
            full = concatenate_paths(base, raw)
        f = path_fd(fd, "directory" if flags & O_DIRECTORY else "file", full, raw, flags, mode,
                    0 if dev is None else dev, 0 if ino is None else ino, t.pid)
        # what _add_fd does, inline (the hottest fd creator)
        ev.fd_name_changed = bool(full)
        t.fds[fd] = f
        t.lastevent_fd = fd
        ev.fd = f
        ev.fdnum = fd

    def _cwd(self, t: ThreadInfo) -> str:
        m = t.main if t.main is not None else t
        return m.cwd

    def _dir_of(self, t: ThreadInfo, dirfd: Any) -> str:
        if dirfd is None or dirfd == AT_FDCWD:
            return self._cwd(t)
        f = t.fds.get(dirfd)
        if f is None:
            return ""
        return f.name

    def _on_socket_exit(self, ev: Event, t: ThreadInfo) -> None:
        fd = self._res(ev)
        if t is None or fd is None or fd < 0:
            return
        domain = self._enter_param(t, ev, "domain")
        typ = self._enter_param(t, ev, "type") or 0
        proto = self._enter_param(t, ev, "proto") or 0
        if domain == AF_UNIX:
            f = FdInfo(fd, "unix", "")
        elif domain in (AF_INET, AF_INET6):
            f = FdInfo(fd, "ipv4" if domain == AF_INET else "ipv6", "", l4proto=_socket_l4proto(typ, proto))
        elif domain == AF_NETLINK:
            f = FdInfo(fd, "netlink", "")
        else:
            f = FdInfo(fd, "unknown", "")
        f.role = ""
        self._add_fd(t, ev, f)

    def _fill_tuple(self, f: FdInfo, tup: Any, as_server: bool) -> bool:
        """Store a socket tuple (client -> server orientation) on an fd; True when usable."""
        if not isinstance(tup, tuple) or not tup:
            return False
        fam = tup[0]
        if fam in (AF_INET, AF_INET6) and len(tup) == 5:
            s, sp, d, dp = tup[1], tup[2], tup[3], tup[4]
            if fam == AF_INET6:
                ms, md = _v4mapped(s), _v4mapped(d)
                if ms is not None and md is not None:
                    s, d = ms, md
                    fam = AF_INET
            f.type = "ipv4" if fam == AF_INET else "ipv6"
            f.cip, f.cport, f.sip, f.sport = s, sp, d, dp
            f.name = f"{s}:{sp}->{d}:{dp}"
            f.role = "server" if as_server else "client"
            f.is_server = as_server
            if not f.l4proto:
                f.l4proto = "tcp"
            return True
        if fam == AF_UNIX and len(tup) == 4:
            f.type = "unix"
            f.usrc, f.udst = tup[1], tup[2]
            f.name = tuple_name(tup)
            f.role = "server" if as_server else "client"
            f.is_server = as_server
            return True
        return False

    def _on_connect_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        f = ev.fd
        if res is not None and res < 0 and res != -115:  # not EINPROGRESS: nothing connected
            return
        if f is None:
            return
        tup = self._param(ev, "tuple")
        if isinstance(tup, tuple) and len(tup) > 1:
            old = f.name
            if (f.role and f.type in ("ipv4", "ipv6") and tup[0] in (AF_INET, AF_INET6) and len(tup) == 5
                    and f.cip is not None and _same_ip(f.cip, tup[1]) and f.cport == tup[2]):
                return  # same local end: sysdig 0.29 keeps the socket's tuple
            if self._fill_tuple(f, tup, as_server=False):
                f.connected = True
                if f.name != old:
                    ev.fd_name_changed = True

    def _on_accept_exit(self, ev: Event, t: ThreadInfo) -> None:
        fd = self._res(ev)
        if t is None or fd is None or fd < 0:
            return
        f = FdInfo(fd, "ipv4", "")
        f.role = "server"
        tup = self._param(ev, "tuple")
        if not self._fill_tuple(f, tup, as_server=True):
            listening = t.fds.get(t.lastevent_fd) if t.lastevent_fd >= 0 else None
            if listening is not None:
                f.type = listening.type
        f.connected = True
        self._add_fd(t, ev, f)

    def _on_bind_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        f = ev.fd
        if f is None or res is None or res < 0:
            return
        addr = self._param(ev, "addr")
        if isinstance(addr, tuple) and addr and addr[0] in (AF_INET, AF_INET6) and len(addr) == 3:
            ip = addr[1]
            if addr[0] == AF_INET6 and _v4mapped(ip) is not None:
                ip = _v4mapped(ip)
            f.sip, f.sport = ip, addr[2]
            f.role = "server"
            f.is_server = True
            f.name = f"{ip}:{addr[2]}"
        elif isinstance(addr, tuple) and addr and addr[0] == AF_UNIX and len(addr) == 2:
            f.name = addr[1]
            f.role = "server"
            f.is_server = True

    def _on_listen_exit(self, ev: Event, t: ThreadInfo) -> None:
        f = ev.fd
        if f is not None and f.type in ("ipv4", "ipv6", "unix") and not f.role:
            f.role = "server"
            f.is_server = True

    def _on_close_exit(self, ev: Event, t: ThreadInfo) -> None:
        p = ev.params
        if t is None or (p and type(p[0]) is int and p[0] < 0):  # failed (res < 0): nothing closed
            return
        fd = t.lastevent_fd
        if fd >= 0:
            self._pending_close = (t, fd)  # libsinsp removes it when the next event comes

    def _on_pipe_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is None or res is None or res < 0:
            return
        ino = self._param(ev, "ino", 0)
        for name in ("fd1", "fd2"):
            fd = self._param(ev, name)
            if isinstance(fd, int) and fd >= 0:
                self._add_fd(t, ev, FdInfo(fd, "pipe", "", ino=ino))

    def _on_socketpair_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is None or res is None or res < 0:
            return
        src, peer = self._param(ev, "source", 0), self._param(ev, "peer", 0)
        for name in ("fd1", "fd2"):
            fd = self._param(ev, name)
            if isinstance(fd, int) and fd >= 0:
                f = FdInfo(fd, "unix", "", usrc=src, udst=peer)
                f.role = "client"
                self._add_fd(t, ev, f)

    def _on_simple_fd(self, typ: str):
        def handler(ev: Event, t: ThreadInfo) -> None:
            fd = self._res(ev)
            if t is None or fd is None or fd < 0:
                return
            self._add_fd(t, ev, FdInfo(fd, typ, ""))
        return handler

    def _on_bpf_exit(self, ev: Event, t: ThreadInfo) -> None:
        fd = self._res(ev)
        if isinstance(fd, tuple):  # old PT_DYN res_or_fd
            fd = fd[1] if fd[0] == 0 else -1
        if t is None or not isinstance(fd, int) or fd < 0:
            return
        self._add_fd(t, ev, FdInfo(fd, "bpf", ""))

    def _on_memfd_exit(self, ev: Event, t: ThreadInfo) -> None:
        fd = self._res(ev)
        if t is None or fd is None or fd < 0:
            return
        name = self._param(ev, "name", "")
        self._add_fd(t, ev, FdInfo(fd, "memfd", "memfd:" + name if name else "memfd:",
                                   flags=self._param(ev, "flags", 0)))

    def _on_dup_exit(self, ev: Event, t: ThreadInfo) -> None:
        newfd = self._res(ev)
        if t is None or newfd is None or newfd < 0:
            return
        old = self._param(ev, "oldfd")
        if old is None:
            old = t.lastevent_fd
        src = t.fds.get(old)
        if src is None:
            return
        if newfd == old:
            return
        self._add_fd(t, ev, _copy_fd(src, newfd))

    def _on_fcntl_exit(self, ev: Event, t: ThreadInfo) -> None:
        newfd = self._res(ev)
        if t is None or newfd is None or newfd < 0:
            return
        cmd = self._enter_param(t, ev, "cmd")
        if cmd not in (F_DUPFD, F_DUPFD_CLOEXEC):
            return
        src = t.fds.get(t.lastevent_fd)
        if src is not None:
            self._add_fd(t, ev, _copy_fd(src, newfd))
            # fcntl is not a creator: keep the fd the event was about
            t.lastevent_fd = src.num
            ev.fd = src
            ev.fdnum = src.num

    # -- processes -------------------------------------------------------------------------

    def _on_clone_exit(self, ev: Event, t: ThreadInfo | None) -> None:
        res = self._res(ev)
        if res is None or res < 0:
            return
        p = ev.params
        info = et.EVENTS[ev.code]
        idx = info.param_index

        def get(name, default=None):
            i = idx.get(name)
            if i is None or i >= len(p) or p[i] is None:
                return default
            return p[i]
        flags = get("flags", 0)
        if res == 0:
            # in the child: the thread is ev.tid
            child_tid = ev.tid
            if child_tid in self.threads and not (ev.thread is not None and ev.thread.comm == "<NA>"):
                if ev.thread is None:
                    ev.thread = self.threads[child_tid]
                return
            parent_tid = get("ptid", -1) if not flags & CL_CLONE_THREAD else get("pid", -1)
            caller = self.threads.get(parent_tid)
        else:
            child_tid = res
            if t is None:
                t = self._unknown_thread(ev.tid)
                ev.thread = t
            caller = t
            if child_tid in self.threads:
                return
        child = ThreadInfo(child_tid)
        if caller is not None:
            _inherit(child, caller)
        child.exe = get("exe", child.exe)
        child.args = _split_list(get("args", b""))
        if flags & CL_CLONE_THREAD:
            child.pid = caller.pid if (res != 0 and caller is not None) else get("pid", child_tid)
        else:
            child.pid = child_tid
        child.ptid = caller.tid if (res != 0 and caller is not None) else get("ptid", -1)
        if res == 0 and flags & CL_CLONE_THREAD and caller is None:
            child.ptid = get("ptid", -1)
        cwd = get("cwd")
        if cwd is not None and not (flags & CL_CLONE_THREAD):
            child.cwd = _with_slash(cwd)
        child.fdlimit = get("fdlimit", child.fdlimit)
        comm = get("comm")
        if comm is not None:
            child.comm = comm
        elif not child.comm:
            child.comm = child.exe
        cg = get("cgroups")
        if cg is not None:
            child.cgroups = _cgroups(cg)
            child.container_id = container_id_from_cgroups(child.cgroups)
        child.flags = flags
        child.uid = get("uid", child.uid)
        child.gid = get("gid", child.gid)
        child.euid, child.egid = child.uid, child.gid
        if res != 0:
            # the caller's event carries the caller's own vtid/vpid: outside a pid namespace the
            # child's are its host ids, inside one they are not known yet
            if get("vtid", -1) == ev.tid:
                child.vtid, child.vpid = child_tid, child.pid
            else:
                child.vtid = child.vpid = -1
        else:
            child.vtid = get("vtid", child.vtid)
            child.vpid = get("vpid", child.vpid)
        child.pidns_init_start_ts = get("pidns_init_start_ts", child.pidns_init_start_ts)
        if flags & CL_CLONE_THREAD:
            child.vmsize_kb = child.vmrss_kb = child.vmswap_kb = 0  # the memory is the process's
        else:
            child.vmsize_kb = get("vm_size", child.vmsize_kb)
            child.vmrss_kb = get("vm_rss", child.vmrss_kb)
            child.vmswap_kb = get("vm_swap", child.vmswap_kb)
        child.pfmajor = get("pgft_maj", 0)
        child.pfminor = get("pgft_min", 0)
        child.start_ts = ev.ts
        child.fds = {}
        if flags & CL_CLONE_THREAD or flags & CL_CLONE_FILES:
            if caller is not None:
                child.fds = caller.fds
        elif caller is not None:
            child.fds = {n: _copy_fd(f, n) for n, f in caller.fds.items()}
        child.parent = self.threads.get(child.ptid)
        self.add_thread(child)
        if child.pid != child.tid and child.main is None:
            child.main = self.threads.get(child.pid)
        if res == 0:
            ev.thread = child
            child.lastevent_code = -1

    def _on_execve_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is None or res is None or res < 0:
            return
        p = ev.params
        idx = et.EVENTS[ev.code].param_index

        def get(name, default=None):
            i = idx.get(name)
            if i is None or i >= len(p) or p[i] is None:
                return default
            return p[i]
        t.exe = get("exe", t.exe)
        t.args = _split_list(get("args", b""))
        pid = get("pid")
        if pid is not None:
            t.pid = pid
        ptid = get("ptid")
        if ptid is not None and ptid >= 0:
            t.ptid = ptid
            t.parent = self.threads.get(ptid)
        t.fdlimit = get("fdlimit", t.fdlimit)
        t.pfmajor = get("pgft_maj", t.pfmajor)
        t.pfminor = get("pgft_min", t.pfminor)
        t.vmsize_kb = get("vm_size", t.vmsize_kb)
        t.vmrss_kb = get("vm_rss", t.vmrss_kb)
        t.vmswap_kb = get("vm_swap", t.vmswap_kb)
        comm = get("comm")
        t.comm = comm if comm is not None else posixpath.basename(t.exe)
        cg = get("cgroups")
        if cg is not None:
            t.cgroups = _cgroups(cg)
            t.container_id = container_id_from_cgroups(t.cgroups)
            t.container = self.containers.get(t.container_id) if t.container_id else None
        env = get("env")
        if env is not None:
            t.env = _split_list(env)
        t.tty = get("tty", t.tty)
        t.vpgid = get("vpgid", t.vpgid)
        t.pgid = get("pgid", t.pgid)
        lu = get("loginuid")
        if lu is not None:
            t.loginuid = lu
        xflags = get("flags")
        if xflags is not None:
            xf = dict(et.flags_table("execve_flags"))
            t.exe_writable = bool(xflags & xf.get("EXE_WRITABLE", 0))
            t.exe_upper_layer = bool(xflags & xf.get("EXE_UPPER_LAYER", 0))
            t.exe_from_memfd = bool(xflags & xf.get("EXE_FROM_MEMFD", 0))
            t.exe_lower_layer = bool(xflags & xf.get("EXE_LOWER_LAYER", 0))
        t.cap_inheritable = get("cap_inheritable", t.cap_inheritable)
        t.cap_permitted = get("cap_permitted", t.cap_permitted)
        t.cap_effective = get("cap_effective", t.cap_effective)
        t.exe_ino = get("exe_ino", t.exe_ino)
        t.exe_ino_ctime = get("exe_ino_ctime", t.exe_ino_ctime)
        t.exe_ino_mtime = get("exe_ino_mtime", t.exe_ino_mtime)
        uid = get("uid")
        if uid is not None:
            t.uid = t.euid = uid
        gid = get("gid")
        if gid is not None:
            t.gid = t.egid = gid
        exepath = get("trusted_exepath")
        if exepath is None:
            fn = get("filename")
            if fn is None and t.lastevent is not None and t.lastevent.code == ev.code - 1:
                fn = self._param(t.lastevent, "filename") or self._param(t.lastevent, "pathname")
            if fn is not None:
                exepath = concatenate_paths(self._cwd(t), fn)
        t.exepath = exepath if exepath is not None else ""
        self._resolve_user(t)
        # a successful execve closes the close-on-exec fds
        if t.fds:
            for n in [n for n, f in t.fds.items() if f.flags & O_CLOEXEC and f.type in ("file", "directory")]:
                del t.fds[n]

    def _on_chdir_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is None or res is None or res < 0:
            return
        path = self._param(ev, "path")
        if path is None:
            return
        self._set_cwd(t, concatenate_paths(self._cwd(t), path))

    def _on_fchdir_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is None or res is None or res < 0:
            return
        f = t.fds.get(t.lastevent_fd)
        if f is not None and f.name:
            self._set_cwd(t, f.name)

    def _set_cwd(self, t: ThreadInfo, cwd: str) -> None:
        m = t.main if t.main is not None else t
        m.cwd = _with_slash(cwd)
        m.version += 1
        if m is not t:
            t.cwd = m.cwd

    def _on_chroot_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is not None and res is not None and res >= 0:
            path = self._param(ev, "path")
            if path is not None:
                t.root = concatenate_paths(self._cwd(t), path)

    def _on_setuid_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is None or res is None or res < 0:
            return
        uid = self._enter_param(t, ev, "uid")
        euid = self._enter_param(t, ev, "euid")
        if uid is None:
            uid = self._enter_param(t, ev, "ruid")
        if euid is not None and euid != UNKNOWN_UID:
            t.euid = euid
            t.uid = euid
        elif uid is not None and uid != UNKNOWN_UID:
            t.uid = t.euid = uid
        self._resolve_user(t)

    def _on_setgid_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is None or res is None or res < 0:
            return
        gid = self._enter_param(t, ev, "gid")
        egid = self._enter_param(t, ev, "egid")
        if gid is None:
            gid = self._enter_param(t, ev, "rgid")
        if egid is not None and egid != UNKNOWN_UID:
            t.egid = t.gid = egid
        elif gid is not None and gid != UNKNOWN_UID:
            t.gid = t.egid = gid
        self._resolve_user(t)

    def _on_capset_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is None or res is None or res < 0:
            return
        t.cap_inheritable = self._param(ev, "cap_inheritable", t.cap_inheritable)
        t.cap_permitted = self._param(ev, "cap_permitted", t.cap_permitted)
        t.cap_effective = self._param(ev, "cap_effective", t.cap_effective)

    def _on_prctl_exit(self, ev: Event, t: ThreadInfo) -> None:
        res = self._res(ev)
        if t is None or res is None or res < 0 or self._param(ev, "option") != PR_SET_CHILD_SUBREAPER:
            return
        if self._param(ev, "arg2_int", 0):
            t.flags |= CL_CHILD_SUBREAPER
        else:
            t.flags &= ~CL_CHILD_SUBREAPER

    def _on_io_tuple_exit(self, ev: Event, t: ThreadInfo) -> None:
        """UDP sendto/recvfrom carry the peer: a datagram socket takes the tuple as its name."""
        f = ev.fd
        if f is None or f.type not in ("ipv4", "ipv6"):
            return
        res = self._res(ev)
        if res is not None and res < 0:
            return
        tup = self._enter_param(t, ev, "tuple")
        if not isinstance(tup, tuple) or len(tup) != 5 or f.l4proto != "udp":
            return
        s, sp, d, dp = tup[1], tup[2], tup[3], tup[4]
        if tup[0] == AF_INET6:
            ms, md = _v4mapped(s), _v4mapped(d)
            if ms is not None and md is not None:
                s, d = ms, md
        if s in ("0.0.0.0", "::"):
            s = d  # an unbound source: libsinsp names it after the peer's address
        f.connected = True
        info = et.EVENTS[ev.code]
        if info.name.startswith("recv"):
            s, sp, d, dp = d, dp, s, sp  # the tuple is peer -> us; name it us -> peer
        if f.role == "server":
            s, sp, d, dp = d, dp, s, sp
        new = f"{s}:{sp}->{d}:{dp}"
        if new != f.name:
            f.cip, f.cport, f.sip, f.sport = s, sp, d, dp
            f.name = new
            if not f.role:
                f.role = "client"
            ev.fd_name_changed = True

    def _on_procexit(self, ev: Event, t: ThreadInfo | None) -> None:
        if t is None:
            return
        t.dead = True
        reaper = self._param(ev, "reaper_tid")
        self._reparent_children(t, reaper)
        self._pending_remove = t.tid

    def _reparent_children(self, t: ThreadInfo, reaper_tid: int | None) -> None:
        """libsinsp's rule: children of an exiting thread go to another live thread of its
        group, else to the reaper the kernel named, else to the closest subreaper ancestor, else
        to init."""
        children = [c for c in self.threads.values() if c.ptid == t.tid and c is not t]
        if not children:
            return
        new = None
        if t.pid != t.tid or True:
            for o in self.threads.values():
                if o.pid == t.pid and o is not t and not o.dead:
                    new = o
                    break
        if new is None and reaper_tid is not None and reaper_tid > 0:
            new = self.threads.get(reaper_tid)
        if new is None:
            a = t.parent
            seen = 0
            while a is not None and seen < 256:
                if a.flags & CL_CHILD_SUBREAPER and not a.dead:
                    new = a
                    break
                a = a.parent
                seen += 1
        if new is None:
            new = self.threads.get(1)
        for c in children:
            c.ptid = new.tid if new is not None else 1
            c.parent = new
            c.version += 1

    def forget_thread(self, tid: int) -> None:
        """Drop a thread whose end no event told (a live host's exit we did not see); its
        children go where an exit would send them."""
        t = self.threads.get(tid)
        if t is None:
            return
        t.dead = True
        t.version += 1
        self._reparent_children(t, None)
        del self.threads[tid]

    def resolve_user(self, t: ThreadInfo) -> None:
        """Names of a thread's uid, gid and loginuid (after a live source changed them)."""
        self._resolve_user(t)

    def _remove_thread(self, tid: int) -> None:
        t = self.threads.get(tid)
        if t is not None and t.dead:
            del self.threads[tid]

    def _on_container(self, ev: Event, t: ThreadInfo | None) -> None:
        """Container metadata events (JSON): remember the container for container.* fields."""
        self._count("container_events")
        raw = ev.params[0] if ev.params else None
        if not isinstance(raw, str):
            return
        try:
            doc = json.loads(raw)
        except ValueError:
            self._count("bad_container_events")
            return
        c = doc.get("container") if isinstance(doc, dict) else None
        if not isinstance(c, dict) or not isinstance(c.get("id"), str):
            return
        cid = c["id"][:12]
        info = {"id": cid, "full_id": c.get("full_id", c["id"]), "name": c.get("name"),
                "image": c.get("image"), "imageid": c.get("imageid"), "imagerepo": c.get("imagerepo"),
                "imagetag": c.get("imagetag"), "imagedigest": c.get("imagedigest"),
                "type": _CONTAINER_TYPES.get(c.get("type"), c.get("type")),
                "privileged": c.get("privileged"), "labels": c.get("labels") if isinstance(c.get("labels"), dict)
                else {}, "ip": c.get("ip"), "cni_json": c.get("cni_json"),
                "healthcheck": (c.get("Healthcheck") or {}).get("exe") if isinstance(c.get("Healthcheck"), dict)
                else None,
                "mounts": [(str(m.get("Source", "")), str(m.get("Destination", "")), str(m.get("Mode", "")),
                            str(bool(m.get("RW"))).lower(), str(m.get("Propagation", "")))
                           for m in c.get("Mounts") or [] if isinstance(m, dict)],
                "mounts_text": ",".join(f"{m.get('Source')}:{m.get('Destination')}:{m.get('Mode')}:"
                                        f"{str(m.get('RW')).lower()}:{m.get('Propagation')}"
                                        for m in c.get("Mounts") or [] if isinstance(m, dict)) or None}
        self.containers[cid] = info
        for th in self.threads.values():
            if th.container_id == cid:
                th.container = info
                th.version += 1

    # -- live seeding ----------------------------------------------------------------------

    def seed_from_proc(self, proc: str = "/proc", passwd: str = "/etc/passwd", group: str = "/etc/group") -> int:
        """Seed users, groups and the thread table from a live /proc; returns the thread count."""
        for u in _read_passwd(passwd):
            self.users[u.uid] = u
        for g in _read_group(group):
            self.groups[g.gid] = g
        n = 0
        try:
            pids = [int(x) for x in os.listdir(proc) if x.isdigit()]
        except OSError:
            return 0
        for pid in pids:
            try:
                tids = [int(x) for x in os.listdir(f"{proc}/{pid}/task") if x.isdigit()]
            except OSError:
                continue
            for tid in tids:
                t = read_proc_thread(proc, pid, tid)
                if t is not None:
                    self.add_thread(t, link=False)
                    n += 1
        self._relink()
        return n

    def snapshot(self) -> list[ThreadInfo]:
        """The live threads, for a capture header."""
        return [t for t in self.threads.values() if not t.dead]


def _inherit(child: ThreadInfo, parent: ThreadInfo) -> None:
    for a in ("comm", "exe", "exepath", "cwd", "env", "uid", "gid", "euid", "egid", "loginuid", "tty",
              "cgroups", "container_id", "fdlimit", "root", "sid", "vpgid", "pgid", "exe_writable",
              "exe_upper_layer", "exe_lower_layer", "exe_from_memfd", "exe_ino", "exe_ino_ctime",
              "exe_ino_mtime", "cap_permitted", "cap_effective", "cap_inheritable",
              "pidns_init_start_ts"):
        setattr(child, a, getattr(parent, a))
    child.args = list(parent.args)


def _copy_fd(f: FdInfo, num: int) -> FdInfo:
    g = FdInfo(num, f.type, f.name)
    for a in FdInfo.__slots__:
        if a not in ("num",):
            setattr(g, a, getattr(f, a))
    g.num = num
    return g


# --- /proc ---------------------------------------------------------------------------------------

def _read_passwd(path: str) -> list[B.User]:
    out = []
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                p = line.rstrip("\n").split(":")
                if len(p) >= 7 and p[2].isdigit() and p[3].isdigit():
                    out.append(B.User(int(p[2]), int(p[3]), p[0], p[5], p[6]))
    except OSError:
        pass
    return out


def _read_group(path: str) -> list[B.Group]:
    out = []
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                p = line.rstrip("\n").split(":")
                if len(p) >= 3 and p[2].isdigit():
                    out.append(B.Group(int(p[2]), p[0]))
    except OSError:
        pass
    return out


def _read(path: str, mode: str = "r") -> Any:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data if mode == "rb" else data.decode("utf-8", "surrogateescape")


def read_proc_thread(proc: str, pid: int, tid: int) -> ThreadInfo | None:
    """One thread as /proc describes it (what libscap's proc scan gathers)."""
    base = f"{proc}/{pid}/task/{tid}"
    status = _read(f"{base}/status")
    if status is None:
        return None
    st: dict[str, str] = {}
    for line in status.splitlines():
        k, _, v = line.partition(":")
        st[k] = v.strip()
    t = ThreadInfo(tid, int(st.get("Tgid", pid) or pid), int(st.get("PPid", 0) or 0))
    t.comm = st.get("Name", "")
    uids = st.get("Uid", "").split()
    gids = st.get("Gid", "").split()
    if uids:
        t.uid, t.euid = int(uids[0]), int(uids[1])
    if gids:
        t.gid, t.egid = int(gids[0]), int(gids[1])
    ns = st.get("NSpid", "").split()
    t.vtid = int(st.get("NSpid", str(tid)).split()[-1]) if ns else tid
    t.vpid = int(st.get("NStgid", str(pid)).split()[-1]) if st.get("NStgid") else pid
    for k, a in (("CapInh", "cap_inheritable"), ("CapPrm", "cap_permitted"), ("CapEff", "cap_effective")):
        if k in st:
            setattr(t, a, int(st[k], 16))
    for k, a in (("VmSize", "vmsize_kb"), ("VmRSS", "vmrss_kb"), ("VmSwap", "vmswap_kb")):
        if k in st:
            setattr(t, a, int(st[k].split()[0]))
    cmd = _read(f"{proc}/{pid}/cmdline", "rb") or b""
    argv = [x.decode("utf-8", "surrogateescape") for x in cmd.split(b"\0")]
    if argv and argv[-1] == "":
        argv.pop()
    t.exe = argv[0] if argv else t.comm
    t.args = argv[1:]
    try:
        t.exepath = os.readlink(f"{proc}/{pid}/exe")
    except OSError:
        t.exepath = ""
    try:
        t.cwd = os.readlink(f"{proc}/{pid}/cwd")
    except OSError:
        t.cwd = ""
    try:
        t.root = os.readlink(f"{proc}/{pid}/root")
    except OSError:
        t.root = ""
    env = _read(f"{proc}/{pid}/environ", "rb")
    t.env = [x.decode("utf-8", "surrogateescape") for x in env.split(b"\0") if x] if env else []
    cg = _read(f"{proc}/{pid}/cgroup") or ""
    groups = []
    for line in cg.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for sub in (parts[1] or "unified").split(","):
                groups.append(f"{sub}={parts[2]}")
    t.cgroups = groups
    lu = _read(f"{proc}/{pid}/loginuid")
    if lu and lu.strip().isdigit():
        t.loginuid = int(lu.strip())
    stat = _read(f"{base}/stat")
    if stat:
        rest = stat[stat.rfind(")") + 2:].split()
        try:
            t.pgid = int(rest[2])
            t.sid = int(rest[3])
            t.tty = int(rest[4])
            t.pfminor, t.pfmajor = int(rest[7]), int(rest[9])
            ticks = os.sysconf("SC_CLK_TCK")
            boot = _boot_time_ns(proc)
            t.start_ts = boot + int(rest[19]) * 1_000_000_000 // ticks
        except (IndexError, ValueError, OSError):
            pass
    limits = _read(f"{proc}/{pid}/limits") or ""
    for line in limits.splitlines():
        if line.startswith("Max open files"):
            v = line.split()[3]
            t.fdlimit = int(v) if v.isdigit() else 0
    t.fds = read_proc_fds(proc, pid) if tid == pid else {}
    return t


_BOOT: dict[str, int] = {}


def _boot_time_ns(proc: str) -> int:
    if proc not in _BOOT:
        stat = _read(f"{proc}/stat") or ""
        for line in stat.splitlines():
            if line.startswith("btime "):
                _BOOT[proc] = int(line.split()[1]) * 1_000_000_000
                break
        else:
            _BOOT[proc] = 0
    return _BOOT[proc]


def read_proc_fds(proc: str, pid: int) -> dict[int, FdInfo]:
    """A process's fd table from /proc/<pid>/fd (sockets named from /proc/net when possible)."""
    out: dict[int, FdInfo] = {}
    try:
        names = os.listdir(f"{proc}/{pid}/fd")
    except OSError:
        return out
    for n in names:
        if not n.isdigit():
            continue
        fd = int(n)
        try:
            target = os.readlink(f"{proc}/{pid}/fd/{n}")
        except OSError:
            continue
        if target.startswith("socket:"):
            f = FdInfo(fd, "unix", "")
            f.ino = int(target[8:-1]) if target[8:-1].isdigit() else 0
        elif target.startswith("pipe:"):
            f = FdInfo(fd, "pipe", "")
        elif target.startswith("anon_inode:"):
            kind = target[11:].strip("[]")
            f = FdInfo(fd, {"eventfd": "event", "eventpoll": "eventpoll", "signalfd": "signalfd",
                            "inotify": "inotify", "timerfd": "timerfd", "bpf-prog": "bpf", "bpf-map": "bpf",
                            "userfaultfd": "userfaultfd", "io_uring": "io_uring", "pidfd": "pidfd"}
                       .get(kind, "unknown"), target)
        elif target.startswith("/memfd:"):
            f = FdInfo(fd, "memfd", target[1:])
        else:
            typ = "directory" if os.path.isdir(target) else "file"
            f = FdInfo(fd, typ, target, nameraw=target)
        f.pid = pid
        out[fd] = f
    return out
