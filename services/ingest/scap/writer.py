"""The .scap writer, sans-IO: items in, bytes out, in libscap's current layout.

Writes what libscap writes today (format 1.2): a section header, machine info, interface list
v2, user list v2, one process list v9, one fd list v2 per thread, then events in v2 blocks
(`0x216`, `0x217` when dump flags are set, `0x221`/`0x222` for large-payload events). sysdig
0.29 reads these back; the round-trip test proves it.

`byteorder="big"` writes a section as a big-endian host (s390x) would: every integer big-endian,
addresses network order as always, ports host (so big-endian) order. libscap refuses such files;
Tiercel's reader reads them, and the tests use this to prove it.
"""

from __future__ import annotations

import gzip
import socket
import struct
from collections.abc import Iterable
from typing import Any, BinaryIO

from tiercel.common import eventtable as et
from tiercel.common import params as P
from tiercel.common.event import Event, FdInfo, ThreadInfo
from tiercel.ingest.scap import blocks as B


class _Ints:
    """The integer packers of one byte order."""

    __slots__ = ("order", "H", "I", "Q", "q")

    def __init__(self, order: str):
        self.order = order
        self.H, self.I, self.Q, self.q = (struct.Struct(order + c).pack for c in "HIQq")


_INTS = {o: _Ints(o) for o in P.ORDERS}


def _order(byteorder: str) -> str:
    try:
        return P.BYTEORDERS[byteorder]
    except KeyError:
        raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}") from None

EV_V2 = 0x216
EVF_V2 = 0x217
EV_V2_LARGE = 0x221
EVF_V2_LARGE = 0x222
PL_V9 = 0x215
FDL_V2 = 0x218
IL_V2 = 0x219
UL_V2 = 0x220
MI = 0x201


def block(btype: int, body: bytes, order: str = "<") -> bytes:
    """Frame a body: header, body, zero padding to 4, trailer."""
    total = (8 + len(body) + 4 + 3) & ~3
    pad = total - 12 - len(body)
    u32 = _INTS[order].I
    return u32(btype) + u32(total) + body + b"\0" * pad + u32(total)


def shb(minor: int = 2, options: Iterable[tuple[int, bytes]] = (), order: str = "<") -> bytes:
    body = struct.pack(order + "IHHq", B.MAGIC, 1, minor, -1)
    opts = list(options)
    if opts:
        u16 = _INTS[order].H
        for code, val in opts:
            body += u16(code) + u16(len(val)) + val + b"\0" * ((4 - len(val) % 4) % 4)
        body += b"\0\0\0\0"
    return block(B.SHB, body, order)


def machine_info(mi: B.MachineInfo, order: str = "<") -> bytes:
    body = struct.pack(order + "IQQ", mi.num_cpus, mi.memory_size_bytes, mi.max_pid)
    body += mi.hostname.encode("utf-8", "surrogateescape")[:127].ljust(128, b"\0")
    body += struct.pack(order + "QQQQ", mi.boot_ts_epoch, mi.flags, 0, 0)
    return block(MI, body, order)


# libscap refuses a capture whose strings exceed its limits (scap_limits.h): paths and names
# 1024 bytes, argument/environment/cgroup lists 4096, user names 256. A live process can have a
# far longer command line, so the writer cuts to the limit as the kernel driver does.
MAX_PATH = 1024
MAX_LIST = 4096
MAX_CREDENTIAL = 256


def _str(s: str, limit: int = MAX_PATH, order: str = "<") -> bytes:
    b = (s or "").encode("utf-8", "surrogateescape")[:limit]
    return _INTS[order].H(len(b)) + b


def _list(items: Iterable[str], limit: int = MAX_LIST, order: str = "<") -> bytes:
    """NUL-terminated items; past `limit` the last item is cut and still NUL-terminated."""
    b = b"".join(x.encode("utf-8", "surrogateescape") + b"\0" for x in items)
    if len(b) > limit:
        b = b[:limit - 1] + b"\0"
    return _INTS[order].H(len(b)) + b


def interface_list(il: B.InterfaceList, order: str = "<") -> bytes:
    o = _INTS[order]
    body = b""
    for i in il.interfaces:
        name = i.name.encode()
        if i.family == 10:
            e = o.H(2) + o.H(len(name)) + b"".join(
                socket.inet_pton(socket.AF_INET6, x) for x in (i.addr, i.netmask, i.bcast))
        else:
            e = o.H(1) + o.H(len(name)) + b"".join(
                socket.inet_pton(socket.AF_INET, x) for x in (i.addr, i.netmask, i.bcast))
        e += o.Q(i.linkspeed) + name
        body += o.I(len(e)) + e  # IL v2 entry length does not count itself
    return block(IL_V2, body, order)


