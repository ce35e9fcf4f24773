"""The event model every source produces and every consumer reads.

An `Event` is one syscall event (enter or exit, as recorded) or one event of another source
(`k8s_audit`, generic JSON) with its payload. After the state engine it carries the resolved
`thread` (process context) and `fd` (file descriptor context), which is what Falco's fields
(`proc.name`, `fd.name`, `user.name`, ...) read. The rules engine reads only this model: it never
knows whether an event came from a capture file, the live kernel, the bus or the API.

Ownership: this module is the contract between ingest (producers) and rules (consumers). Add
attributes additively; keep `__slots__` (the rules engine reads millions of these per second).
"""

from __future__ import annotations

from typing import Any

# Sources Tiercel knows natively.
SYSCALL = "syscall"
K8S_AUDIT = "k8s_audit"
INTERNAL = "internal"

# Direction markers, as sysdig prints them.
ENTER = ">"
EXIT = "<"


class FdInfo:
    """One entry of a thread's fd table (libsinsp's fdinfo), or a snapshot of it."""

    __slots__ = (
        "num",       # fd number
        "type",      # fd type name: file, directory, ipv4, ipv6, unix, pipe, event, signalfd,
                     # eventpoll, inotify, timerfd, netlink, memfd, bpf, userfaultfd, io_uring, ...
        "name",      # fd.name: path for files; "cip:cport->sip:sport" for sockets; "" unknown
        "nameraw",   # fd.nameraw: the path as the process passed it
        "flags",     # open flags (PPM values)
        "mode",      # open mode
        "dev",       # device number
        "ino",       # inode number
        "l4proto",   # "tcp" | "udp" | "icmp" | "raw" | "" for sockets
        "cip", "cport", "sip", "sport",  # socket tuple: client/server ip (str) and port (int)
        "is_server",  # the local end is the server side (accepted/listening socket)
        "connected",  # connected socket
        "pid",        # owning process pid (for snapshots)
        "usrc", "udst",  # unix sockets: kernel pointers of the two ends (0 unknown)
        "role",       # sockets: "client", "server", or "" while neither (libsinsp's role)
    )

    def __init__(self, num: int = -1, type: str = "", name: str = "", *, nameraw: str = "", flags: int = 0,
                 mode: int = 0, dev: int = 0, ino: int = 0, l4proto: str = "", cip: Any = None,
                 cport: Any = None, sip: Any = None, sport: Any = None, is_server: bool = False,
                 connected: bool = False, pid: int = 0, usrc: int = 0, udst: int = 0,
                 role: str | None = None):
        self.num = num
        self.type = type
        self.name = name
        self.nameraw = nameraw
        self.flags = flags
        self.mode = mode
        self.dev = dev
        self.ino = ino
        self.l4proto = l4proto
        self.cip = cip
        self.cport = cport
        self.sip = sip
        self.sport = sport
        self.is_server = is_server
        self.connected = connected
        self.pid = pid
        self.usrc = usrc
        self.udst = udst
        self.role = role if role is not None else ("server" if is_server else "")

    def __repr__(self) -> str:
        return f"FdInfo({self.num}, {self.type!r}, {self.name!r})"


_new = object.__new__


def path_fd(num: int, type: str, name: str, nameraw: str, flags: int, mode: int, dev: int, ino: int,
            pid: int) -> FdInfo:
    """A file or directory fd, as `FdInfo(num, type, name, nameraw=..., ..., pid=...)` makes it,
    for the state engine's hottest path (every open): positional, so none of the constructor's
    keyword matching, which costs more than the object (measured: ~250 ns against ~550 ns).
    Sets every slot: a slot added to FdInfo must be added here (tests compare the two)."""
    f = _new(FdInfo)
    f.num = num
    f.type = type
    f.name = name
    f.nameraw = nameraw
    f.flags = flags
    f.mode = mode
    f.dev = dev
    f.ino = ino
    f.l4proto = ""
    f.cip = None
    f.cport = None
    f.sip = None
    f.sport = None
    f.is_server = False
    f.connected = False
    f.pid = pid
    f.usrc = 0
    f.udst = 0
    f.role = ""
    return f


