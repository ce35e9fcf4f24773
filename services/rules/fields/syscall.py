"""Syscall-source fields (`evt.*`, `proc.*`, `thread.*`, `fd.*`, `fdlist.*`, `user.*`, `group.*`,
`container.*`, `fs.path.*`), registered into the field catalog.

Every extractor reads what the state engine left on the event (`evt.thread`, `evt.fd`,
`evt.fdnum`, ...): attribute access, no parsing, so the rules engine keeps its rate. Values and
missing values follow libsinsp as sysdig 0.29 prints them on the conformance captures, with
Falco's current names (and sysdig's older names as aliases where they differ).
"""

from __future__ import annotations

import ipaddress
import time
from functools import lru_cache
from typing import Any

from tiercel.common import eventtable as et
from tiercel.common.event import Event, FdInfo, ThreadInfo
from tiercel.rules.fields import catalog as C
from tiercel.rules.fields import render as R

_FIELD_ATTRS = set(C.Field.__dataclass_fields__)
_EVENTS = et.EVENTS
_ANC_MAX = 256  # walk limit: a corrupt parent chain never loops forever


def _reg(name: str, type_: str, desc: str, fn, **kw) -> C.Field:
    if name in _INLINE:
        kw.setdefault("inline", _INLINE[name])
    if name in _PER_CODE:
        kw.setdefault("per_code", _PER_CODE[name])
    if name in _PARSE_ARG:
        kw.setdefault("parse_arg", _PARSE_ARG[name])
    kw = {k: v for k, v in kw.items() if k in _FIELD_ATTRS}
    return C.register(C.Field(name, type_, desc, "syscall", fn, **kw))


# --- helpers ----------------------------------------------------------------------------------

@lru_cache(maxsize=65536)
def _ip(s: str):
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        return None


def _main(t: ThreadInfo) -> ThreadInfo:
    m = t.main
    return m if m is not None else t


def _ancestor(t: ThreadInfo | None, level: int) -> ThreadInfo | None:
    """Level 0: the process (main thread), 1 its parent, ... (libsinsp walks from the main thread)."""
    if t is None:
        return None
    a: ThreadInfo | None = _main(t)
    for _ in range(level):
        if a is None:
            return None
        a = a.parent
    return a


def _ancestors(t: ThreadInfo | None) -> list[ThreadInfo]:
    out: list[ThreadInfo] = []
    if t is None:
        return out
    a = _main(t).parent
    while a is not None and len(out) < _ANC_MAX:
        out.append(a)
        a = a.parent
    return out


def _level(arg: Any) -> int | None:
    if arg is None:
        return None
    try:
        n = int(arg)
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def _cmdline(t: ThreadInfo) -> str:
    return t.comm + (" " + " ".join(t.args) if t.args else "")


def _exeline(t: ThreadInfo) -> str:
    return t.exe + " " + " ".join(t.args)


def _xid(v: int) -> int | None:
    return v if v is not None and v >= 0 else None


# --- evt.* ------------------------------------------------------------------------------------

def _evt_type(e: Event, a=None) -> str | None:
    code = e.code
    if code == et.PPME_GENERIC_E or code == et.PPME_GENERIC_X:
        p = e.params
        return et.syscall_name(p[0] if p and type(p[0]) is int else 0)
    info = _EVENTS[code] if code < len(_EVENTS) else None
    return info.name if info is not None else None


_PROCEXIT = et.codes("procexit")


def _syscall_type(e: Event, a=None) -> str | None:
    code = e.code
    if code < len(_EVENTS) and (_EVENTS[code].category & et.EC_SYSCALL or code in _PROCEXIT):
        return _evt_type(e)
    return None


def _evt_dir(e: Event, a=None) -> str:
    return ">" if e.code & 1 == 0 else "<"


_IO_CATS = {et.EC["EC_IO_READ"], et.EC["EC_IO_WRITE"], et.EC["EC_IO_OTHER"]}
_IPC_TYPES = {"unix", "pipe", "event", "signalfd", "eventpoll", "inotify", "timerfd", "netlink", "bpf",
              "userfaultfd", "io_uring", "memfd", "pidfd"}


def _evt_category(e: Event, a=None) -> str | None:
    info = et.info(e.code)
    if info is None:
        return None
    if R.is_generic(e.code):
        return _generic_category(_evt_type(e))
    kind = info.category & et.EC_KIND_MASK
    if kind in _IO_CATS:
        f = e.fd
        if f is None:
            return "unknown"
        if f.type in ("file", "directory"):
            return "file"
        if f.type in ("ipv4", "ipv6"):
            return "net"
        if f.type in _IPC_TYPES:
            return "ipc"
        return "unknown"
    return et.CATEGORY_NAMES.get(kind, "unknown")


@lru_cache(maxsize=1024)
def _generic_category(name: str | None) -> str:
    """A syscall recorded as a generic event: the category of its dedicated event, if any."""
    for c in et.codes(name or ""):
        if c > 1:
            return et.CATEGORY_NAMES.get(et.info(c).category & et.EC_KIND_MASK, "unknown")
    return "other"


def _res_value(e: Event) -> int | None:
    """The return value: the first exit parameter when it is named res or fd (libsinsp's rule)."""
    if e.code & 1 == 0 or not e.params:
        return None
    info = _EVENTS[e.code] if e.code < len(_EVENTS) else None
    if info is None or not info.params:
        return None
    n = info.params[0].name
    if n != "res" and n != "fd":
        return None
    v = e.params[0]
    if type(v) is not int:
        if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], int):  # PT_DYN res_or_fd
            return v[1]
        return None
    return v


def _evt_res(e: Event, a=None) -> str | None:
    r = _res_value(e)
    if r is None:
        return None
    if r >= 0:
        return "SUCCESS"
    return et.errno_name(-r) or str(r)


def _evt_rawres(e: Event, a=None) -> int | None:
    return _res_value(e)


def _evt_failed(e: Event, a=None) -> bool:
    r = _res_value(e)
    return r is not None and r < 0


def _param_index(e: Event, name: str) -> int | None:
    info = _EVENTS[e.code] if e.code < len(_EVENTS) else None
    if info is None:
        return None
    i = info.param_index.get(name)
    if i is None or i >= len(e.params):
        return None
    return i


def _evt_arg(e: Event, a=None) -> str | None:
    if a is None:
        return None
    if isinstance(a, int) or (isinstance(a, str) and a.isdigit()):
        i = int(a)
    else:
        i = _param_index(e, a)
        if i is None:
            return None
    return R.arg_text(e, i)


def _evt_rawarg(e: Event, a=None) -> Any:
    if a is None:
        return None
    if isinstance(a, int) or (isinstance(a, str) and a.isdigit()):
        i = int(a)
        if i >= len(e.params):
            return None
    else:
        i = _param_index(e, a)
        if i is None:
            return None
    v = e.params[i]
    if isinstance(v, tuple):
        info = _EVENTS[e.code]
        p = info.params[i] if i < len(info.params) else None
        if p is not None and p.type == "PT_SOCKTUPLE":
            return R.tuple_text(v)
        if p is not None and p.type == "PT_SOCKADDR":
            return R.sockaddr_text(v)
        if p is not None and p.type == "PT_DYN":
            return v[1]
        return str(v)
    return v