def user_list(ul: B.UserList, order: str = "<") -> bytes:
    o = _INTS[order]
    body = b""
    for u in ul.users:
        e = (bytes((0,)) + o.I(u.uid) + o.I(u.gid) + _str(u.name, MAX_CREDENTIAL, order)
             + _str(u.homedir, MAX_PATH, order) + _str(u.shell, MAX_PATH, order))
        body += o.I(len(e) + 4) + e
    for g in ul.groups:
        e = bytes((1,)) + o.I(g.gid) + _str(g.name, MAX_CREDENTIAL, order)
        body += o.I(len(e) + 4) + e
    return block(UL_V2, body, order)


def _u64(v: int) -> int:
    return v & 0xFFFFFFFFFFFFFFFF


def process_entry(t: ThreadInfo, order: str = "<") -> bytes:
    o = order
    e = struct.pack(o + "QQQqq", _u64(t.tid), _u64(t.pid), _u64(t.ptid), t.sid, t.vpgid)
    e += (_str(t.comm, MAX_PATH, o) + _str(t.exe, MAX_PATH, o) + _str(t.exepath, MAX_PATH, o)
          + _list(t.args, MAX_LIST, o) + _str(t.cwd, MAX_PATH, o))
    e += struct.pack(o + "QIII", t.fdlimit, t.flags & 0xFFFFFFFF, t.uid & 0xFFFFFFFF, t.gid & 0xFFFFFFFF)
    e += struct.pack(o + "IIIQQ", t.vmsize_kb, t.vmrss_kb, t.vmswap_kb, t.pfmajor, t.pfminor)
    e += _list(t.env, MAX_LIST, o)
    e += struct.pack(o + "qq", t.vtid, t.vpid)
    e += _list(t.cgroups, MAX_LIST, o)
    e += _str(t.root, MAX_PATH, o)
    # the libs >= 0.10 tail (pidns_init_start_ts and tty first)
    e += struct.pack(o + "QII", t.pidns_init_start_ts, t.tty, t.loginuid & 0xFFFFFFFF)
    e += bytes((int(bool(t.exe_writable)),))
    e += struct.pack(o + "QQQ", t.cap_inheritable, t.cap_permitted, t.cap_effective)
    e += bytes((int(bool(t.exe_upper_layer)),))
    e += struct.pack(o + "QQQ", t.exe_ino, t.exe_ino_ctime, t.exe_ino_mtime)
    e += bytes((int(bool(t.exe_from_memfd)), int(bool(t.exe_lower_layer))))
    e += struct.pack(o + "q", t.pgid)
    return _INTS[o].I(len(e) + 4) + e


def process_list(threads: Iterable[ThreadInfo], order: str = "<") -> bytes:
    return block(PL_V9, b"".join(process_entry(t, order) for t in threads), order)


_FD_TYPE_IDS = {"file": 16, "directory": 2, "pipe": 7, "unix": 8, "event": 9, "unsupported": 10,
                "signalfd": 11, "eventpoll": 12, "inotify": 13, "timerfd": 14, "netlink": 15,
                "bpf": 17, "userfaultfd": 18, "io_uring": 19, "memfd": 20, "pidfd": 21}


def _pton(ip: str | None, v6: bool) -> bytes:
    if not ip:
        return b"\0" * (16 if v6 else 4)
    return socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, ip)


def fd_entry(f: FdInfo, order: str = "<") -> bytes | None:
    """One FDL v2 entry, None for fd types a capture cannot describe."""
    o = _INTS[order]
    head = struct.pack(order + "qQ", f.num, f.ino)
    proto = B.L4PROTO_IDS.get(f.l4proto, 0)
    if f.type in ("ipv4", "ipv6"):
        v6 = f.type == "ipv6"
        if f.is_server and f.cip is None:
            e = head + bytes((6 if v6 else 5,)) + _pton(f.sip, v6) + o.H(f.sport or 0) + bytes((proto,))
        else:
            e = (head + bytes((4 if v6 else 3,)) + _pton(f.cip, v6) + _pton(f.sip, v6)
                 + o.H(f.cport or 0) + o.H(f.sport or 0) + bytes((proto,)))
    elif f.type == "unix":
        e = head + bytes((8,)) + o.Q(f.usrc) + o.Q(f.udst) + _str(f.name, MAX_PATH, order)
    elif f.type == "file":
        e = head + bytes((16,)) + o.I(f.flags & 0xFFFFFFFF) + _str(f.name, MAX_PATH, order) + o.I(f.dev & 0xFFFFFFFF)
    else:
        tid = _FD_TYPE_IDS.get(f.type)
        if tid is None:
            return None
        e = head + bytes((tid,)) + _str(f.name, MAX_PATH, order)
    return o.I(len(e) + 4) + e


def fd_list(tid: int, fds: Iterable[FdInfo], order: str = "<") -> bytes:
    body = _INTS[order].Q(_u64(tid))
    for f in fds:
        e = fd_entry(f, order)
        if e is not None:
            body += e
    return block(FDL_V2, body, order)