class ThreadInfo:
    """A thread of the thread table (libsinsp's threadinfo), or a snapshot of one.

    `parent` links to the parent thread's info (None when unknown); ancestors are reached by
    following it. On the bus a thread travels as a snapshot with its ancestor chain.
    """

    __slots__ = (
        "tid", "pid", "ptid", "sid", "vpgid", "vtid", "vpid",
        "comm",      # proc.name (at most 16 chars, as the kernel keeps it)
        "exe",       # proc.exe: argv[0]
        "exepath",   # proc.exepath: full path of the executable
        "args",      # list[str]: argv[1:]
        "cwd",
        "env",       # list[str]: "K=V"
        "uid", "gid", "euid", "egid", "loginuid",
        "user", "group", "loginname",  # resolved names, None when unknown
        "tty",
        "flags",     # PPM_CL_* clone flags
        "start_ts",  # ns since epoch when the thread started (clone/fork), 0 unknown
        "exe_writable", "exe_upper_layer", "exe_lower_layer", "exe_from_memfd",
        "exe_ino", "exe_ino_ctime", "exe_ino_mtime",
        "cap_permitted", "cap_effective", "cap_inheritable",  # int bitmasks
        "cgroups",   # list[str]: "subsys=path"
        "container_id",  # "" for host processes
        "pidns_init_start_ts",
        "fdlimit", "vmsize_kb", "vmrss_kb", "vmswap_kb", "pfmajor", "pfminor",
        "parent",    # ThreadInfo | None
        "fds",       # dict[int, FdInfo] (state engine only; empty in snapshots)
        "dead",      # the thread exited (kept briefly for reparenting)
        "root",      # root directory (chroot)
        "pgid",      # process group id, -1 unknown
        "homedir", "shell",  # of the user (user.homedir, user.shell), None when unknown
        "main",      # ThreadInfo of the process leader (tid == pid); itself for a leader
        "container",  # dict of the container's metadata (name, image, ...) or None
        # state-engine scratch (not carried in snapshots):
        "lastevent_fd",    # fd of the last enter event (libsinsp's m_lastevent_fd)
        "lastevent_code",  # code of the last enter event, -1 after its exit
        "lastevent",       # the last enter event (old captures split params across enter/exit)
        "version",   # bumped by the state engine on every change (wire snapshots are per version)
        "nfds",      # snapshots: the size of the fd table they were taken from (else None)
    )

    def __init__(self, tid: int, pid: int | None = None, ptid: int = 0, **kw: Any):
        self.tid = tid
        self.pid = tid if pid is None else pid
        self.ptid = ptid
        self.sid = kw.pop("sid", -1)
        self.vpgid = kw.pop("vpgid", -1)
        self.vtid = kw.pop("vtid", -1)
        self.vpid = kw.pop("vpid", -1)
        self.comm = kw.pop("comm", "")
        self.exe = kw.pop("exe", "")
        self.exepath = kw.pop("exepath", "")
        self.args = kw.pop("args", [])
        self.cwd = kw.pop("cwd", "")
        self.env = kw.pop("env", [])
        self.uid = kw.pop("uid", 0xFFFFFFFF)
        self.gid = kw.pop("gid", 0xFFFFFFFF)
        self.euid = kw.pop("euid", self.uid)
        self.egid = kw.pop("egid", self.gid)
        self.loginuid = kw.pop("loginuid", 0xFFFFFFFF)
        self.user = kw.pop("user", None)
        self.group = kw.pop("group", None)
        self.loginname = kw.pop("loginname", None)
        self.tty = kw.pop("tty", 0)
        self.flags = kw.pop("flags", 0)
        self.start_ts = kw.pop("start_ts", 0)
        self.exe_writable = kw.pop("exe_writable", False)
        self.exe_upper_layer = kw.pop("exe_upper_layer", False)
        self.exe_lower_layer = kw.pop("exe_lower_layer", False)
        self.exe_from_memfd = kw.pop("exe_from_memfd", False)
        self.exe_ino = kw.pop("exe_ino", 0)
        self.exe_ino_ctime = kw.pop("exe_ino_ctime", 0)
        self.exe_ino_mtime = kw.pop("exe_ino_mtime", 0)
        self.cap_permitted = kw.pop("cap_permitted", 0)
        self.cap_effective = kw.pop("cap_effective", 0)
        self.cap_inheritable = kw.pop("cap_inheritable", 0)
        self.cgroups = kw.pop("cgroups", [])
        self.container_id = kw.pop("container_id", "")
        self.pidns_init_start_ts = kw.pop("pidns_init_start_ts", 0)
        self.fdlimit = kw.pop("fdlimit", 0)
        self.vmsize_kb = kw.pop("vmsize_kb", 0)
        self.vmrss_kb = kw.pop("vmrss_kb", 0)
        self.vmswap_kb = kw.pop("vmswap_kb", 0)
        self.pfmajor = kw.pop("pfmajor", 0)
        self.pfminor = kw.pop("pfminor", 0)
        self.parent = kw.pop("parent", None)
        self.fds = kw.pop("fds", {})
        self.dead = kw.pop("dead", False)
        self.root = kw.pop("root", "")
        self.pgid = kw.pop("pgid", -1)
        self.homedir = kw.pop("homedir", None)
        self.shell = kw.pop("shell", None)
        self.main = kw.pop("main", None)
        self.container = kw.pop("container", None)
        self.lastevent_fd = -1
        self.lastevent_code = -1
        self.lastevent = None
        self.version = 0
        self.nfds = None
        if kw:
            raise TypeError(f"unknown ThreadInfo attributes: {', '.join(kw)}")

    def ancestor(self, level: int) -> ThreadInfo | None:
        """Level 0 is this thread's process, 1 the parent, 2 the grandparent, ..."""
        t: ThreadInfo | None = self
        for _ in range(level):
            if t is None:
                return None
            t = t.parent
        return t

    def __repr__(self) -> str:
        return f"ThreadInfo(tid={self.tid}, pid={self.pid}, comm={self.comm!r})"


