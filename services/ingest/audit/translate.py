"""Assembled audit events -> the event model's syscall exit events.

Each translated syscall becomes its current exit event of the event table (Falco records exit
events only), with parameters in table order and values as the .scap decoder gives them: ints,
str, NUL-separated bytes, (family, ip, port) sockaddrs, (family, sip, sport, dip, dport) tuples,
None where audit does not tell. Flags become PPM values (`PPM_O_*`, `PPM_CL_*`), never Linux's.

Audit gives the thread-group id (pid), not the thread id: live events carry tid = pid (see
`tiercel.ingest.livestate` for what that means for threads). Besides the event, `translate`
returns the process identity the SYSCALL record states (the raw `ppid=... exe=...` span, and
the audit event for its CWD and PROCTITLE records): the state engine's view is checked against
it, and only a change costs a parse.

Speed: the SYSCALL record is matched by one regex; other records are parsed only by the
translations that read them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from tiercel.common import eventtable as et
from tiercel.common.event import Event, ThreadInfo
from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.assembler import AuditEvent
from tiercel.ingest.audit.records import SockAddr, number, parse_fields, syscall_groups, untrusted
from tiercel.ingest.audit.syscall_set import syscall_name
from tiercel.ingest.audit.syscalls import B64

# --- Linux -> PPM flag values -------------------------------------------------------------------

_O_FLAGS = (  # (linux bit, ppm bit)
    (0o100, 4), (0o200, 32), (0o1000, 256), (0o2000, 8), (0o4000, 64), (0o10000, 16),
    (0o40000, 512), (0o100000, 2048), (0o200000, 1024), (0o2000000, 4096),
)
_O_SYNC_LINUX = 0o4010000
_O_TMPFILE_LINUX = 0o20000000
PPM_O_F_CREATED = 16384


_OFLAGS_SEEN: dict[int, int] = {}  # flags values repeat: each is converted once


def open_flags_to_ppm(flags: int) -> int:
    """Linux open(2) flags -> PPM_O_* (RDONLY 1, WRONLY 2, RDWR 3, CREAT 4, ...)."""
    ppm = _OFLAGS_SEEN.get(flags)
    if ppm is not None:
        return ppm
    acc = flags & 3
    ppm = {0: 1, 1: 2, 2: 3}.get(acc, 0)
    for lin, p in _O_FLAGS:
        if flags & lin:
            ppm |= p
    if flags & _O_SYNC_LINUX == _O_SYNC_LINUX:
        ppm |= 128
    if flags & _O_TMPFILE_LINUX:
        ppm = (ppm | 8192) & ~1024
    if len(_OFLAGS_SEEN) < 4096:
        _OFLAGS_SEEN[flags] = ppm
    return ppm


_CLONE_FLAGS = (
    (0x400, 1), (0x200, 2), (0x80000000, 4), (0x08000000, 8), (0x40000000, 16), (0x20000, 32),
    (0x20000000, 64), (0x04000000, 128), (0x8000, 256), (0x100000, 512), (0x2000, 1024),
    (0x800, 2048), (0x40000, 4096), (0x10000, 8192), (0x800000, 16384), (0x100, 32768),
    (0x10000000, 1 << 20), (0x200000, 1 << 23), (0x01000000, 1 << 24), (0x80000, 1 << 25),
    (0x4000, 1 << 27), (0x02000000, 1 << 28),
)


def clone_flags_to_ppm(flags: int) -> int:
    ppm = 0
    for lin, p in _CLONE_FLAGS:
        if flags & lin:
            ppm |= p
    return ppm


def makedev(major: int, minor: int) -> int:
    """The kernel-internal dev_t (MKDEV: 12-bit major, 20-bit minor), as the drivers report it."""
    return (major << 20) | minor


def _dev(major: bytes | None, minor: bytes | None) -> int:
    if not major or not minor:
        return 0
    try:
        return (int(major, 16) << 20) | int(minor, 16)  # makedev
    except ValueError:
        return makedev(number(major, 16), number(minor, 16))


# --- event codes ---------------------------------------------------------------------------------

def _current_codes() -> dict[str, int]:
    out: dict[str, int] = {}
    for e in et.EVENTS:
        if e.unused or e.flags & et.EF_OLD_VERSION:
            continue
        if e.dir == "<" or (e.name == "procexit" and e.dir == ">"):
            out.setdefault(e.name, e.code)
    return out


CODES = _current_codes()


def _nparams(name: str) -> int:
    return et.info(CODES[name]).nparams


# --- helpers on the records -----------------------------------------------------------------------


# path_items() tuples: (item, name, inode, dev major, dev minor, mode, nametype)
_P_NAME, _P_INODE, _P_MAJOR, _P_MINOR, _P_TYPE = 1, 2, 3, 4, 6


def _main_path(ae: AuditEvent, index: int = 0) -> tuple | None:
    """The index-th PATH item that is not a parent directory (the object of the syscall)."""
    items = ae.path_items()
    if index == 0 and len(items) == 1:
        p = items[0]
        return p if p[_P_TYPE] != b"PARENT" else None
    items = [p for p in items if p[_P_TYPE] != b"PARENT"]
    return items[index] if len(items) > index else None


def _path_name(ae: AuditEvent, index: int = 0) -> str | None:
    p = _main_path(ae, index)
    return untrusted(p[_P_NAME]) if p else None


def _num(token: bytes | None, base: int = 10) -> int:
    if not token:
        return 0
    try:
        return int(token, base)
    except ValueError:
        return 0


def _sockaddr_param(sa: SockAddr | None) -> Any:
    if sa is None:
        return None
    if sa.family in (socket.AF_INET, socket.AF_INET6):
        return (sa.family, sa.addr, sa.port)
    if sa.family == socket.AF_UNIX:
        return (sa.family, sa.addr)
    return (sa.family,)


def _local_addr(pid: int, fd: int, family: int) -> tuple[str, int] | None:
    """Best effort: the local address of a socket, from /proc (the process may be gone)."""
    try:
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None
    if not link.startswith("socket:["):
        return None
    inode = link[8:-1]
    files = ("tcp", "udp") if family == socket.AF_INET else ("tcp6", "udp6")
    for f in files:
        try:
            with open(f"/proc/{pid}/net/{f}") as fh:
                next(fh, None)
                for line in fh:
                    parts = line.split()
                    if len(parts) > 9 and parts[9] == inode:
                        ip_hex, port_hex = parts[1].split(":")
                        raw = bytes.fromhex(ip_hex)
                        if family == socket.AF_INET:
                            ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
                        else:
                            ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                        return ip, int(port_hex, 16)
        except OSError:
            continue
    return None


def _tuple(sa: SockAddr | None, pid: int, fd: int, peer_is_server: bool, resolve: bool) -> Any:
    """A PT_SOCKTUPLE (fam, sip, sport, dip, dport): source = client side, dest = server side."""
    if sa is None:
        return None
    if sa.family in (socket.AF_INET, socket.AF_INET6):
        any_ip = "0.0.0.0" if sa.family == socket.AF_INET else "::"
        local = _local_addr(pid, fd, sa.family) if resolve and fd >= 0 else None
        lip, lport = local or (any_ip, 0)
        if peer_is_server:  # connect: we are the client
            return (sa.family, lip, lport, sa.addr, sa.port)
        return (sa.family, sa.addr, sa.port, lip, lport)  # accept: the peer is the client
    if sa.family == socket.AF_UNIX:
        return (sa.family, 0, 0, sa.addr)
    return (sa.family,)


def _argv_bytes(args: list[str]) -> bytes:
    return b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in args)


class Ctx:
    """What one translation reads: the audit event, the SYSCALL record's tokens, decoded basics.
    `sc` (every field of the identity span) is parsed only by the translations that need it."""

    __slots__ = ("ae", "g", "ret", "pid", "resolve", "_a", "_sc")

    def __init__(self, ae: AuditEvent, g: tuple, pid: int, resolve: bool):
        self.ae = ae
        self.g = g
        ret = g[2]
        self.ret = int(ret) if ret is not None else 0
        self.pid = pid
        self.resolve = resolve
        self._a: list[int] | None = None
        self._sc: dict[str, bytes] | None = None

    @property
    def a(self) -> list[int]:
        """The four syscall arguments as signed 64-bit values."""
        a = self._a
        if a is None:
            a = self._a = []
            for tok in self.g[3:7]:
                v = int(tok, 16)
                a.append(v - (1 << 64) if v >= 1 << 63 else v)
        return a

    @property
    def sc(self) -> dict[str, bytes]:
        if self._sc is None:
            self._sc = parse_fields(self.g[7])
        return self._sc

    @property
    def ppid(self) -> int:
        return int(self.g[8])

    def u(self, i: int) -> int:
        """Argument i as the unsigned 64-bit register value."""
        return int(self.g[3 + i], 16)

    def fd(self, i: int) -> int:
        """A 32-bit fd argument, sign-extended (AT_FDCWD is 0xffffff9c)."""
        v = int(self.g[3 + i], 16) & 0xFFFFFFFF
        return v - (1 << 32) if v >= 1 << 31 else v


# --- per-syscall parameter builders ---------------------------------------------------------------

_OPENED: dict[tuple, tuple[str | None, int, int, bool]] = {}  # path_item tuple -> _open_common's answer
_OPENED_MAX = 4096


def _open_common(c: Ctx, name_idx: int = 0) -> tuple[str | None, int, int, bool]:
    p = _main_path(c.ae, name_idx)
    if p is None:
        return None, 0, 0, False
    got = _OPENED.get(p)  # programs open the same files again and again
    if got is None:
        got = _open_path(p)
        if len(_OPENED) >= _OPENED_MAX:
            _OPENED.clear()
        _OPENED[p] = got
    return got


def _open_path(p: tuple) -> tuple[str | None, int, int, bool]:
    """(name, dev, inode, created) of a PATH item."""
    name = p[_P_NAME]
    if name is not None and len(name) > 1 and name[0] == 34 and name[-1] == 34:  # "quoted": most are
        name = name[1:-1].decode("utf-8", "surrogateescape")
    else:
        name = untrusted(name)
    return name, _dev(p[_P_MAJOR], p[_P_MINOR]), _num(p[_P_INODE]), p[_P_TYPE] == b"CREATE"


def _open(c: Ctx) -> list:
    name, dev, ino, created = _open_common(c)
    flags = open_flags_to_ppm(c.u(1)) | (PPM_O_F_CREATED if created else 0)
    return [c.ret, name, flags, c.u(2) & 0xFFFFFFFF, dev, ino]


def _openat(c: Ctx) -> list:
    name, dev, ino, created = _open_common(c)
    flags = open_flags_to_ppm(c.u(2)) | (PPM_O_F_CREATED if created else 0)
    return [c.ret, c.fd(0), name, flags, c.u(3) & 0xFFFFFFFF, dev, ino]


def _openat2(c: Ctx) -> list:
    name, dev, ino, created = _open_common(c)
    how = c.ae.first(nl.AUDIT_OPENAT2) or {}
    flags = open_flags_to_ppm(number(how.get("oflag"), 16)) | (PPM_O_F_CREATED if created else 0)
    return [c.ret, c.fd(0), name, flags, number(how.get("mode"), 8), 0, dev, ino]


def _creat(c: Ctx) -> list:
    name, dev, ino, created = _open_common(c)
    return [c.ret, name, c.u(1) & 0xFFFFFFFF, dev, ino, 1 if created else 0]


def _open_by_handle_at(c: Ctx) -> list:
    name, dev, ino, _ = _open_common(c)
    return [c.ret, c.fd(0), open_flags_to_ppm(c.u(2)), name, dev, ino]


def _execve(c: Ctx) -> list:
    ae, sc = c.ae, c.sc
    argv = ae.argv if ae.argv is not None else ae.proctitle
    exe = argv[0] if argv else (untrusted(sc.get("comm")) or "")
    fcaps = ae.first(nl.AUDIT_BPRM_FCAPS) or {}
    p0 = _main_path(ae, 0)
    ppid_ = c.ppid
    params = [c.ret, exe, _argv_bytes(argv[1:]), c.pid, c.pid, ppid_, ae.cwd or "", None, None, None,
              None, None, None, untrusted(sc.get("comm")) or "", None, None, tty_number(sc.get("tty")), None,
              number(sc.get("auid"), default=0xFFFFFFFF), 0,
              number(fcaps.get("pi"), 16), number(fcaps.get("pp"), 16), number(fcaps.get("pe"), 16),
              _num(p0[_P_INODE]) if p0 else 0, None, None, number(sc.get("uid")),
              untrusted(sc.get("exe")), None, number(sc.get("gid"))]
    if c.resolve and c.ret == 0:
        cg = _read_proc(c.pid, "cgroup")
        if cg is not None:
            params[14] = _cgroups_param(cg)
        env = _read_proc(c.pid, "environ")
        if env is not None:
            params[15] = env
    if len(params) < _nparams("execve"):
        params.append(untrusted(p0[_P_NAME]) if p0 else None)  # filename
    return params


def _read_proc(pid: int, name: str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return None


def _cgroups_param(text: bytes) -> bytes:
    """/proc/<pid>/cgroup as the drivers send cgroups: NUL-separated `subsys=path`."""
    out = []
    for line in text.splitlines():
        parts = line.split(b":", 2)
        if len(parts) == 3:
            for sub in (parts[1] or b"unified").split(b","):
                out.append(sub + b"=" + parts[2] + b"\0")
    return b"".join(out)


def _execveat(c: Ctx) -> list:
    return _execve(c)[:_nparams("execveat")]


def _clone_like(flags: int) -> Callable[[Ctx], list]:
    def build(c: Ctx) -> list:
        title = c.ae.proctitle
        exe = title[0] if title else untrusted(c.sc.get("comm")) or ""
        return [c.ret, exe, _argv_bytes(title[1:]), c.pid, c.pid, c.ppid, c.ae.cwd or "", None, None, None,
                None, None, None, untrusted(c.sc.get("comm")) or "", None,
                flags if flags >= 0 else clone_flags_to_ppm(c.u(0)),
                number(c.sc.get("uid")), number(c.sc.get("gid")), c.pid, c.pid, None]
    return build


def _procexit(c: Ctx) -> list:
    code = c.a[0] & 0xFF
    return [code << 8, code, 0, 0, 0]


def _close(c: Ctx) -> list:
    return [c.ret, c.fd(0)]


def _connect(c: Ctx) -> list:
    sa = c.ae.sockaddr
    ok = c.ret == 0 or c.ret == -115  # EINPROGRESS
    return [c.ret, _tuple(sa, c.pid, c.fd(0), True, c.resolve and ok), c.fd(0), _sockaddr_param(sa)]


def _accept(c: Ctx) -> list:
    sa = c.ae.sockaddr
    return [c.ret, _tuple(sa, c.pid, c.ret, False, c.resolve and c.ret >= 0), 0, 0, 0]


def _accept4(c: Ctx) -> list:
    return _accept(c) + [c.u(3) & 0xFFFFFFFF]


def _bind(c: Ctx) -> list:
    return [c.ret, _sockaddr_param(c.ae.sockaddr), c.fd(0)]


def _socket(c: Ctx) -> list:
    return [c.ret, c.u(0) & 0xFFFFFFFF, c.u(1) & 0xFFFFFFFF, c.u(2) & 0xFFFFFFFF, 0]


def _listen(c: Ctx) -> list:
    return [c.ret, c.fd(0), c.a[1] & 0xFFFFFFFF]


def _fd_pair(c: Ctx) -> tuple[int, int]:
    return c.ae.fd_pair or (-1, -1)


def _pipe(c: Ctx) -> list:
    a, b = _fd_pair(c)
    return [c.ret, a, b, 0]


def _pipe2(c: Ctx) -> list:
    return _pipe(c) + [open_flags_to_ppm(c.u(1)) & ~1]


def _socketpair(c: Ctx) -> list:
    a, b = _fd_pair(c)
    return [c.ret, a, b, 0, 0, c.u(0) & 0xFFFFFFFF, c.u(1) & 0xFFFFFFFF, c.u(2) & 0xFFFFFFFF]


def _dup(c: Ctx) -> list:
    return [c.ret, c.fd(0)]


def _dup2(c: Ctx) -> list:
    return [c.ret, c.fd(0), c.fd(1)]


def _dup3(c: Ctx) -> list:
    return [c.ret, c.fd(0), c.fd(1), open_flags_to_ppm(c.u(2)) & ~1]


def _res_path(c: Ctx) -> list:
    return [c.ret, _path_name(c.ae)]


def _chdir(c: Ctx) -> list:
    return [c.ret, _path_name(c.ae)]


def _res_fd(c: Ctx) -> list:
    return [c.ret, c.fd(0)]


def _res_a(*idx: int) -> Callable[[Ctx], list]:
    return lambda c: [c.ret, *[c.a[i] & 0xFFFFFFFF for i in idx]]


def _setsid(c: Ctx) -> list:
    return [c.ret]


def _unlinkat(c: Ctx) -> list:
    return [c.ret, c.fd(0), _path_name(c.ae), c.u(2) & 0x200]


def _rename(c: Ctx) -> list:
    return [c.ret, _path_name(c.ae, 0), _path_name(c.ae, 1)]


def _renameat(c: Ctx) -> list:
    return [c.ret, c.fd(0), _path_name(c.ae, 0), c.fd(2), _path_name(c.ae, 1)]


def _renameat2(c: Ctx) -> list:
    return _renameat(c) + [c.u(4) if len(c.a) > 4 else 0]


def _mkdir(c: Ctx) -> list:
    return [c.ret, _path_name(c.ae), c.u(1) & 0xFFFFFFFF]


def _mkdirat(c: Ctx) -> list:
    return [c.ret, c.fd(0), _path_name(c.ae), c.u(2) & 0xFFFFFFFF]


def _chmod(c: Ctx) -> list:
    return [c.ret, _path_name(c.ae), c.u(1) & 0o7777]


def _fchmod(c: Ctx) -> list:
    return [c.ret, c.fd(0), c.u(1) & 0o7777]


def _fchmodat(c: Ctx) -> list:
    return [c.ret, c.fd(0), _path_name(c.ae), c.u(2) & 0o7777]


def _symlink(c: Ctx) -> list:
    return [c.ret, None, _path_name(c.ae)]


def _symlinkat(c: Ctx) -> list:
    return [c.ret, None, c.fd(1), _path_name(c.ae)]


def _link(c: Ctx) -> list:
    return [c.ret, _path_name(c.ae, 0), _path_name(c.ae, 1)]


def _linkat(c: Ctx) -> list:
    return [c.ret, c.fd(0), _path_name(c.ae, 0), c.fd(2), _path_name(c.ae, 1), c.u(4) & 0xFFFFFFFF
            if len(c.a) > 4 else 0]


def _kill(c: Ctx) -> list:
    return [c.ret, c.a[0] & 0xFFFFFFFF, c.a[1] & 0xFF]


def _ptrace(c: Ctx) -> list:
    return [c.ret, None, None, c.a[0] & 0xFFFF, c.a[1] & 0xFFFFFFFF]


def _capset(c: Ctx) -> list:
    r = c.ae.first(nl.AUDIT_CAPSET) or {}
    return [c.ret, number(r.get("cap_pi"), 16), number(r.get("cap_pp"), 16), number(r.get("cap_pe"), 16)]


def _memfd_create(c: Ctx) -> list:
    return [c.ret, None, c.u(1) & 0xFFFFFFFF]


def _prctl(c: Ctx) -> list:
    return [c.ret, c.a[0] & 0xFFFFFFFF, None, c.a[1]]


def _setns(c: Ctx) -> list:
    return [c.ret, c.fd(0), clone_flags_to_ppm(c.u(1))]


def _unshare(c: Ctx) -> list:
    return [c.ret, clone_flags_to_ppm(c.u(0))]


def _bpf(c: Ctx) -> list:
    return [c.ret, c.a[0] & 0xFFFFFFFF]


def _finit_module(c: Ctx) -> list:
    return [c.ret, c.fd(0), None, c.u(2) & 0xFFFFFFFF]


def _init_module(c: Ctx) -> list:
    return [c.ret, None, c.u(1), None]


def _chroot(c: Ctx) -> list:
    return [c.ret, _path_name(c.ae)]


def _rw(c: Ctx) -> list:
    """read/write: (res, data, fd, size); audit does not carry the data."""
    return [c.ret, None, c.fd(0), c.u(2) & 0xFFFFFFFF]


def _prw(c: Ctx) -> list:
    return [c.ret, None, c.fd(0), c.u(2) & 0xFFFFFFFF, c.u(3)]


def _readv(c: Ctx) -> list:
    return [c.ret, None, None, c.fd(0)]


def _preadv(c: Ctx) -> list:
    return [c.ret, None, None, c.fd(0), c.u(3)]


def _writev(c: Ctx) -> list:
    return [c.ret, None, c.fd(0), None]


def _pwritev(c: Ctx) -> list:
    return [c.ret, None, c.fd(0), None, c.u(3)]


def _sendto(c: Ctx) -> list:
    sa = c.ae.sockaddr  # a destination address (a4) is logged as a SOCKADDR record
    return [c.ret, None, c.fd(0), c.u(2) & 0xFFFFFFFF,
            _tuple(sa, c.pid, c.fd(0), True, c.resolve and c.ret >= 0) if sa is not None else None]


def _recvfrom(c: Ctx) -> list:
    return [c.ret, None, None, c.fd(0), c.u(2) & 0xFFFFFFFF]


def _sendmsg(c: Ctx) -> list:
    return [c.ret, None, c.fd(0), None, None]


def _recvmsg(c: Ctx) -> list:
    return [c.ret, None, None, None, None, c.fd(0)]


def _userfaultfd(c: Ctx) -> list:
    return [c.ret, c.u(0) & 0xFFFFFFFF]


BUILDERS: dict[str, Callable[[Ctx], list]] = {
    "open": _open, "openat": _openat, "openat2": _openat2, "creat": _creat,
    "open_by_handle_at": _open_by_handle_at,
    "execve": _execve, "execveat": _execveat,
    "clone": _clone_like(-1), "clone3": _clone_like(0), "fork": _clone_like(0),
    "vfork": _clone_like(32768 | (1 << 27)),
    "close": _close, "connect": _connect, "accept": _accept, "accept4": _accept4, "bind": _bind,
    "socket": _socket, "listen": _listen, "pipe": _pipe, "pipe2": _pipe2, "socketpair": _socketpair,
    "dup": _dup, "dup2": _dup2, "dup3": _dup3,
    "chdir": _chdir, "fchdir": _res_fd, "chroot": _chroot,
    "setuid": _res_a(0), "setgid": _res_a(0), "setreuid": _res_a(0, 1), "setregid": _res_a(0, 1),
    "setresuid": _res_a(0, 1, 2), "setresgid": _res_a(0, 1, 2), "setsid": _setsid,
    "setpgid": _res_a(0, 1),
    "unlink": _res_path, "unlinkat": _unlinkat, "rmdir": _res_path,
    "rename": _rename, "renameat": _renameat, "renameat2": _renameat2,
    "mkdir": _mkdir, "mkdirat": _mkdirat,
    "chmod": _chmod, "fchmod": _fchmod, "fchmodat": _fchmodat,
    "symlink": _symlink, "symlinkat": _symlinkat, "link": _link, "linkat": _linkat,
    "kill": _kill, "tkill": _kill, "ptrace": _ptrace, "capset": _capset,
    "memfd_create": _memfd_create, "prctl": _prctl, "setns": _setns, "unshare": _unshare,
    "bpf": _bpf, "finit_module": _finit_module, "init_module": _init_module,
    "userfaultfd": _userfaultfd,
    "read": _rw, "write": _rw, "pread64": _prw, "pwrite64": _prw, "readv": _readv, "writev": _writev,
    "preadv": _preadv, "pwritev": _pwritev, "sendto": _sendto, "recvfrom": _recvfrom,
    "sendmsg": _sendmsg, "recvmsg": _recvmsg,
}
# Syscalls whose exit event in the table has another name. `exit` (one thread ends) is not
# translated: audit names the process, not the thread, so it cannot say which thread ended
# (`exit_group` ends them all: that is the procexit).
EVENT_NAME = {"exit_group": "procexit", "pread64": "pread", "pwrite64": "pwrite"}
BUILDERS["exit_group"] = _procexit

TRANSLATED_SYSCALLS = frozenset(n for n in BUILDERS if EVENT_NAME.get(n, n) in CODES)
_NPARAMS = {c: et.info(c).nparams for c in CODES.values()}


_B64_NAMES = {v: k for k, v in B64.items()}
_X86_64 = b"c000003e"
_X86_64_CALLS: dict[bytes, tuple] = {
    str(nr).encode(): (name, BUILDERS.get(name), code, _NPARAMS[code] if code is not None else 0)
    for nr, name in _B64_NAMES.items() for code in [CODES.get(EVENT_NAME.get(name, name))]}
_TTY_MAJOR = {b"pts": 136, b"ttyS": 4, b"tty": 4}


def tty_number(token: bytes | None) -> int:
    """The controlling terminal as /proc's tty_nr encodes it, from a `tty=` token (pts3, tty1)."""
    if not token or token == b"(none)":
        return 0
    for prefix in (b"pts", b"ttyS", b"tty"):
        if token.startswith(prefix) and token[len(prefix):].isdigit():
            minor = int(token[len(prefix):]) + (64 if prefix == b"ttyS" else 0)
            return (minor & 0xFF) | (_TTY_MAJOR[prefix] << 8) | ((minor & ~0xFF) << 12)
    return 1  # a terminal of another kind: at least "has a tty"