def event_block(ev: Event, raw_params: list[bytes] | None = None, order: str = "<") -> bytes:
    """One event as a v2 event block (large/flagged variants when needed). `raw_params` must
    already be in `order`."""
    info = et.info(ev.code)
    wide = bool(info and info.large_payload)
    raws = raw_params if raw_params is not None else P.encode_params(ev.code, ev.params, order)
    n = len(raws)
    lens = struct.pack(f"{order}{n}{'I' if wide else 'H'}", *map(len, raws)) if n else b""
    data = b"".join(raws)
    elen = 26 + len(lens) + len(data)
    hdr = struct.pack(order + "QQIHI", ev.ts, _u64(ev.tid), elen, ev.code, n)
    flags = ev.dump_flags
    if flags:
        btype = EVF_V2_LARGE if wide else EVF_V2
        head = struct.pack(order + "HI", max(ev.cpu, 0) & 0xFFFF, flags)
    else:
        btype = EV_V2_LARGE if wide else EV_V2
        head = _INTS[order].H(max(ev.cpu, 0) & 0xFFFF)
    return block(btype, head + hdr + lens + data, order)


class ScapWriter:
    """Write a capture to a binary stream: header and metadata first, then events.
    `byteorder` is "little" (every common host, and what libscap reads) or "big"."""

    def __init__(self, out: BinaryIO, *, compress: bool = False, byteorder: str = "little"):
        self.order = _order(byteorder)
        self._raw = out
        self._out: BinaryIO = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=5) if compress else out  # type: ignore[assignment]
        self._header_done = False
        self.events = 0

    def write_header(self, *, machine: B.MachineInfo | None = None, interfaces: B.InterfaceList | None = None,
                     users: B.UserList | None = None, threads: Iterable[ThreadInfo] = ()) -> None:
        threads = list(threads)
        o = self.order
        parts = [shb(order=o)]
        parts.append(machine_info(machine or B.MachineInfo(), o))
        parts.append(interface_list(interfaces or B.InterfaceList(), o))
        parts.append(user_list(users or B.UserList(), o))
        parts.append(process_list(threads, o))
        for t in threads:
            if t.fds:
                parts.append(fd_list(t.tid, sorted(t.fds.values(), key=lambda f: f.num), o))
        self._out.write(b"".join(parts))
        self._header_done = True

    def write_header_from(self, engine: Any) -> None:
        """The header of a live capture: metadata blocks from a state engine (its machine info,
        users, groups and live threads with their fd tables)."""
        users = B.UserList(list(engine.users.values()), list(engine.groups.values()))
        self.write_header(machine=engine.machine or _this_machine(), interfaces=engine.interfaces,
                          users=users, threads=engine.snapshot())

    def write_event(self, ev: Event) -> None:
        if not self._header_done:
            self.write_header()
        self._out.write(event_block(ev, None, self.order))
        self.events += 1

    def write_events(self, evs: Iterable[Event]) -> None:
        w = self._out.write
        o = self.order
        if not self._header_done:
            self.write_header()
        for ev in evs:
            w(event_block(ev, None, o))
            self.events += 1

    def close(self) -> None:
        if not self._header_done:
            self.write_header()
        if self._out is not self._raw:
            self._out.close()
        self._raw.flush()


def _this_machine() -> B.MachineInfo:
    import os
    import socket as so

    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        mem = 0
    return B.MachineInfo(os.cpu_count() or 1, mem, 0, so.gethostname())


def write_scap(out: BinaryIO, items: Iterable[Any], *, compress: bool = False, byteorder: str = "little") -> int:
    """Write reader items (sections, metadata, events) back as a capture; returns the event count."""
    w = ScapWriter(out, compress=compress, byteorder=byteorder)
    machine = interfaces = users = None
    threads: list[ThreadInfo] = []
    fdl: dict[int, list[FdInfo]] = {}
    it = iter(items)
    pending: Event | None = None
    for item in it:
        if isinstance(item, Event):
            pending = item
            break
        if isinstance(item, B.MachineInfo):
            machine = item
        elif isinstance(item, B.InterfaceList):
            interfaces = item
        elif isinstance(item, B.UserList):
            users = item
        elif isinstance(item, B.ProcessList):
            threads.extend(item.threads)
        elif isinstance(item, B.FdList):
            fdl.setdefault(item.tid, []).extend(item.fds)
    for t in threads:
        if t.tid in fdl and not t.fds:
            t.fds = {f.num: f for f in fdl[t.tid]}
    w.write_header(machine=machine, interfaces=interfaces, users=users, threads=threads)
    if pending is not None:
        w.write_event(pending)
    w.write_events(x for x in it if isinstance(x, Event))
    w.close()
    return w.events