class Event:
    """One event. `params` are the decoded parameters in event-table order (trust their count,
    not the table: old captures carry fewer). `payload` holds the parsed JSON of non-syscall
    sources (a k8s audit event is its audit JSON object)."""

    __slots__ = (
        "num",      # evt.num: 1-based event number within the stream
        "ts",       # ns since epoch
        "tid",      # thread id (-1/0 for events without one)
        "cpu",      # cpu id, -1 unknown
        "code",     # event code (PPME_*); even = enter, odd = exit
        "params",   # list of decoded parameter values
        "source",   # syscall, k8s_audit, ...
        "payload",  # parsed JSON (non-syscall sources), else None
        "thread",   # ThreadInfo | None, resolved by the state engine
        "fd",       # FdInfo | None, the fd the event operates on
        "fdnum",    # fd number the event refers to, -1 when none
        "host",     # host the event was observed on
        "seq",      # per-host sequence number on the bus (0 before publishing)
        "extra",    # dict of state-engine facts for fields with no better home, or None
        "dump_flags",  # .scap EVF dump flags (1 = state only: keep state, hide from the user)
        "fdrel",    # the event creates, uses or destroys an fd (fd.* fields apply)
        "fd_name_changed",  # this event changed its fd's name (fd.name_changed)
        "latency",  # exit events: ns since the matching enter event, 0 unknown
    )

    def __init__(self, num: int, ts: int, tid: int, code: int, params: list[Any] | None = None, *,
                 source: str = SYSCALL, payload: Any = None, cpu: int = -1):
        self.num = num
        self.ts = ts
        self.tid = tid
        self.cpu = cpu
        self.code = code
        self.params = params if params is not None else []
        self.source = source
        self.payload = payload
        self.thread: ThreadInfo | None = None
        self.fd: FdInfo | None = None
        self.fdnum = -1
        self.host = ""
        self.seq = 0
        self.extra: dict[str, Any] | None = None
        self.dump_flags = 0
        self.fdrel = False
        self.fd_name_changed = False
        self.latency = 0

    @property
    def is_enter(self) -> bool:
        return self.code & 1 == 0

    @property
    def dir(self) -> str:
        return ENTER if self.code & 1 == 0 else EXIT

    def __repr__(self) -> str:
        return f"Event(num={self.num}, code={self.code}, tid={self.tid}, source={self.source!r})"


def __getattr__(name: str) -> Any:
    """The wire codec lives in `tiercel.common.wire`; its entry points are offered here too."""
    if name in ("encode_events", "encode_event", "decode_events"):
        from tiercel.common import wire

        return getattr(wire, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