def _evt_args(e: Event, a=None) -> str:
    return R.args_text(e)


def _evt_info(e: Event, a=None) -> str:
    return R.args_text(e)


_BUF_NAMES = ("data", "buf")


def _evt_buffer(e: Event, a=None) -> bytes | None:
    for n in _BUF_NAMES:
        i = _param_index(e, n)
        if i is not None:
            v = e.params[i]
            return v if isinstance(v, bytes) else None
    return None


def _evt_buflen(e: Event, a=None) -> int | None:
    """The byte count of I/O events: the return value of their exit."""
    if e.code & 1 == 0 or e.fd is None:
        return None
    info = et.info(e.code)
    if info is None or (info.category & et.EC_KIND_MASK) not in _IO_CATS:
        return None
    r = _res_value(e)
    return r if r is not None and r >= 0 else None


def _flag(e: Event, mask: int) -> bool:
    info = et.info(e.code)
    return bool(info and info.flags & mask)


def _evt_is_io(e: Event, a=None) -> bool:
    return _flag(e, et.EF_READS_FROM_FD | et.EF_WRITES_TO_FD)


def _evt_is_io_read(e: Event, a=None) -> bool:
    return _flag(e, et.EF_READS_FROM_FD)


def _evt_is_io_write(e: Event, a=None) -> bool:
    return _flag(e, et.EF_WRITES_TO_FD)


def _evt_io_dir(e: Event, a=None) -> str | None:
    if _flag(e, et.EF_READS_FROM_FD):
        return "read"
    if _flag(e, et.EF_WRITES_TO_FD):
        return "write"
    return None


def _evt_is_wait(e: Event, a=None) -> bool:
    return _flag(e, et.EF_WAITS)


def _evt_is_syslog(e: Event, a=None) -> bool:
    f = e.fd
    return f is not None and _evt_is_io_write(e) and f.name == "/dev/log"


_OPEN_NAMES = frozenset({"open", "openat", "openat2", "creat", "open_by_handle_at"})
_FF = dict(et.flags_table("file_flags"))


def _open_flags_index() -> dict[int, int | None]:
    """Exit codes of the open family -> index of their `flags` parameter (None: no such param)."""
    out: dict[int, int | None] = {}
    for ev in et.EVENTS:
        if ev.name in _OPEN_NAMES and ev.code & 1:
            out[ev.code] = ev.param_index.get("flags")
    return out


_OPEN_FLAGS_INDEX = _open_flags_index()
_CREAT_CODES = frozenset(ev.code for ev in et.EVENTS if ev.name == "creat")
_NOT_OPEN = -1


def _open_flags(e: Event) -> int | None:
    i = _OPEN_FLAGS_INDEX.get(e.code, _NOT_OPEN)  # once per event code, not et.info() per event
    if i == _NOT_OPEN:
        return None
    v = None
    if i is not None and i < len(e.params):
        v = e.params[i]
    if v is None and e.fd is not None and e.fd.flags:
        v = e.fd.flags
    if v is None and e.code in _CREAT_CODES:
        return _FF["O_CREAT"] | _FF["O_WRONLY"] | _FF["O_TRUNC"]
    return v if isinstance(v, int) else None


def _evt_is_open_read(e: Event, a=None) -> bool:
    fl = _open_flags(e)
    return fl is not None and bool(fl & _FF["O_RDONLY"])


def _evt_is_open_write(e: Event, a=None) -> bool:
    fl = _open_flags(e)
    return fl is not None and bool(fl & _FF["O_WRONLY"])


def _evt_is_open_exec(e: Event, a=None) -> bool:
    fl = _open_flags(e)
    if fl is None or not fl & (_FF["O_CREAT"] | _FF.get("O_TMPFILE", 0)):
        return False
    i = _param_index(e, "mode")
    mode = e.params[i] if i is not None else None
    return isinstance(mode, int) and bool(mode & 0o111)


def _evt_is_open_create(e: Event, a=None) -> bool:
    fl = _open_flags(e)
    return fl is not None and bool(fl & _FF.get("O_F_CREATED", 0))


