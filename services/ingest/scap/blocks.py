"""Block ids and the metadata blocks of a .scap capture (section header, machine info, interface,
user, process and fd lists), parsed from a block body into the state engine's seeds.

Layouts: ../shared/reference/scap-format.md sections 2-7. Every parser takes the block body
(bytes between the 8-byte block header and the trailer) and never reads past it; a short or
malformed entry raises `ScapError`, which the reader turns into a counted skip of the block.

Byte order is the section's (its SHB magic decides): every parser takes `order` ("<" little-endian,
the default, ">" big-endian for a capture written on s390x) and reads all integers so; addresses
stay network-order bytes, ports are host order and so follow the section (scap-format.md 1.2, 7).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

from tiercel.common.event import FdInfo, ThreadInfo


class ScapError(ValueError):
    """A capture that cannot be read (not a capture, unsupported, or corrupt framing)."""


# Block ids (section 2).
SHB = 0x0A0D0D0A
MI = (0x201, 0x8002ABCD)
PL_VERSIONS = {0x202: 1, 0x8000ABCD: 1, 0x207: 2, 0x8013ABCD: 2, 0x209: 3, 0x8014ABCD: 3, 0x210: 4,
               0x211: 5, 0x212: 6, 0x213: 7, 0x214: 8, 0x215: 9}
FDL_VERSIONS = {0x203: 1, 0x8001ABCD: 1, 0x218: 2}
IL_VERSIONS = {0x205: 1, 0x8011ABCD: 1, 0x219: 2}
UL_VERSIONS = {0x206: 1, 0x8012ABCD: 1, 0x220: 2}
# Event blocks: id -> (header version, has dump flags, large)
EV_BLOCKS = {0x204: (1, False, False), 0x8010ABCD: (1, False, False), 0x208: (1, True, False),
             0x216: (2, False, False), 0x217: (2, True, False), 0x221: (2, False, True),
             0x222: (2, True, True)}
MAGIC = 0x1A2B3C4D
MAGIC_SWAPPED = 0x4D3C2B1A

# Dump flags of EVF blocks.
DF_STATE_ONLY = 1

# scap fd types (FDL entries) -> (fd.type name, scap id written back)
SCAP_FD_TYPES = {
    1: "file", 2: "directory", 3: "ipv4", 4: "ipv6", 5: "ipv4", 6: "ipv6", 7: "pipe", 8: "unix",
    9: "event", 10: "unsupported", 11: "signalfd", 12: "eventpoll", 13: "inotify", 14: "timerfd",
    15: "netlink", 16: "file", 17: "bpf", 18: "userfaultfd", 19: "io_uring", 20: "memfd", 21: "pidfd",
}
L4PROTOS = {0: "", 1: "", 2: "tcp", 3: "udp", 4: "icmp", 5: "raw"}
L4PROTO_IDS = {"": 0, "tcp": 2, "udp": 3, "icmp": 4, "raw": 5}


@dataclass(slots=True)
class Section:
    """A section header: the start of a capture (or of a concatenated one)."""
    major: int
    minor: int
    length: int = -1
    options: list[tuple[int, bytes]] = field(default_factory=list)
    offset: int = 0
    byteorder: str = "little"  # "big" for a section written on a big-endian host


@dataclass(slots=True)
class MachineInfo:
    num_cpus: int = 0
    memory_size_bytes: int = 0
    max_pid: int = 0
    hostname: str = ""
    boot_ts_epoch: int = 0
    flags: int = 0


@dataclass(slots=True)
class Interface:
    name: str
    family: int  # 2 ipv4, 10 ipv6
    addr: str
    netmask: str
    bcast: str
    linkspeed: int = 0


@dataclass(slots=True)
class InterfaceList:
    interfaces: list[Interface] = field(default_factory=list)


@dataclass(slots=True)
class User:
    uid: int
    gid: int
    name: str
    homedir: str = ""
    shell: str = ""


@dataclass(slots=True)
class Group:
    gid: int
    name: str


@dataclass(slots=True)
class UserList:
    users: list[User] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)


@dataclass(slots=True)
class ProcessList:
    threads: list[ThreadInfo] = field(default_factory=list)


@dataclass(slots=True)
class FdList:
    tid: int
    fds: list[FdInfo] = field(default_factory=list)


class _Ints:
    """The integer structs of one byte order, built once."""

    __slots__ = ("H", "I", "Q", "q", "mi_head", "mi_tail", "shb")

    def __init__(self, order: str):
        self.H, self.I, self.Q, self.q = (struct.Struct(order + c) for c in "HIQq")
        self.mi_head = struct.Struct(order + "IQQ")
        self.mi_tail = struct.Struct(order + "QQ")
        self.shb = struct.Struct(order + "IHHq")


INTS = {"<": _Ints("<"), ">": _Ints(">")}
_LE = INTS["<"]


class _Cur:
    """A cursor over a block body; every read is bounds-checked."""

    __slots__ = ("b", "pos", "end", "o")

    def __init__(self, b, pos: int, end: int, o: _Ints = _LE):
        self.b, self.pos, self.end, self.o = b, pos, end, o

    def need(self, n: int) -> None:
        if self.pos + n > self.end:
            raise ScapError(f"entry overruns its block (need {n} bytes at body offset {self.pos})")

    def u8(self) -> int:
        self.need(1)
        v = self.b[self.pos]
        self.pos += 1
        return v

    def unpack(self, st: struct.Struct):
        self.need(st.size)
        v = st.unpack_from(self.b, self.pos)
        self.pos += st.size
        return v

    def u16(self) -> int:
        return self.unpack(self.o.H)[0]

    def u32(self) -> int:
        return self.unpack(self.o.I)[0]

    def u64(self) -> int:
        return self.unpack(self.o.Q)[0]

    def i64(self) -> int:
        return self.unpack(self.o.q)[0]

    def raw(self, n: int) -> bytes:
        self.need(n)
        v = bytes(self.b[self.pos:self.pos + n])
        self.pos += n
        return v

    def str(self) -> str:
        n = self.u16()
        return _text(self.raw(n))

    def list(self) -> list[str]:
        n = self.u16()
        raw = self.raw(n)
        if not raw:
            return []
        if raw.endswith(b"\0"):
            raw = raw[:-1]
        return [_text(x) for x in raw.split(b"\0")]


def _text(b: bytes) -> str:
    i = b.find(b"\0")
    if i >= 0:
        b = b[:i]
    return b.decode("utf-8", "surrogateescape")


def _ip4(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, b)


def _ip6(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)


def shb_order(body, offset: int) -> str:
    """The byte order of a section, from its SHB magic: "<" or ">" (libscap itself refuses ">")."""
    if len(body) < 4:
        raise ScapError(f"section header at offset {offset} is too short")
    magic = _LE.I.unpack_from(body, 0)[0]
    if magic == MAGIC:
        return "<"
    if magic == MAGIC_SWAPPED:
        return ">"
    raise ScapError(f"bad section header magic 0x{magic:08x} at offset {offset}: not a .scap capture")


def parse_shb(body, offset: int) -> Section:
    order = shb_order(body, offset)
    c = _Cur(body, 4, len(body), INTS[order])
    major, minor = c.u16(), c.u16()
    if major != 1:
        raise ScapError(f"unsupported .scap major version {major} at offset {offset}")
    length = c.i64()
    opts: list[tuple[int, bytes]] = []
    while c.end - c.pos >= 4:
        code, ln = c.u16(), c.u16()
        if code == 0:
            break
        if c.pos + ln > c.end:
            break
        opts.append((code, c.raw(ln)))
        c.pos += (4 - ln % 4) % 4
    return Section(major, minor, length, opts, offset, "little" if order == "<" else "big")


def parse_mi(body, order: str = "<") -> MachineInfo:
    o = INTS[order]
    b = bytes(body[:180]).ljust(180, b"\0")
    num_cpus, mem, max_pid = o.mi_head.unpack_from(b, 0)
    host = _text(b[20:148])
    boot, flags = o.mi_tail.unpack_from(b, 148)
    return MachineInfo(num_cpus, mem, max_pid, host, boot, flags)


def parse_il(body, version: int, order: str = "<") -> InterfaceList:
    out = InterfaceList()
    c = _Cur(body, 0, len(body), INTS[order])
    while c.end - c.pos >= 4:
        entry_end = None
        if version == 2:
            ln = c.u32()
            entry_end = c.pos + ln
            if entry_end > c.end:
                raise ScapError("interface entry overruns its block")
        typ, namelen = c.u16(), c.u16()
        if typ in (1, 3):
            addr, mask, bcast = (_ip4(c.raw(4)) for _ in range(3))
            speed = c.u64() if typ == 1 else 0
            out.interfaces.append(Interface(_text(c.raw(namelen)), 2, addr, mask, bcast, speed))
        elif typ in (2, 4):
            addr, mask, bcast = (_ip6(c.raw(16)) for _ in range(3))
            speed = c.u64() if typ == 2 else 0
            out.interfaces.append(Interface(_text(c.raw(namelen)), 10, addr, mask, bcast, speed))
        elif entry_end is None:
            raise ScapError(f"unknown interface type {typ} in a v1 interface list")
        if entry_end is not None:
            c.pos = entry_end
    return out


def parse_ul(body, version: int, order: str = "<") -> UserList:
    out = UserList()
    c = _Cur(body, 0, len(body), INTS[order])
    while c.end - c.pos >= 4:
        start = c.pos
        entry_end = None
        if version == 2:
            ln = c.u32()
            if ln < 5 or start + ln > c.end:
                raise ScapError("user entry overruns its block")
            entry_end = start + ln
        typ = c.u8()
        if typ == 0:
            uid, gid = c.u32(), c.u32()
            out.users.append(User(uid, gid, c.str(), c.str(), c.str()))
        else:
            gid = c.u32()
            out.groups.append(Group(gid, c.str()))
        if entry_end is not None:
            c.pos = entry_end
    return out


def parse_pl(body, version: int, order: str = "<") -> ProcessList:
    out = ProcessList()
    o = INTS[order]
    c = _Cur(body, 0, len(body), o)
    while c.end - c.pos >= 4:
        start = c.pos
        entry_end = c.end
        if version >= 9:
            ln = c.u32()
            if ln < 4 or start + ln > c.end:
                raise ScapError("process entry overruns its block")
            entry_end = start + ln
            c = _Cur(body, c.pos, entry_end, o)
        tid, pid, ptid = c.u64(), c.u64(), c.u64()
        sid = c.i64() if version >= 6 else -1
        vpgid = c.i64() if version >= 8 else -1
        comm = c.str()
        exe = c.str()
        exepath = c.str() if version >= 7 else ""
        args = c.list()
        cwd = c.str()
        fdlimit = c.u64()
        flags = c.u32()
        uid, gid = c.u32(), c.u32()
        t = ThreadInfo(_s64(tid), _s64(pid), _s64(ptid), sid=sid, vpgid=vpgid, comm=comm, exe=exe,
                       exepath=exepath, args=args, cwd=cwd, fdlimit=fdlimit, flags=flags, uid=uid, gid=gid)
        if version >= 2:
            t.vmsize_kb, t.vmrss_kb, t.vmswap_kb = c.u32(), c.u32(), c.u32()
            t.pfmajor, t.pfminor = c.u64(), c.u64()
        if version >= 3:
            t.env = c.list()
        if version >= 4:
            t.vtid, t.vpid = c.i64(), c.i64()
            t.cgroups = c.list()
        if version >= 5:
            t.root = c.str()
        if version >= 9:
            _pl_tail(c, t)
            c = _Cur(body, entry_end, len(body), o)
        out.threads.append(t)
    return out


def _s64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _pl_tail(c: _Cur, t: ThreadInfo) -> None:
    """The fields appended to PL v9 entries over time, read while the entry has room."""
    def room(n: int) -> bool:
        return c.end - c.pos >= n

    if c.end - c.pos > 29:  # libs >= 0.10 put pidns_init_start_ts and tty before loginuid
        t.pidns_init_start_ts = c.u64() if room(8) else 0
        t.tty = c.u32() if room(4) else 0
    if room(4):
        t.loginuid = c.u32()
    if room(1):
        t.exe_writable = bool(c.u8())
    if room(24):
        t.cap_inheritable, t.cap_permitted, t.cap_effective = c.u64(), c.u64(), c.u64()
    if room(1):
        t.exe_upper_layer = bool(c.u8())
    if room(24):
        t.exe_ino, t.exe_ino_ctime, t.exe_ino_mtime = c.u64(), c.u64(), c.u64()
    if room(1):
        t.exe_from_memfd = bool(c.u8())
    if room(1):
        t.exe_lower_layer = bool(c.u8())
    if room(8):
        t.pgid = c.i64()


def parse_fdl(body, version: int, order: str = "<") -> FdList:
    o = INTS[order]
    c = _Cur(body, 0, len(body), o)
    out = FdList(_s64(c.u64()))
    while c.end - c.pos >= 4:
        start = c.pos
        entry_end = None
        cc = c
        if version == 2:
            ln = c.u32()
            if ln < 4 or start + ln > c.end:
                raise ScapError("fd entry overruns its block")
            entry_end = start + ln
            cc = _Cur(body, c.pos, entry_end, o)
        fd = cc.i64()
        ino = cc.u64()
        typ = cc.u8()
        f = _fd_entry(cc, fd, ino, typ, entry_end is not None)
        if f is not None:
            f.pid = out.tid
            out.fds.append(f)
        if entry_end is not None:
            c.pos = entry_end
        else:
            c.pos = cc.pos
    return out


def _fd_entry(c: _Cur, fd: int, ino: int, typ: int, sized: bool) -> FdInfo | None:
    name = SCAP_FD_TYPES.get(typ)
    if name is None:
        if not sized:
            raise ScapError(f"unknown fd type {typ} in a v1 fd list: the rest of the block is unreadable")
        return None
    f = FdInfo(fd, name, "", ino=ino)
    if typ == 3:
        sip, dip = _ip4(c.raw(4)), _ip4(c.raw(4))
        sport, dport = c.u16(), c.u16()
        f.l4proto = L4PROTOS.get(c.u8(), "")
        f.cip, f.cport, f.sip, f.sport = sip, sport, dip, dport
        f.name = f"{sip}:{sport}->{dip}:{dport}"
    elif typ == 4:
        sip, dip = _ip6(c.raw(16)), _ip6(c.raw(16))
        sport, dport = c.u16(), c.u16()
        f.l4proto = L4PROTOS.get(c.u8(), "")
        f.cip, f.cport, f.sip, f.sport = sip, sport, dip, dport
        f.name = f"{sip}:{sport}->{dip}:{dport}"
    elif typ in (5, 6):
        ip = _ip4(c.raw(4)) if typ == 5 else _ip6(c.raw(16))
        port = c.u16()
        f.l4proto = L4PROTOS.get(c.u8(), "")
        f.sip, f.sport, f.is_server = ip, port, True
        f.name = f"{ip}:{port}"
    elif typ == 8:
        f.usrc, f.udst = c.u64(), c.u64()
        f.name = c.str()
    elif typ == 16:
        f.flags = c.u32()
        f.name = c.str()
        if sized and c.end - c.pos >= 4:
            f.dev = c.u32()
    else:
        f.name = c.str()
    f.nameraw = f.name
    return f
