"""Event parameters as text, the way sysdig and Falco print them (`evt.args`, `evt.arg.<name>`).

Each parameter renders as a value and an optional "resolved" form: `fd=3(<f>/etc/passwd)`,
`res=-2(ENOENT)`, `flags=4097(O_RDONLY|O_CLOEXEC)`, `ptid=3200(bash)`. `evt.args` joins
`name=value(resolved) ` for every parameter; `evt.arg.<name>` is the resolved form when there is
one, else the value. File descriptors and pids resolve against the event's thread as the state
engine left it (its fd table, and the comm of referenced pids it recorded in `evt.extra`).
"""

from __future__ import annotations

from typing import Any

from tiercel.common import eventtable as et
from tiercel.common.event import Event, FdInfo

SNAPLEN = 80  # sysdig's default -s: BYTEBUF text longer than this ends in "..."

TYPECHARS = {
    "file": "f", "directory": "d", "ipv4": "4", "ipv6": "6", "unix": "u", "pipe": "p", "event": "e",
    "signalfd": "s", "eventpoll": "l", "inotify": "i", "timerfd": "t", "netlink": "n", "bpf": "b",
    "userfaultfd": "u", "io_uring": "r", "memfd": "m", "pidfd": "P", "unsupported": "X", "unknown": "o",
}
_L4CHAR = {"tcp": "t", "udp": "u", "icmp": "i", "raw": "r"}
_PRINTABLE = bytes(c if 0x20 <= c < 0x7F else 0x2E for c in range(256))


def fd_l4proto(f: FdInfo) -> str | None:
    """libsinsp's get_l4proto(): unknown until the socket has a role (except raw sockets)."""
    if f.type not in ("ipv4", "ipv6"):
        return None
    if f.l4proto == "raw":
        return "raw"
    if not f.role:
        return None
    return f.l4proto or None


def fd_typechar(f: FdInfo) -> str:
    return TYPECHARS.get(f.type, "o")


def fd_lookup(ev: Event, fd: int) -> FdInfo | None:
    """An fd of the event's thread as the state engine saw it: the live table, or for an event
    decoded from the bus, the snapshots it carries."""
    t = ev.thread
    if t is None:
        return None
    f = t.fds.get(fd)
    if f is None:
        x = ev.extra
        if x is not None and "fds" in x:
            f = x["fds"].get(fd)
        if f is None and fd == ev.fdnum:
            f = ev.fd
    return f


def _resolved_fd(ev: Event, fd: int) -> str:
    if fd < 0:
        return et.errno_name(-fd) or ""
    f = fd_lookup(ev, fd)
    if f is None:
        return ""
    l4 = ""
    if f.type in ("ipv4", "ipv6"):
        l4 = _L4CHAR.get(fd_l4proto(f) or "", "")
    return f"<{fd_typechar(f)}{l4}>{f.name}"


def _num(v: int, fmt: str, bits: int, signed: bool) -> str:
    if fmt == "PF_HEX":
        return format(v & ((1 << bits) - 1), "X")
    if fmt == "PF_OCT":
        return format(v & ((1 << bits) - 1), "o")
    if fmt == "PF_10_PADDED_DEC":
        return format(v, "09d")
    if not signed and v < 0:
        v &= (1 << bits) - 1
    return str(v)


_BITS = {"PT_INT8": (8, True), "PT_INT16": (16, True), "PT_INT32": (32, True), "PT_INT64": (64, True),
         "PT_UINT8": (8, False), "PT_UINT16": (16, False), "PT_UINT32": (32, False),
         "PT_UINT64": (64, False), "PT_ERRNO": (64, True), "PT_PID": (64, True), "PT_FD": (64, True),
         "PT_FD32": (32, True), "PT_PID32": (32, True), "PT_RELTIME": (64, False),
         "PT_ABSTIME": (64, False), "PT_PORT": (16, False), "PT_L4PROTO": (8, False),
         "PT_SOCKFAMILY": (8, False), "PT_SIGSET": (32, False), "PT_SYSCALLID": (16, False),
         "PT_SIGTYPE": (8, False), "PT_UID": (32, False), "PT_GID": (32, False)}


def flags_text(table: str | None, val: int) -> str:
    """Bitmask names, libsinsp's walk: table order, an exact match ends the walk."""
    if not table or table not in et.FLAGS_TABLES:
        return ""
    names = []
    initial = val
    for name, fv in et.FLAGS_TABLES[table][1]:
        if fv == initial:
            names.append(name)
            break
        if (fv == 0 and initial == 0) or (fv != 0 and val != 0 and (val & fv) == fv):
            names.append(name)
            val &= ~fv
    return "|".join(names)


def enum_text(table: str | None, val: int) -> str:
    if not table or table not in et.FLAGS_TABLES:
        return ""
    for name, fv in et.FLAGS_TABLES[table][1]:
        if fv == val:
            return name
    return ""


def bytebuf_text(b: bytes, limit: int = SNAPLEN) -> str:
    s = b.translate(_PRINTABLE).decode("ascii")
    if limit and len(s) > limit:
        s = s[:limit - 3] + "..."
    return s


def tuple_text(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (bytes, bytearray)):
        return bytebuf_text(bytes(v))
    fam = v[0]
    if fam in (2, 10) and len(v) == 5:
        s, d = v[1], v[3]
        if fam == 10 and s.startswith("::ffff:") and d.startswith("::ffff:") and "." in s and "." in d:
            s, d = s[7:], d[7:]
        return f"{s}:{v[2]}->{d}:{v[4]}"
    if fam == 1 and len(v) == 4:
        return f"{v[1]:x}->{v[2]:x} {v[3]}"
    return ""