def _local_time(ns: int) -> time.struct_time:
    return time.localtime(ns // 1_000_000_000)


def _evt_time(e: Event, a=None) -> str:
    return time.strftime("%H:%M:%S", _local_time(e.ts)) + f".{e.ts % 1_000_000_000:09d}"


def _evt_time_s(e: Event, a=None) -> str:
    return time.strftime("%H:%M:%S", _local_time(e.ts))


def _evt_time_iso(e: Event, a=None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(e.ts // 1_000_000_000)) + \
        f".{e.ts % 1_000_000_000:09d}Z"


def _evt_datetime(e: Event, a=None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", _local_time(e.ts)) + f".{e.ts % 1_000_000_000:09d}"


def _evt_datetime_s(e: Event, a=None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", _local_time(e.ts))


def _evt_latency(e: Event, a=None) -> int | None:
    return e.latency if e.code & 1 else 0


def _abspath(e: Event, a=None) -> str | None:
    """evt.abspath: the path of *at() calls made absolute against their dirfd."""
    info = et.info(e.code)
    if info is None:
        return None
    for i, p in enumerate(info.params):
        if p.type == "PT_FSRELPATH" and i < len(e.params) and isinstance(e.params[i], str):
            _text, res = R.render_value(e, p, e.params[i])
            return res or e.params[i]
    return None


# --- thread / proc ----------------------------------------------------------------------------

def _th(attr: str):
    def f(e: Event, a=None):
        t = e.thread
        return getattr(t, attr) if t is not None else None
    f.__name__ = f"thread_{attr}"
    return f


def _mth(attr: str):
    """An attribute of the process (its main thread)."""
    def f(e: Event, a=None):
        t = e.thread
        return getattr(_main(t), attr) if t is not None else None
    f.__name__ = f"proc_{attr}"
    return f


def _xth(attr: str):
    """An id attribute; negative ids (unknown) are missing."""
    def f(e: Event, a=None):
        t = e.thread
        if t is None:
            return None
        v = getattr(t, attr)
        return v if v >= 0 else None
    f.__name__ = f"thread_{attr}"
    return f


def _proc_name(e: Event, a=None):
    t = e.thread
    return t.comm if t is not None else None


def _proc_pid(e: Event, a=None):
    t = e.thread
    return t.pid if t is not None else None


def _thread_tid(e: Event, a=None):
    t = e.thread
    return t.tid if t is not None else None


def _proc_exe(e: Event, a=None):
    t = e.thread
    return t.exe if t is not None else None


def _proc_exepath(e: Event, a=None):
    t = e.thread
    return t.exepath if t is not None else None


def _proc_args(e: Event, a=None):
    t = e.thread
    return " ".join(t.args) if t is not None else None


def _proc_cmdline(e: Event, a=None):
    t = e.thread
    return _cmdline(t) if t is not None else None


def _proc_exeline(e: Event, a=None):
    t = e.thread
    return _exeline(t) if t is not None else None


def _proc_cwd(e: Event, a=None):
    t = e.thread
    return _main(t).cwd if t is not None else None


def _proc_env(e: Event, a=None):
    t = e.thread
    if t is None:
        return None
    env = _main(t).env or t.env
    if a is None:
        return " ".join(env)
    pre = f"{a}="
    for kv in env:
        if kv.startswith(pre):
            return kv[len(pre):]
    return None


def _proc_ppid(e: Event, a=None):
    t = e.thread
    return _xid(_main(t).ptid) if t is not None else None


def _parent(e: Event) -> ThreadInfo | None:
    t = e.thread
    return t.parent if t is not None else None


def _p(attr_fn):
    def f(e: Event, a=None):
        p = _parent(e)
        return attr_fn(p) if p is not None else None
    return f


def _anc(attr_fn):
    def f(e: Event, a=None):
        if a is None:
            return [attr_fn(x) for x in _ancestors(e.thread)]
        n = _level(a)
        if n is None:
            return None
        x = _ancestor(e.thread, n)
        return attr_fn(x) if x is not None else None
    return f


def _proc_duration(e: Event, a=None):
    t = e.thread
    if t is None:
        return None
    st = t.start_ts
    return e.ts - st if st else None


def _nfds(t: ThreadInfo) -> int:
    return t.nfds if t.nfds is not None else len(t.fds)


def _proc_fdopencount(e: Event, a=None):
    t = e.thread
    return _nfds(t) if t is not None else None


def _proc_fdusage(e: Event, a=None):
    t = e.thread
    if t is None or not t.fdlimit:
        return None
    return _nfds(t) * 100.0 / t.fdlimit


def _thread_ismain(e: Event, a=None):
    t = e.thread
    return t.tid == t.pid if t is not None else None


def _thread_cgroups(e: Event, a=None):
    t = e.thread
    return " ".join(t.cgroups) if t is not None else None


def _thread_cgroup(e: Event, a=None):
    t = e.thread
    if t is None or a is None:
        return None
    pre = f"{a}="
    for cg in t.cgroups:
        if cg.startswith(pre):
            return cg[len(pre):]
    return None


def _leader(t: ThreadInfo | None, attr: str) -> ThreadInfo | None:
    """The session / process-group leader: the ancestor whose pid is the id, else the eldest
    ancestor sharing it (libsinsp's walk, which starts at the process itself)."""
    if t is None:
        return None
    m = _main(t)
    want = getattr(m, attr)
    if want >= 0 and (m.vpid == want or m.pid == want):
        return m
    best = m
    a = m.parent
    n = 0
    while a is not None and n < _ANC_MAX:
        if getattr(a, attr) != want:
            break
        best = a
        if want >= 0 and (a.vpid == want or a.pid == want):
            return a
        a = a.parent
        n += 1
    return best


def _sname(e: Event, a=None):
    x = _leader(e.thread, "sid")
    return x.comm if x is not None else None


def _vpgid_attr(attr: str):
    def f(e: Event, a=None):
        x = _leader(e.thread, "vpgid")
        return getattr(x, attr) if x is not None else None
    return f


def _sid_attr(attr: str):
    def f(e: Event, a=None):
        x = _leader(e.thread, "sid")
        return getattr(x, attr) if x is not None else None
    return f


def _is_leader(attr: str):
    def f(e: Event, a=None):
        t = e.thread
        if t is None:
            return None
        m = _main(t)
        v = getattr(m, attr)
        return v >= 0 and (v == m.vpid or v == m.pid)
    return f


_CAP_NAMES = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
              "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
              "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
              "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
              "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
              "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
              "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
              "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
              "CAP_CHECKPOINT_RESTORE"]


@lru_cache(maxsize=4096)
def caps_text(mask: int) -> str:
    return " ".join(n for i, n in enumerate(_CAP_NAMES) if mask >> i & 1)


def _caps(attr: str):
    def f(e: Event, a=None):
        t = e.thread
        return caps_text(getattr(t, attr)) if t is not None else None
    return f


def _exe_ino_ctime_duration(base: str):
    def f(e: Event, a=None):
        t = e.thread
        if t is None:
            return None
        m = _main(t)
        start = m.start_ts if base == "proc" else m.pidns_init_start_ts
        if not m.exe_ino_ctime or not start or start < m.exe_ino_ctime:
            return None
        return start - m.exe_ino_ctime
    return f


# --- user / group / container -----------------------------------------------------------------

def _loginuid(e: Event, a=None):
    t = e.thread
    if t is None:
        return None
    v = t.loginuid
    return -1 if v == 0xFFFFFFFF else v


def _container_id(e: Event, a=None):
    t = e.thread
    if t is None:
        return None
    return t.container_id or "host"


def _container_attr(key: str, host_value: Any = None):
    def f(e: Event, a=None):
        t = e.thread
        if t is None:
            return None
        if not t.container_id:
            return host_value
        info = t.container
        if not info:
            return None
        return info.get(key)
    return f


def _container_label(e: Event, a=None):
    t = e.thread
    if t is None or not t.container or a is None:
        return None
    labels = t.container.get("labels") or {}
    v = labels.get(a)
    return v if isinstance(v, str) else None


def _container_labels(e: Event, a=None):
    t = e.thread
    if t is None or not t.container:
        return None
    labels = t.container.get("labels") or {}
    return ", ".join(f"{k}:{v}" for k, v in labels.items()) or None


def _mount_field(idx: int | None):
    """container.mount*[arg]: arg is a mount index, or a path matched against the mount's source
    (dest for container.mount.source)."""
    def f(e: Event, a=None):
        t = e.thread
        if t is None or not t.container or a is None:
            return None
        mounts = t.container.get("mounts") or []
        m = None
        if isinstance(a, int) or (isinstance(a, str) and a.isdigit()):
            i = int(a)
            m = mounts[i] if i < len(mounts) else None
        else:
            key = 1 if idx == 0 else 0
            m = next((x for x in mounts if x[key] == a or _glob(a, x[key])), None)
        if m is None:
            return None
        return ":".join(m) if idx is None else m[idx]
    return f


def _glob(pat: str, s: str) -> bool:
    import fnmatch
    return any(c in pat for c in "*?[") and fnmatch.fnmatchcase(s, pat)


def _k8s_label(label: str):
    def f(e: Event, a=None):
        t = e.thread
        if t is None or not t.container:
            return None
        v = (t.container.get("labels") or {}).get(label)
        return v if isinstance(v, str) else None
    return f


# --- fd.* -------------------------------------------------------------------------------------

_NULL_TYPECHAR: dict[str, str] = {}
for _n, _c in (("open", "f"), ("openat", "f"), ("openat2", "f"), ("creat", "f"), ("socket", "4"),
               ("accept", "4"), ("accept4", "4"), ("pipe", "p"), ("pipe2", "p"), ("eventfd", "e"),
               ("eventfd2", "e"), ("signalfd", "s"), ("signalfd4", "s"), ("timerfd_create", "t"),
               ("inotify_init", "i"), ("inotify_init1", "i")):
    _NULL_TYPECHAR[_n] = _c

_CREATOR_NAME_PARAM = {"open", "openat", "openat2", "creat", "open_by_handle_at"}


def _null_fd_name(e: Event) -> str | None:
    """The name of an fd the event did not get (failed open/connect...), as libsinsp shows it."""
    if e.code & 1 == 0:
        return None
    info = et.info(e.code)
    if info.name in _CREATOR_NAME_PARAM:
        i = info.param_index.get("name")
        if i is None:
            i = info.param_index.get("path")
        if i is None or i >= len(e.params):
            return ""
        v = e.params[i]
        text, res = R.render_value(e, info.params[i], v)
        return res or text
    if info.name == "connect":
        i = info.param_index.get("tuple")
        if i is None or i >= len(e.params):
            return ""
        return R.tuple_text(e.params[i]) if e.params[i] is not None else ""
    return ""


def _fd_num(e: Event, a=None):
    return e.fdnum if e.fdrel else None


_CONNECT_X = frozenset(c for c in et.codes("connect") if c & 1)


def _fd_name(e: Event, a=None):
    f = e.fd
    if f is not None:
        if e.code in _CONNECT_X and e.params and type(e.params[0]) is int and e.params[0] < 0:
            return _null_fd_name(e)  # a failed connect names the tuple it tried
        return f.name
    if not e.fdrel:
        return None
    return _null_fd_name(e)


def _fd_nameraw(e: Event, a=None):
    f = e.fd
    if f is not None:
        return f.nameraw or f.name
    if not e.fdrel or e.code & 1 == 0:
        return None
    info = et.info(e.code)
    if info.name in _CREATOR_NAME_PARAM:
        i = _param_index(e, "name")
        return e.params[i] if i is not None else ""
    return _null_fd_name(e)


def _fd_type(e: Event, a=None):
    f = e.fd
    if f is None or f.type == "unknown":
        return None
    return f.type


def _fd_typechar(e: Event, a=None):
    f = e.fd
    if f is not None:
        return R.fd_typechar(f)
    if not e.fdrel:
        return None
    info = et.info(e.code)
    return _NULL_TYPECHAR.get(info.name, "o")


def _dirname(name: str) -> str:
    pos = name.rfind("/")
    if pos != -1 and pos != 0:
        return name[:pos] if pos < len(name) - 1 else name
    return "/"


def _fd_directory(e: Event, a=None):
    f = e.fd
    if f is None:
        if not e.fdrel:
            return None
        n = _null_fd_name(e)
        return None if n is None else _dirname(n)
    if f.type == "directory":
        return f.name
    if f.type != "file":
        return None
    return _dirname(f.name)


def _fd_filename(e: Event, a=None):
    f = e.fd
    if f is None:
        if not e.fdrel or e.code & 1:
            return None
        info = et.info(e.code)
        if info.name not in _CREATOR_NAME_PARAM or not e.params:
            return None
        v = e.params[0]
        if not isinstance(v, str):
            return None
        pos = v.rfind("/")
        return v[pos + 1:] if pos != -1 and pos < len(v) - 1 else v
    if f.type != "file":
        return None
    n = f.name
    pos = n.rfind("/")
    if pos != -1:
        return n[pos + 1:] if pos < len(n) - 1 else None
    return n


def _sock(f: FdInfo | None) -> bool:
    return f is not None and f.type in ("ipv4", "ipv6") and bool(f.role)


def _fd_cip(e: Event, a=None):
    f = e.fd
    if not _sock(f) or f.cip is None:
        return None
    return _ip(f.cip)


def _fd_sip(e: Event, a=None):
    f = e.fd
    if not _sock(f) or f.sip is None:
        return None
    return _ip(f.sip)


def _fd_cport(e: Event, a=None):
    f = e.fd
    if not _sock(f):
        return None
    return f.cport


def _fd_sport(e: Event, a=None):
    f = e.fd
    if not _sock(f):
        return None
    return f.sport


def _local_is_client(f: FdInfo) -> bool:
    return f.role != "server"


def _fd_lip(e: Event, a=None):
    f = e.fd
    if not _sock(f):
        return None
    return _fd_cip(e) if _local_is_client(f) else _fd_sip(e)


def _fd_rip(e: Event, a=None):
    f = e.fd
    if not _sock(f):
        return None
    return _fd_sip(e) if _local_is_client(f) else _fd_cip(e)


def _fd_lport(e: Event, a=None):
    f = e.fd
    if not _sock(f):
        return None
    return f.cport if _local_is_client(f) else f.sport


def _fd_rport(e: Event, a=None):
    f = e.fd
    if not _sock(f):
        return None
    return f.sport if _local_is_client(f) else f.cport


def _fd_ips(e: Event, a=None):
    f = e.fd
    if not _sock(f):
        return []
    return [x for x in (_fd_cip(e), _fd_sip(e)) if x is not None]


def _fd_ports(e: Event, a=None):
    f = e.fd
    if not _sock(f):
        return []
    return [x for x in (f.cport, f.sport) if x is not None]


def _fd_l4proto(e: Event, a=None):
    f = e.fd
    if f is None:
        return None
    return R.fd_l4proto(f)


def _fd_sockfamily(e: Event, a=None):
    f = e.fd
    if f is None:
        return None
    if f.type in ("ipv4", "ipv6"):
        return "ip"
    if f.type == "unix":
        return "unix"
    return None


def _fd_is_server(e: Event, a=None):
    f = e.fd
    return f.role == "server" if f is not None else None


def _fd_connected(e: Event, a=None):
    f = e.fd
    return bool(f.connected) if f is not None else None


def _fd_name_changed(e: Event, a=None):
    return e.fd_name_changed if e.fd is not None else None


def _fd_attr(attr: str):
    def f(e: Event, a=None):
        fd = e.fd
        return getattr(fd, attr) if fd is not None else None
    return f


def _fd_dev_major(e: Event, a=None):
    f = e.fd
    return (f.dev >> 20) & 0xFFF if f is not None else None


def _fd_dev_minor(e: Event, a=None):
    f = e.fd
    return f.dev & 0xFFFFF if f is not None else None


def _fd_containername(e: Event, a=None):
    n = _fd_name(e)
    t = e.thread
    return None if n is None or t is None else f"{t.container_id}:{n}"


def _fd_containerdirectory(e: Event, a=None):
    n = _fd_directory(e)
    t = e.thread
    return None if n is None or t is None else f"{t.container_id}:{n}"


def _fd_uid(e: Event, a=None):
    """A unique id of the fd: thread id and fd number (libsinsp's concatenation)."""
    t = e.thread
    if t is None or not e.fdrel:
        return None
    return f"{t.tid}{e.fdnum}"


def _fd_is_upper(e: Event, a=None):
    f = e.fd
    return bool(f.flags & _FF.get("FD_UPPER_LAYER", 0)) if f is not None and f.type == "file" else None


def _fd_is_lower(e: Event, a=None):
    f = e.fd
    return bool(f.flags & _FF.get("FD_LOWER_LAYER", 0)) if f is not None and f.type == "file" else None


# --- fdlist.* ---------------------------------------------------------------------------------

def _fdlist(e: Event) -> list[tuple[int, FdInfo | None]]:
    info = et.info(e.code)
    if info is None:
        return []
    for i, p in enumerate(info.params):
        if p.type == "PT_FDLIST" and i < len(e.params) and isinstance(e.params[i], tuple):
            return [(fd, R.fd_lookup(e, fd)) for fd, _fl in e.params[i]]
    return []


def _fdlist_field(fn):
    def f(e: Event, a=None):
        out = [fn(fd, fi) for fd, fi in _fdlist(e)]
        return [x for x in out if x is not None] or None
    return f


# --- fs.path.* --------------------------------------------------------------------------------

# event name -> (name param, source param, target param); the path parameters Falco reads.
_FS_PATHS: dict[str, tuple[str | None, str | None, str | None]] = {
    "mkdir": ("path", None, None), "mkdirat": ("path", None, None), "rmdir": ("path", None, None),
    "unlink": ("path", None, None), "unlinkat": ("name", None, None), "chmod": ("filename", None, None),
    "fchmodat": ("filename", None, None), "chown": ("path", None, None), "lchown": ("path", None, None),
    "fchownat": ("pathname", None, None), "mknod": ("path", None, None), "mknodat": ("path", None, None),
    "rename": (None, "oldpath", "newpath"), "renameat": (None, "oldpath", "newpath"),
    "renameat2": (None, "oldpath", "newpath"), "link": (None, "oldpath", "newpath"),
    "linkat": (None, "oldpath", "newpath"), "symlink": (None, "target", "linkpath"),
    "symlinkat": (None, "target", "linkpath"), "open": ("name", None, None), "openat": ("name", None, None),
    "openat2": ("name", None, None), "creat": ("name", None, None), "truncate": ("path", None, None),
}


def _fs_path(slot: int, raw: bool):
    def f(e: Event, a=None):
        info = et.info(e.code)
        if info is None or e.code & 1 == 0:
            return None
        spec = _FS_PATHS.get(info.name)
        if spec is None or spec[slot] is None:
            return None
        i = info.param_index.get(spec[slot])
        if i is None or i >= len(e.params) or not isinstance(e.params[i], str):
            return None
        v = e.params[i]
        if raw:
            return v
        if info.name.startswith("symlink") and slot == 1:
            return v  # a symlink target is stored as given
        _t, res = R.render_value(e, info.params[i], v)
        return res or v
    return f


# --- compiler hints -----------------------------------------------------------------------------
# Inline templates (the compiler puts them in place of a call to `extract`): attribute reads only,
# no side effects, the same value as the extractor. `{evt}` is the event.

def _thread_attr_inline(attr: str) -> str:
    return f"(None if {{evt}}.thread is None else {{evt}}.thread.{attr})"


_INLINE: dict[str, str] = {
    "evt.num": "{evt}.num",
    "evt.rawtime": "{evt}.ts",
    "evt.cpu": "{evt}.cpu",
    "evt.source": "{evt}.source",
    "proc.name": _thread_attr_inline("comm"),
    "proc.pid": _thread_attr_inline("pid"),
    "thread.tid": _thread_attr_inline("tid"),
    "proc.exe": _thread_attr_inline("exe"),
    "proc.exepath": _thread_attr_inline("exepath"),
    "proc.tty": _thread_attr_inline("tty"),
    "proc.sid": _thread_attr_inline("sid"),
    "proc.vpgid": _thread_attr_inline("vpgid"),
    "proc.pgid": _thread_attr_inline("pgid"),
    "user.uid": _thread_attr_inline("uid"),
    "user.name": _thread_attr_inline("user"),
    "user.loginname": _thread_attr_inline("loginname"),
    "group.gid": _thread_attr_inline("gid"),
    "group.name": _thread_attr_inline("group"),
    "proc.is_exe_upper_layer": _thread_attr_inline("exe_upper_layer"),
    "proc.is_exe_from_memfd": _thread_attr_inline("exe_from_memfd"),
    "proc.is_exe_writable": _thread_attr_inline("exe_writable"),
    "proc.pname": "(None if {evt}.thread is None or {evt}.thread.parent is None else {evt}.thread.parent.comm)",
    "proc.pexepath": "(None if {evt}.thread is None or {evt}.thread.parent is None "
                     "else {evt}.thread.parent.exepath)",
    "proc.pexe": "(None if {evt}.thread is None or {evt}.thread.parent is None else {evt}.thread.parent.exe)",
    "container.id": "(None if {evt}.thread is None else ({evt}.thread.container_id or 'host'))",
    "fd.num": "({evt}.fdnum if {evt}.fdrel else None)",
    "fd.type": "(None if {evt}.fd is None or {evt}.fd.type == 'unknown' else {evt}.fd.type)",
}


def _flag_per_code(mask: int):
    def f(code: int):
        info = et.info(code)
        return bool(info and info.flags & mask)
    return f


def _io_dir_per_code(code: int):
    info = et.info(code)
    if info is None:
        return None
    if info.flags & et.EF_READS_FROM_FD:
        return "read"
    if info.flags & et.EF_WRITES_TO_FD:
        return "write"
    return None


def _syscall_type_per_code(code: int):
    if R.is_generic(code):
        return C.VARIES
    info = et.info(code)
    if info is None:
        return None
    return info.name if (info.category & et.EC_SYSCALL or code in _PROCEXIT) else None


_PER_CODE: dict[str, Any] = {
    "syscall.type": _syscall_type_per_code,
    "evt.is_io": _flag_per_code(et.EF_READS_FROM_FD | et.EF_WRITES_TO_FD),
    "evt.is_io_read": _flag_per_code(et.EF_READS_FROM_FD),
    "evt.is_io_write": _flag_per_code(et.EF_WRITES_TO_FD),
    "evt.is_wait": _flag_per_code(et.EF_WAITS),
    "evt.io_dir": _io_dir_per_code,
    "evt.count.exit": lambda code: 1 if code & 1 else None,
}


def _parse_index(text: str) -> int:
    try:
        n = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"wrong argument '{text}': an index is a non-negative number") from None
    if n < 0:
        raise ValueError(f"wrong argument '{text}': an index is a non-negative number")
    return n


def _parse_param(text: str) -> int | str:
    return int(text) if text.isdigit() else text


_PARSE_ARG: dict[str, Any] = {
    "proc.apid": _parse_index, "proc.aname": _parse_index, "proc.aexe": _parse_index,
    "proc.aexepath": _parse_index, "proc.acmdline": _parse_index,
    "evt.arg": _parse_param, "evt.rawarg": _parse_param,
}


# --- registration -----------------------------------------------------------------------------

def _register_all() -> None:
    S, U64, I64, U32, I32, B_, ABST, RELT, IP, PORT, NET = ("CHARBUF", "UINT64", "INT64", "UINT32", "INT32",
                                                           "BOOL", "ABSTIME", "RELTIME", "IPADDR",
                                                           "PORT", "IPNET")
    r = _reg
    # evt
    r("evt.num", U64, "event number", lambda e, a=None: e.num)
    r("evt.time", S, "event timestamp as a time string with nanoseconds", _evt_time)
    r("evt.time.s", S, "event timestamp as a time string without nanoseconds", _evt_time_s)
    r("evt.time.iso8601", S, "event timestamp in ISO 8601 format (UTC)", _evt_time_iso)
    r("evt.datetime", S, "event timestamp as a date and time string", _evt_datetime)
    r("evt.datetime.s", S, "event timestamp as a date and time string without nanoseconds", _evt_datetime_s)
    r("evt.rawtime", ABST, "event timestamp, ns since epoch", lambda e, a=None: e.ts)
    r("evt.rawtime.s", U64, "integer part of the event timestamp", lambda e, a=None: e.ts // 1_000_000_000)
    r("evt.rawtime.ns", U64, "fractional part of the event timestamp", lambda e, a=None: e.ts % 1_000_000_000)
    r("evt.latency", RELT, "delta between an exit event and its enter event, ns", _evt_latency,
      deprecated=True)
    r("evt.latency.s", U64, "integer part of evt.latency",
      lambda e, a=None: (_evt_latency(e) or 0) // 1_000_000_000, deprecated=True)
    r("evt.latency.ns", U64, "fractional part of evt.latency",
      lambda e, a=None: (_evt_latency(e) or 0) % 1_000_000_000, deprecated=True)
    r("evt.dir", S, "event direction: > enter, < exit", _evt_dir, deprecated=True)
    r("evt.type", S, "the event name (open, execve, ...)", _evt_type)
    r("evt.type.is", U32, "1 for events of the type given as argument",
      lambda e, a=None: int(_evt_type(e) == a) if a is not None else None, arg="required")
    r("syscall.type", S, "for syscall events, the syscall name", _syscall_type)
    r("evt.category", S, "the event category (file, net, process, ...)", _evt_category)
    r("evt.cpu", I32, "CPU the event happened on", lambda e, a=None: e.cpu)
    r("evt.args", S, "all the event arguments as one string", _evt_args)
    r("evt.arg", S, "one argument by name or by number, as text", _evt_arg, arg="required",
      arg_kind="param", dotted_arg=True)
    r("evt.rawarg", I64, "one argument by name, as its raw value", _evt_rawarg, arg="required",
      arg_kind="param", dotted_arg=True)
    r("evt.info", S, "the event arguments (same as evt.args)", _evt_info)
    r("evt.buffer", "BYTEBUF", "the data buffer of I/O events", _evt_buffer)
    r("evt.buflen", U64, "the length of the data buffer of I/O events", _evt_buflen)
    r("evt.res", S, "return value as text: SUCCESS or the errno name", _evt_res)
    r("evt.rawres", I64, "return value as a number", _evt_rawres)
    r("evt.failed", B_, "true for events that returned an error", _evt_failed)
    r("evt.is_io", B_, "true for events that read or write fds", _evt_is_io)
    r("evt.is_io_read", B_, "true for events that read from fds", _evt_is_io_read)
    r("evt.is_io_write", B_, "true for events that write to fds", _evt_is_io_write)
    r("evt.io_dir", S, "r for reads, w for writes", _evt_io_dir)
    r("evt.is_wait", B_, "true for events that make the thread wait", _evt_is_wait)
    r("evt.is_syslog", B_, "true for writes to /dev/log", _evt_is_syslog)
    r("evt.count", U32, "always 1", lambda e, a=None: 1)
    r("evt.count.error", U32, "1 for events that returned an error",
      lambda e, a=None: 1 if _evt_failed(e) else None)
    for sub, cats in (("file", ("file",)), ("net", ("net",)), ("memory", ("memory",))):
        r(f"evt.count.error.{sub}", U32, f"1 for {sub} events that returned an error",
          (lambda cs: lambda e, a=None: 1 if _evt_failed(e) and _evt_category(e) in cs else None)(cats))
    r("evt.count.error.other", U32, "1 for other events that returned an error",
      lambda e, a=None: 1 if _evt_failed(e) and _evt_category(e) not in ("file", "net", "memory") else None)
    r("evt.count.exit", U32, "1 for exit events", lambda e, a=None: 1 if e.code & 1 else None)
    r("evt.abspath", S, "absolute path of *at() calls from their dirfd and name", _abspath)
    r("evt.is_open_read", B_, "open* opened the path for reading", _evt_is_open_read)
    r("evt.is_open_write", B_, "open* opened the path for writing", _evt_is_open_write)
    r("evt.is_open_exec", B_, "open* created a file with execute permissions", _evt_is_open_exec)
    r("evt.is_open_create", B_, "open* created the file", _evt_is_open_create)
    r("evt.source", S, "the event source", lambda e, a=None: e.source)
    r("evt.hostname", S, "the host the event was observed on", lambda e, a=None: e.host or None)

    # process / thread
    r("proc.pid", I64, "process id", _proc_pid)
    r("proc.exe", S, "argv[0]", _proc_exe)
    r("proc.name", S, "process name (comm)", _proc_name)
    r("proc.args", S, "arguments, without argv[0]", _proc_args)
    r("proc.env", S, "environment, or the value of one variable", _proc_env, arg="optional", arg_kind="key")
    r("proc.cmdline", S, "name and arguments", _proc_cmdline)
    r("proc.exeline", S, "argv[0] and arguments", _proc_exeline)
    r("proc.cwd", S, "current working directory", _proc_cwd)
    r("proc.ppid", I64, "parent process id", _proc_ppid)
    r("proc.pname", S, "parent's name", _p(lambda t: t.comm))
    r("proc.pcmdline", S, "parent's command line", _p(_cmdline))
    r("proc.pexe", S, "parent's argv[0]", _p(lambda t: t.exe))
    r("proc.pexepath", S, "parent's executable path", _p(lambda t: t.exepath))
    r("proc.apid", I64, "ancestor pid by level", _anc(lambda t: t.pid), arg="optional", arg_kind="index",
      ancestors=True)
    r("proc.aname", S, "ancestor name by level", _anc(lambda t: t.comm), arg="optional", arg_kind="index",
      ancestors=True)
    r("proc.aexe", S, "ancestor argv[0] by level", _anc(lambda t: t.exe), arg="optional",
      arg_kind="index", ancestors=True)
    r("proc.aexepath", S, "ancestor executable path by level", _anc(lambda t: t.exepath), arg="optional",
      arg_kind="index", ancestors=True)
    r("proc.acmdline", S, "ancestor command line by level", _anc(_cmdline), arg="optional",
      arg_kind="index", ancestors=True)
    r("proc.duration", RELT, "ns since the process started", _proc_duration)
    r("proc.fdopencount", U64, "open fds", _proc_fdopencount)
    r("proc.fdlimit", I64, "max fds", _th("fdlimit"))
    r("proc.fdusage", "DOUBLE", "open fds as a percentage of the limit", _proc_fdusage,
      render=lambda v: f"{v:.1f}")
    r("proc.vmsize", U64, "virtual memory, KiB", _mth("vmsize_kb"))
    r("proc.vmrss", U64, "resident memory, KiB", _mth("vmrss_kb"))
    r("proc.vmswap", U64, "swapped memory, KiB", _mth("vmswap_kb"))
    r("thread.pfmajor", U64, "major page faults", _th("pfmajor"))
    r("thread.pfminor", U64, "minor page faults", _th("pfminor"))
    r("thread.tid", I64, "thread id", _thread_tid)
    r("thread.ismain", B_, "the thread is its process's main thread", _thread_ismain)
    r("thread.cgroups", S, "all the cgroups of the thread", _thread_cgroups)
    r("thread.cgroup", S, "the cgroup of one subsystem", _thread_cgroup, arg="required", arg_kind="key")
    r("thread.vtid", I64, "thread id in its pid namespace", _xth("vtid"))
    r("proc.vpid", I64, "process id in its pid namespace", _xth("vpid"))
    r("thread.vmsize", U64, "virtual memory, KiB", _th("vmsize_kb"))
    r("thread.vmrss", U64, "resident memory, KiB", _th("vmrss_kb"))
    r("proc.sid", I64, "session id", _th("sid"))
    r("proc.sname", S, "session leader's name", _sname)
    r("proc.sid.exe", S, "session leader's argv[0]", _sid_attr("exe"))
    r("proc.sid.exepath", S, "session leader's executable path", _sid_attr("exepath"))
    r("proc.is_sid_leader", B_, "the process leads its session", _is_leader("sid"))
    r("proc.tty", U32, "controlling terminal, 0 none", _th("tty"))
    r("proc.exepath", S, "full path of the executable", _proc_exepath)
    r("proc.vpgid", I64, "process group id in its pid namespace", _th("vpgid"))
    r("proc.vpgid.name", S, "process group leader's name", _vpgid_attr("comm"))
    r("proc.vpgid.exe", S, "process group leader's argv[0]", _vpgid_attr("exe"))
    r("proc.vpgid.exepath", S, "process group leader's executable path", _vpgid_attr("exepath"))
    r("proc.is_vpgid_leader", B_, "the process leads its process group", _is_leader("vpgid"))
    r("proc.pgid", I64, "process group id", _th("pgid"))
    r("proc.loginshellid", I64, "pid of the eldest shell ancestor", _loginshellid)
    r("proc.is_container_healthcheck", B_, "the process is a container healthcheck", lambda e, a=None: False)
    r("proc.is_container_liveness_probe", B_, "the process is a liveness probe", lambda e, a=None: False)
    r("proc.is_container_readiness_probe", B_, "the process is a readiness probe", lambda e, a=None: False)
    r("proc.is_exe_writable", B_, "the executable is writable by the process's user", _th("exe_writable"))
    r("proc.is_exe_upper_layer", B_, "the executable is in the overlayfs upper layer", _th("exe_upper_layer"))
    r("proc.is_exe_lower_layer", B_, "the executable is in an overlayfs lower layer", _th("exe_lower_layer"))
    r("proc.is_exe_from_memfd", B_, "the executable is a memfd", _th("exe_from_memfd"))
    r("proc.exe_ino", I64, "inode of the executable", _th("exe_ino"))
    r("proc.exe_ino.ctime", ABST, "ctime of the executable's inode", _th("exe_ino_ctime"))
    r("proc.exe_ino.mtime", ABST, "mtime of the executable's inode", _th("exe_ino_mtime"))
    r("proc.exe_ino.ctime_duration_proc_start", ABST, "from the exe inode's ctime to the process start",
      _exe_ino_ctime_duration("proc"))
    r("proc.exe_ino.ctime_duration_pidns_start", ABST, "from the exe inode's ctime to the pid namespace start",
      _exe_ino_ctime_duration("pidns"))
    r("proc.pidns_init_start_ts", U64, "start time of the pid namespace's init", _th("pidns_init_start_ts"))
    r("proc.start_ts", ABST, "process start time, ns since epoch", lambda e, a=None:
      (_main(e.thread).start_ts or None) if e.thread is not None else None)
    r("thread.cap_permitted", S, "permitted capabilities", _caps("cap_permitted"))
    r("thread.cap_inheritable", S, "inheritable capabilities", _caps("cap_inheritable"))
    r("thread.cap_effective", S, "effective capabilities", _caps("cap_effective"))

    # user / group
    r("user.uid", U32, "user id", _th("uid"))
    r("user.name", S, "user name", _th("user"))
    r("user.homedir", S, "user's home directory", _th("homedir"))
    r("user.shell", S, "user's shell", _th("shell"))
    r("user.loginuid", I64, "audit login uid, -1 unset", _loginuid)
    r("user.loginname", S, "audit login name", _th("loginname"))
    r("group.gid", U32, "group id", _th("gid"))
    r("group.name", S, "group name", _th("group"))

    # container (host processes: container.id is "host")
    r("container.id", S, "12-char container id, host for host processes", _container_id)
    r("container.name", S, "container name, host for host processes", _container_attr("name", "host"))
    r("container.image", S, "container image", _container_attr("image"))
    r("container.image.id", S, "container image id", _container_attr("imageid"))
    r("container.image.repository", S, "container image repository", _container_attr("imagerepo"))
    r("container.image.tag", S, "container image tag", _container_attr("imagetag"))
    r("container.image.digest", S, "container image digest", _container_attr("imagedigest"))
    r("container.type", S, "container type (docker, cri, ...), host for host processes",
      _container_attr("type", "host"))
    r("container.privileged", B_, "the container runs privileged", _container_attr("privileged"))
    r("container.full_id", S, "the full container id", _container_attr("full_id"))
    r("container.start_ts", ABST, "container start time",
      lambda e, a=None: (e.thread.pidns_init_start_ts or None) if e.thread is not None and e.thread.container_id else None)

    r("container.label", S, "one container label", _container_label, arg="required", arg_kind="key")
    r("container.labels", S, "all container labels as key:value, comma separated", _container_labels)
    r("container.mounts", S, "container mounts", _container_attr("mounts_text"))
    r("container.ip", S, "container IP", _container_attr("ip"))
    r("container.mount", S, "a mount by index or source: source:dest:mode:rw:propagation",
      _mount_field(None), arg="required", arg_kind="key")
    for sub, idx in (("source", 0), ("dest", 1), ("mode", 2), ("rdwr", 3), ("propagation", 4)):
        r(f"container.mount.{sub}", S, f"the {sub} of a mount (by index, or by source/dest path)",
          _mount_field(idx), arg="required", arg_kind="key")
    r("container.info", S, "deprecated: nothing", lambda e, a=None: None, deprecated=True)
    r("container.cni.json", S, "container CNI result", _container_attr("cni_json"))
    r("container.healthcheck", S, "container healthcheck command", _container_attr("healthcheck"))
    r("container.liveness_probe", S, "container liveness probe", _container_attr("liveness_probe"))
    r("container.readiness_probe", S, "container readiness probe", _container_attr("readiness_probe"))
    r("container.duration", RELT, "ns since the container started",
      lambda e, a=None: (e.ts - e.thread.pidns_init_start_ts) if e.thread is not None and e.thread.container_id
      and e.thread.pidns_init_start_ts else None)
    # k8s, from the container runtime's pod labels
    for kname, label in (("k8s.pod.name", "io.kubernetes.pod.name"), ("k8s.ns.name", "io.kubernetes.pod.namespace"),
                         ("k8s.pod.id", "io.kubernetes.pod.uid"), ("k8s.pod.uid", "io.kubernetes.pod.uid"),
                         ("k8s.pod.sandbox_id", "io.kubernetes.sandbox.id")):
        r(kname, S, f"Kubernetes {kname[4:]} from the pod labels", _k8s_label(label))
    r("k8s.pod.label", S, "one pod label", _container_label, arg="required", arg_kind="key")
    r("k8s.pod.labels", S, "all pod labels", _container_labels)
    for kname in ("k8s.pod.ip", "k8s.pod.cni.json", "k8s.pod.full_sandbox_id", "k8s.ns.id", "k8s.rc.name",
                  "k8s.rc.id", "k8s.svc.name", "k8s.svc.id", "k8s.rs.name", "k8s.rs.id", "k8s.deployment.name",
                  "k8s.deployment.id"):
        r(kname, S, f"Kubernetes {kname[4:]} (needs the k8s metadata service: missing here)",
          lambda e, a=None: None)

    # fd
    r("fd.num", I64, "the fd number", _fd_num)
    r("fd.type", S, "fd type: file, directory, ipv4, ipv6, unix, pipe, ...", _fd_type)
    r("fd.typechar", S, "fd type as one character", _fd_typechar)
    r("fd.name", S, "full path, or the connection tuple of a socket", _fd_name)
    r("fd.nameraw", S, "the path as the process passed it", _fd_nameraw)
    r("fd.directory", S, "directory of a file fd", _fd_directory)
    r("fd.filename", S, "base name of a file fd", _fd_filename)
    r("fd.ip", IP, "client or server IP", _fd_ips, filter_only=True, ancestors=True)
    r("fd.cip", IP, "client IP", _fd_cip)
    r("fd.sip", IP, "server IP", _fd_sip)
    r("fd.lip", IP, "local IP", _fd_lip)
    r("fd.rip", IP, "remote IP", _fd_rip)
    r("fd.port", PORT, "client or server port", _fd_ports, filter_only=True, ancestors=True)
    r("fd.cport", PORT, "client port", _fd_cport)
    r("fd.sport", PORT, "server port", _fd_sport)
    r("fd.lport", PORT, "local port", _fd_lport)
    r("fd.rport", PORT, "remote port", _fd_rport)
    r("fd.l4proto", S, "tcp, udp, icmp or raw", _fd_l4proto)
    r("fd.sockfamily", S, "ip or unix", _fd_sockfamily)
    r("fd.is_server", B_, "the local end is the server", _fd_is_server)
    r("fd.uid", S, "container id and fd number", _fd_uid)
    r("fd.containername", S, "container id and fd name", _fd_containername)
    r("fd.containerdirectory", S, "container id and fd directory", _fd_containerdirectory)
    r("fd.net", NET, "client or server IP, for a CIDR test", _fd_ips, filter_only=True, ancestors=True)
    r("fd.cnet", NET, "client IP, for a CIDR test", _fd_cip, filter_only=True)
    r("fd.snet", NET, "server IP, for a CIDR test", _fd_sip, filter_only=True)
    r("fd.lnet", NET, "local IP, for a CIDR test", _fd_lip, filter_only=True)
    r("fd.rnet", NET, "remote IP, for a CIDR test", _fd_rip, filter_only=True)
    r("fd.connected", B_, "the socket is connected", _fd_connected)
    r("fd.name_changed", B_, "this event changed the fd's name", _fd_name_changed)
    r("fd.cip.name", S, "DNS name of the client IP", lambda e, a=None: None, no_rhs=True)
    r("fd.sip.name", S, "DNS name of the server IP", lambda e, a=None: None, no_rhs=True)
    r("fd.lip.name", S, "DNS name of the local IP", lambda e, a=None: None, no_rhs=True)
    r("fd.rip.name", S, "DNS name of the remote IP", lambda e, a=None: None, no_rhs=True)
    r("fd.dev", U32, "device number of the file", _fd_attr("dev"))
    r("fd.dev.major", U32, "major device number", _fd_dev_major)
    r("fd.dev.minor", U32, "minor device number", _fd_dev_minor)
    r("fd.ino", I64, "inode number", _fd_attr("ino"))
    r("fd.is_upper_layer", B_, "the file is in the overlayfs upper layer", _fd_is_upper)
    r("fd.is_lower_layer", B_, "the file is in an overlayfs lower layer", _fd_is_lower)

    # fdlist (poll, select)
    r("fdlist.nums", I64, "fd numbers of poll/select", _fdlist_field(lambda fd, f: fd), is_list=True)
    r("fdlist.names", S, "fd names of poll/select", _fdlist_field(lambda fd, f: f.name if f else None),
      is_list=True)
    r("fdlist.cips", IP, "client IPs of poll/select fds",
      _fdlist_field(lambda fd, f: _ip(f.cip) if _sock(f) and f.cip else None), is_list=True)
    r("fdlist.sips", IP, "server IPs of poll/select fds",
      _fdlist_field(lambda fd, f: _ip(f.sip) if _sock(f) and f.sip else None), is_list=True)
    r("fdlist.cports", PORT, "client ports of poll/select fds",
      _fdlist_field(lambda fd, f: f.cport if _sock(f) else None), is_list=True)
    r("fdlist.sports", PORT, "server ports of poll/select fds",
      _fdlist_field(lambda fd, f: f.sport if _sock(f) else None), is_list=True)

    # fs.path
    r("fs.path.name", S, "path of a filesystem event, absolute", _fs_path(0, False))
    r("fs.path.nameraw", S, "path of a filesystem event, as given", _fs_path(0, True))
    r("fs.path.source", S, "source path of rename/link/symlink, absolute", _fs_path(1, False))
    r("fs.path.sourceraw", S, "source path of rename/link/symlink, as given", _fs_path(1, True))
    r("fs.path.target", S, "target path of rename/link/symlink, absolute", _fs_path(2, False))
    r("fs.path.targetraw", S, "target path of rename/link/symlink, as given", _fs_path(2, True))


_RAW_TYPES = {"PT_CHARBUF": "CHARBUF", "PT_FSPATH": "FSPATH", "PT_FSRELPATH": "FSRELPATH",
              "PT_BYTEBUF": "BYTEBUF", "PT_SOCKTUPLE": "CHARBUF", "PT_SOCKADDR": "CHARBUF",
              "PT_FDLIST": "CHARBUF", "PT_DYN": "INT64", "PT_IPV4ADDR": "IPV4ADDR", "PT_IPV6ADDR": "IPV6ADDR",
              "PT_IPADDR": "IPADDR", "PT_FD32": "INT32", "PT_PID32": "INT32", "PT_BOOL": "BOOL",
              "PT_CHARBUFARRAY": "CHARBUF", "PT_CHARBUF_PAIR_ARRAY": "CHARBUF", "PT_L4PROTO": "UINT8",
              "PT_SOCKFAMILY": "UINT8"}


def _register_param_names() -> None:
    """`evt.arg.<name>` and `evt.rawarg.<name>` for every parameter name of the table, so the
    dotted forms resolve by exact name; evt.rawarg's type is the first such parameter's type."""
    seen: dict[str, str] = {}
    for info in et.EVENTS:
        for p in info.params:
            if p.name not in seen:
                t = _RAW_TYPES.get(p.type, p.type[3:])
                seen[p.name] = t if t in C.ALL_TYPES else "INT64"
    for name, typ in seen.items():
        _reg(f"evt.arg.{name}", "CHARBUF", f"the {name} argument, as text",
             (lambda n: lambda e, a=None: _evt_arg(e, n))(name))
        _reg(f"evt.rawarg.{name}", typ, f"the {name} argument, raw",
             (lambda n: lambda e, a=None: _evt_rawarg(e, n))(name))


_SHELLS = frozenset({"sh", "bash", "zsh", "ksh", "csh", "tcsh", "dash", "ash", "fish"})


def _loginshellid(e: Event, a=None):
    t = e.thread
    if t is None:
        return None
    found = None
    x: ThreadInfo | None = _main(t)
    n = 0
    while x is not None and n < _ANC_MAX:
        if x.comm in _SHELLS:
            found = x.pid
        x = x.parent
        n += 1
    return found


_register_all()
_register_param_names()