def thread_hint(ae: AuditEvent, sc: dict[str, bytes]) -> ThreadInfo:
    """The process as the kernel described it in the SYSCALL record (identity fields)."""
    pid = number(sc.get("pid"))
    uid, gid = number(sc.get("uid")), number(sc.get("gid"))
    t = ThreadInfo(pid, pid, number(sc.get("ppid")), comm=untrusted(sc.get("comm")) or "",
                   exepath=untrusted(sc.get("exe")) or "", uid=uid, gid=gid,
                   euid=number(sc.get("euid")), egid=number(sc.get("egid")),
                   loginuid=number(sc.get("auid"), default=0xFFFFFFFF))
    t.tty = tty_number(sc.get("tty"))
    cwd = ae.cwd
    if cwd:
        t.cwd = cwd
    return t


class Translator:
    """Audit events in, (event, identity) out; counts what it does not translate.

    `exclude`: pids whose syscalls are never events (Tiercel's own, the local nats-server's;
    the audit rules exclude them too, this catches the records already queued)."""

    def __init__(self, self_pid: int | None = None, resolve: bool = True, exclude: set[int] | None = None,
                 resolve_sockets: bool | None = None):
        self.self_pid = os.getpid() if self_pid is None else self_pid
        self.exclude = {self.self_pid} | set(exclude or ())
        self.resolve = resolve if resolve_sockets is None else resolve_sockets
        self.untranslated: dict[str, int] = {}
        self.not_syscall = 0
        self.own = 0
        self.garbled = 0

    def translate(self, ae: AuditEvent) -> tuple[Event, tuple[bytes, AuditEvent]] | None:
        """The exit event of one audit event and the identity its SYSCALL record states
        (`ppid=... exe=...` span, the audit event); None when it is not translated."""
        span = ae.syscall_span()
        if span is None:
            self.not_syscall += 1
            return None
        g = syscall_groups(*span)
        if g is None:
            self.garbled += 1
            return None
        # x86_64, by the syscall number as the record writes it: name, builder, code, nparams
        hit = _X86_64_CALLS.get(g[1]) if g[0] == _X86_64 else None
        if hit is None:
            try:
                nr = int(g[1])
            except ValueError:
                self.garbled += 1
                return None
            name = _B64_NAMES.get(nr) if g[0] == _X86_64 else (syscall_name(_num(g[0], 16), nr) or f"#{nr}")
            build = BUILDERS.get(name)  # type: ignore[arg-type]
            code = CODES.get(EVENT_NAME.get(name, name))  # type: ignore[arg-type]
            n = _NPARAMS[code] if code is not None else 0
        else:
            name, build, code, n = hit
        try:
            pid = int(g[9])
        except ValueError:
            self.garbled += 1
            return None
        if pid in self.exclude:
            self.own += 1
            return None
        if build is None or code is None:
            self.untranslated[name] = self.untranslated.get(name, 0) + 1  # type: ignore[index]
            return None
        try:
            params = build(Ctx(ae, g, pid, self.resolve))
        except ValueError:  # a token that is not the number the layout promises
            self.garbled += 1
            return None
        if len(params) != n:
            if len(params) < n:
                params.extend([None] * (n - len(params)))
            else:
                del params[n:]
        return Event(0, ae.ts, pid, code, params), (g[7], ae)