def sockaddr_text(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (bytes, bytearray)):
        return bytebuf_text(bytes(v))
    fam = v[0]
    if fam in (2, 10) and len(v) == 3:
        return f"{v[1]}:{v[2]}"
    if fam == 1 and len(v) == 2:
        return v[1]
    return "family " + str(fam)


def _cwd(ev: Event) -> str:
    t = ev.thread
    if t is None:
        return ""
    m = t.main if t.main is not None else t
    return m.cwd


def render_value(ev: Event, p: et.ParamInfo | None, v: Any, ptype: str | None = None,
                 fmt: str | None = None) -> tuple[str, str]:
    """(value text, resolved text) of one parameter value."""
    if p is not None:
        ptype, fmt = p.type, p.fmt
    if v is None:
        if ptype in ("PT_SOCKTUPLE", "PT_SOCKADDR"):
            return "NULL", ""
        if ptype in ("PT_CHARBUF", "PT_FSPATH", "PT_FSRELPATH"):
            return "<NA>", ""
        return "", ""
    if isinstance(v, (bytes, bytearray)) and ptype not in ("PT_BYTEBUF", "PT_CHARBUFARRAY",
                                                            "PT_CHARBUF_PAIR_ARRAY"):
        return bytebuf_text(bytes(v)), ""  # a value of the wrong size: shown raw
    if ptype in ("PT_FD", "PT_FD32"):
        return str(v), _resolved_fd(ev, v)
    if ptype in ("PT_ERRNO",):
        text = _num(v, fmt or "PF_DEC", 64, True)
        return text, (et.errno_name(-v) or "") if v < 0 else ""
    if ptype in ("PT_PID", "PT_PID32"):
        comm = ""
        x = ev.extra
        if x is not None:
            comm = x.get("pids", {}).get(v, "")
        return str(v), comm
    if ptype in ("PT_FLAGS8", "PT_FLAGS16", "PT_FLAGS32", "PT_MODE"):
        return str(v), flags_text(p.table if p else None, v)
    if ptype in ("PT_ENUMFLAGS8", "PT_ENUMFLAGS16", "PT_ENUMFLAGS32"):
        return str(v), enum_text(p.table if p else None, v)
    if ptype == "PT_SIGTYPE":
        return str(v), et.signal_name(v) or ""
    if ptype == "PT_SYSCALLID":
        return str(v), et.syscall_name(v)
    if ptype in _BITS:
        bits, signed = _BITS[ptype]
        return _num(v, fmt or "PF_DEC", bits, signed), ""
    if ptype == "PT_CHARBUF":
        return v, ""
    if ptype in ("PT_FSPATH", "PT_FSRELPATH"):
        if v and v[0] != "/" and v != "<NA>":
            cwd = _cwd(ev)
            if ptype == "PT_FSRELPATH" and p is not None and p.dirfd is not None:
                dirfd = ev.params[p.dirfd] if p.dirfd < len(ev.params) else None
                if isinstance(dirfd, int) and dirfd != -100 and ev.thread is not None:
                    f = fd_lookup(ev, dirfd)
                    cwd = (f.name + "/") if f is not None else ""
            from tiercel.ingest.state import concatenate_paths
            return v, concatenate_paths(cwd, v) if cwd else v
        return v, ""
    if ptype == "PT_BYTEBUF":
        return bytebuf_text(bytes(v)), ""
    if ptype == "PT_SOCKTUPLE":
        return tuple_text(v), ""
    if ptype == "PT_SOCKADDR":
        return sockaddr_text(v), ""
    if ptype == "PT_FDLIST":
        parts = []
        for fd, fl in v:
            f = fd_lookup(ev, fd)
            parts.append(f"{fd}:{fd_typechar(f) if f is not None else '?'}{fl:x}")
        return " ".join(parts), ""
    if ptype == "PT_DYN":
        if isinstance(v, tuple) and len(v) == 2 and p is not None and p.dyn:
            rows = et.DYN_TABLES.get(p.dyn, ())
            if v[0] < len(rows):
                t2, f2 = rows[v[0]]
                return render_value(ev, None, v[1], t2, f2)
        return str(v), ""
    if ptype == "PT_BOOL":
        return ("true" if v else "false"), ""
    if ptype == "PT_DOUBLE":
        return f"{v:.2f}", ""
    if ptype in ("PT_IPV4ADDR", "PT_IPV6ADDR", "PT_IPADDR"):
        return str(v), ""
    if ptype in ("PT_CHARBUFARRAY", "PT_CHARBUF_PAIR_ARRAY"):
        return bytebuf_text(bytes(v)).replace("\0", "."), ""
    return str(v), ""


def is_generic(code: int) -> bool:
    return code == et.PPME_GENERIC_E or code == et.PPME_GENERIC_X


def args_text(ev: Event) -> str:
    """evt.args: `name=value(resolved) ` for every parameter (generic syscalls show none)."""
    info = et.info(ev.code)
    if info is None or is_generic(ev.code):
        return ""
    params = info.params
    out = []
    for i, v in enumerate(ev.params):
        p = params[i] if i < len(params) else None
        name = p.name if p is not None else f"arg{i}"
        text, res = render_value(ev, p, v) if p is not None else (bytebuf_text(bytes(v or b"")), "")
        out.append(f"{name}={text}({res}) " if res else f"{name}={text} ")
    return "".join(out)


def arg_text(ev: Event, index: int) -> str | None:
    """evt.arg[N] / evt.arg.<name>: the resolved text when there is one, else the value."""
    info = et.info(ev.code)
    if info is None or index >= len(ev.params):
        return None
    p = info.params[index] if index < len(info.params) else None
    v = ev.params[index]
    if p is None:
        return bytebuf_text(bytes(v or b""))
    text, res = render_value(ev, p, v)
    return res if res else text
