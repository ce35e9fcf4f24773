"""Big-endian .scap sections (a capture written on s390x): read with the section's byte order
everywhere, to exactly the items of the same capture written little-endian. libscap refuses
them (scap-format.md 1.2, pitfall 25); Tiercel reads them.

The blocks built by hand here (`_Build`) are written from the format reference, not by the
writer, so a mistake shared by the writer and the reader (say, a port left unswapped in both)
still shows: their values are checked, not only compared between the two orders.
"""

from __future__ import annotations

import gzip
import io
import shutil
import socket
import struct
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import tiercel
from tiercel.common import eventtable as et
from tiercel.common import params as P
from tiercel.common.event import Event, FdInfo, ThreadInfo
from tiercel.ingest.scap import blocks as B
from tiercel.ingest.scap import writer as W
from tiercel.ingest.scap.reader import ScapError, ScapParser, read_scap
from tiercel.ingest.scap.writer import ScapWriter, write_scap

CAPTURES = ["cat_write.scap", "empty.scap", "open-multiple-files.scap", "libs/curl_google.scap",
            "libs/test_ipv6_client.scap"]


def _dump(x, depth: int = 0):
    """Every field of a reader item, recursively (the event model's classes have no __eq__)."""
    if depth > 6:
        return repr(x)
    if isinstance(x, (list, tuple)):
        return [_dump(i, depth + 1) for i in x]
    if isinstance(x, dict):
        return {k: _dump(v, depth + 1) for k, v in x.items()}
    fields = getattr(x, "__dataclass_fields__", None)
    if fields is not None:
        return (type(x).__name__, {f: _dump(getattr(x, f), depth + 1) for f in fields})
    slots = [s for c in type(x).__mro__ for s in getattr(c, "__slots__", ())]
    if slots and not isinstance(x, (bytes, str, int, float)):
        return (type(x).__name__, {s: _dump(getattr(x, s, None), depth + 1) for s in slots})
    return x


def _items(data: bytes, parser: ScapParser | None = None) -> list:
    return list(read_scap(data, parser))


def _comparable(items) -> list:
    """Items with the sections' byte order set aside (the one thing that must differ)."""
    out = []
    for i in items:
        if isinstance(i, B.Section):
            assert i.byteorder in ("little", "big")
            i = B.Section(i.major, i.minor, i.length, i.options, i.offset)
        out.append(_dump(i))
    return out


def _ev_key(items) -> list:
    return [(e.num, e.ts, e.tid, e.cpu, e.code, e.params, e.dump_flags) for e in items if isinstance(e, Event)]


# --- the conformance captures, rewritten big-endian ------------------------------------------------

@pytest.mark.parametrize("name", CAPTURES)
def test_conformance_capture_big_endian_reads_the_same(conformance_dir, name):
    original = _items((conformance_dir / "traces" / name).read_bytes())
    le, be = io.BytesIO(), io.BytesIO()
    write_scap(le, original)
    write_scap(be, original, byteorder="big")
    le_b, be_b = le.getvalue(), be.getvalue()
    assert len(le_b) == len(be_b) and le_b != be_b
    # really big-endian: SHB length 28 and the magic as a big-endian host stores them
    assert be_b[:12] == bytes.fromhex("0a0d0d0a 0000001c 1a2b3c4d")
    pl, pb = ScapParser(), ScapParser()
    got_le, got_be = _items(le_b, pl), _items(be_b, pb)
    assert [s.byteorder for s in got_be if isinstance(s, B.Section)] == ["big"]
    # every item: events and their params, machine info, interface, user, process and fd lists
    assert _comparable(got_be) == _comparable(got_le)
    assert pb.stats == pl.stats and set(pb.stats) == {"blocks", "events", "sections"}, pb.stats
    # and the events are those of the little-endian original, as recorded
    assert _ev_key(got_be) == _ev_key(original)


def test_big_endian_in_small_chunks_equals_whole(conformance_dir):
    """The SHB decides the order even when it arrives a few bytes at a time."""
    original = _items((conformance_dir / "traces" / "libs" / "test_ipv6_client.scap").read_bytes())
    be = io.BytesIO()
    write_scap(be, original, byteorder="big")
    data = be.getvalue()
    whole = _comparable(_items(data))
    for step in (1, 5, 11):
        p = ScapParser()
        got = []
        for i in range(0, min(len(data), 40_000 if step == 1 else len(data)), step):
            got.extend(p.feed(data[i:i + step]))
        if step == 1:
            assert _comparable(got) == whole[:len(got)] and len(got) > 3
            continue
        p.close()
        assert _comparable(got) == whole


def test_sections_of_both_orders_in_one_file():
    """Byte order is the section's: each SHB decides, in either direction, plain or gzip members."""
    t = ThreadInfo(100, pid=100, comm="sh", exe="/bin/sh", cwd="/", args=["-c", "x"],
                   fds={3: FdInfo(3, "file", "/etc/x")})
    evs = [Event(1, 1_700_000_000_000_000_000, 100, 3, [3, "/etc/x", 1, 0, 0, 5], cpu=1),
           Event(2, 1_700_000_000_000_000_500, 100, et.PPME["PPME_SOCKET_CONNECT_X"],
                 [0, (2, "10.0.0.1", 4000, "1.2.3.4", 80), 3], cpu=258)]

    def section(byteorder: str) -> bytes:
        buf = io.BytesIO()
        w = ScapWriter(buf, byteorder=byteorder)
        w.write_header(machine=B.MachineInfo(2, 1 << 30, 1 << 22, "s390x-host"), threads=[t])
        w.write_events(evs)
        w.close()
        return buf.getvalue()

    le, be = section("little"), section("big")
    for data in (le + be + le, gzip.compress(be) + gzip.compress(le) + gzip.compress(be)):
        p = ScapParser()
        items = _items(data, p)
        orders = [s.byteorder for s in items if isinstance(s, B.Section)]
        assert orders in (["little", "big", "little"], ["big", "little", "big"])
        got = [(e.cpu, e.params) for e in items if isinstance(e, Event)]
        assert got == [(1, evs[0].params), (258, evs[1].params)] * 3
        mis = [i for i in items if isinstance(i, B.MachineInfo)]
        assert [(m.num_cpus, m.memory_size_bytes, m.max_pid, m.hostname) for m in mis] == [
            (2, 1 << 30, 1 << 22, "s390x-host")] * 3
        assert set(p.stats) == {"blocks", "events", "sections"}, p.stats


def test_writer_refuses_an_unknown_byte_order():
    with pytest.raises(ValueError, match="byteorder"):
        ScapWriter(io.BytesIO(), byteorder="middle")


# --- every block type and version, built by hand from the format reference ------------------------

class _Build:
    """Blocks of any version in either byte order, from scap-format.md's tables."""

    def __init__(self, order: str):
        self.bo = "little" if order == "<" else "big"
        self.o = order

    def u(self, v: int, n: int, signed: bool = False) -> bytes:
        return v.to_bytes(n, self.bo, signed=signed)

    def block(self, btype: int, body: bytes) -> bytes:
        total = (12 + len(body) + 3) & ~3
        return self.u(btype, 4) + self.u(total, 4) + body + b"\0" * (total - 12 - len(body)) + self.u(total, 4)

    def s(self, text: str) -> bytes:
        b = text.encode()
        return self.u(len(b), 2) + b

    def lst(self, items) -> bytes:
        b = b"".join(x.encode() + b"\0" for x in items)
        return self.u(len(b), 2) + b

    def shb(self, minor: int) -> bytes:
        return self.block(B.SHB, self.u(B.MAGIC, 4) + self.u(1, 2) + self.u(minor, 2) + self.u(-1, 8, True))

    def mi(self) -> bytes:
        body = (self.u(4, 4) + self.u(8 << 30, 8) + self.u(32768, 8) + b"bighost".ljust(128, b"\0")
                + self.u(1_600_000_000 * 10**9, 8) + self.u(1, 8) + self.u(0, 16))
        return self.block(0x201, body)

    def il_v1(self) -> bytes:
        a4 = b"".join(socket.inet_aton(x) for x in ("10.1.2.3", "255.255.0.0", "10.1.255.255"))
        a6 = b"".join(socket.inet_pton(socket.AF_INET6, x) for x in ("2001:db8::1", "ffff::", "::"))
        body = (self.u(1, 2) + self.u(3, 2) + a4 + self.u(1000, 8) + b"et0"
                + self.u(2, 2) + self.u(3, 2) + a6 + self.u(10_000, 8) + b"et1"
                + self.u(3, 2) + self.u(2, 2) + a4 + b"lo")
        return self.block(0x205, body)

    def il_v2(self) -> bytes:
        e = self.u(1, 2) + self.u(3, 2) + socket.inet_aton("127.0.0.1") * 3 + self.u(7, 8) + b"lo0"
        return self.block(0x219, self.u(len(e), 4) + e)

    def ul(self, version: int) -> bytes:
        user = b"\0" + self.u(1000, 4) + self.u(100, 4) + self.s("alice") + self.s("/home/a") + self.s("/bin/sh")
        group = b"\1" + self.u(100, 4) + self.s("users")
        if version == 1:
            return self.block(0x206, user + group)
        return self.block(0x220, b"".join(self.u(len(e) + 4, 4) + e for e in (user, group)))

    def pl_entry(self, v: int, tid: int) -> bytes:
        e = self.u(tid, 8) + self.u(tid, 8) + self.u(1, 8)
        if v >= 6:
            e += self.u(-1 if tid % 2 else tid, 8, True)
        if v >= 8:
            e += self.u(tid, 8, True)
        e += self.s("comm") + self.s("/usr/bin/comm")
        if v >= 7:
            e += self.s("/usr/bin/comm")
        e += self.lst(["-a", "b"]) + self.s("/tmp") + self.u(1024, 8) + self.u(0x80, 4) + self.u(1000, 4) + self.u(100, 4)
        if v >= 2:
            e += self.u(5000, 4) + self.u(4000, 4) + self.u(3, 4) + self.u(12, 8) + self.u(3400, 8)
        if v >= 3:
            e += self.lst(["HOME=/root", "TERM=xterm"])
        if v >= 4:
            e += self.u(tid + 1, 8, True) + self.u(tid + 2, 8, True) + self.lst(["cpu=/x", "memory=/y"])
        if v >= 5:
            e += self.s("/")
        if v >= 9:
            e += (self.u(123456789, 8) + self.u(34816, 4) + self.u(1000, 4) + b"\1" + self.u(1, 8) + self.u(2, 8)
                  + self.u(0x1FF, 8) + b"\0" + self.u(77, 8) + self.u(88, 8) + self.u(99, 8) + b"\1\0"
                  + self.u(tid, 8, True))
            e = self.u(len(e) + 4, 4) + e
        return e

    def pl(self, v: int) -> bytes:
        btype = next(k for k, ver in B.PL_VERSIONS.items() if ver == v and k < 0x80000000)
        return self.block(btype, self.pl_entry(v, 300 + v) + self.pl_entry(v, 400 + v))

    def fd_entries(self, sized: bool) -> bytes:
        ip = socket.inet_aton
        ip6 = lambda x: socket.inet_pton(socket.AF_INET6, x)  # noqa: E731
        entries = [
            self.u(0, 8) + self.u(11, 8) + b"\x01" + self.s("/dev/null"),
            self.u(3, 8) + self.u(12, 8) + b"\x03" + ip("10.0.0.1") + ip("1.2.3.4") + self.u(40000, 2) + self.u(443, 2) + b"\x02",
            self.u(4, 8) + self.u(13, 8) + b"\x04" + ip6("2001:db8::4") + ip6("::1") + self.u(5, 2) + self.u(6, 2) + b"\x03",
            self.u(5, 8) + self.u(14, 8) + b"\x05" + ip("0.0.0.0") + self.u(8080, 2) + b"\x02",
            self.u(6, 8) + self.u(15, 8) + b"\x06" + ip6("::") + self.u(53, 2) + b"\x03",
            self.u(7, 8) + self.u(16, 8) + b"\x08" + self.u(0xFFFF88003C420800, 8) + self.u(1, 8) + self.s("/run/s"),
            self.u(8, 8) + self.u(17, 8) + b"\x10" + self.u(0o1101, 4) + self.s("/var/log/x")
            + (self.u(0x803, 4) if sized else b""),
            self.u(9, 8) + self.u(18, 8) + b"\x07" + self.s("pipe:[1]"),
        ]
        if sized:
            return b"".join(self.u(len(e) + 4, 4) + e for e in entries)
        return b"".join(entries)

    def fdl(self, version: int, tid: int) -> bytes:
        return self.block(0x203 if version == 1 else 0x218, self.u(tid, 8) + self.fd_entries(version == 2))

    def params(self) -> list[tuple[int, list[bytes]]]:
        """(code, raw params) of events whose parameters have every encoding the order touches."""
        u, ip = self.u, socket.inet_aton
        ip6 = lambda x: socket.inet_pton(socket.AF_INET6, x)  # noqa: E731
        return [
            (et.PPME["PPME_SYSCALL_OPEN_X"], [u(3, 8, True), b"/etc/passwd\0", u(4097, 4), u(0o644, 4)]),
            (et.PPME["PPME_SOCKET_CONNECT_X"], [u(-115, 8, True), b"\x02" + ip("10.0.0.1") + u(4000, 2) + ip("1.2.3.4")
                                               + u(80, 2), u(3, 8, True)]),
            (et.PPME["PPME_SOCKET_CONNECT_X"], [u(0, 8), b"\x0a" + ip6("2001:db8::4") + u(5, 2) + ip6("::1") + u(6, 2),
                                               u(4, 8, True)]),
            (et.PPME["PPME_SOCKET_CONNECT_X"], [u(0, 8), b"\x01" + u(0xFFFF88003C420800, 8) + u(2, 8) + b"/run/s\0",
                                               u(5, 8, True)]),
            (et.PPME["PPME_SOCKET_BIND_X"], [u(0, 8), b"\x02" + ip("0.0.0.0") + u(22, 2), u(6, 8, True)]),
            (et.PPME["PPME_SYSCALL_POLL_X"], [u(1, 8), u(2, 2) + u(3, 8, True) + u(1, 2) + u(-100, 8, True) + u(4, 2)]),
            (et.PPME["PPME_SOCKET_SETSOCKOPT_X"], [u(0, 8), u(3, 8, True), b"\x01", b"\x02",
                                                   b"\x02" + u(1024, 4), u(4, 4)]),
            (et.PPME["PPME_SOCKET_SETSOCKOPT_X"], [u(0, 8), u(3, 8, True), b"\x01", b"\x02",
                                                   b"\x04" + u(1_500_000_000, 8), u(16, 4)]),
            (et.PPME["PPME_SYSCALL_PTRACE_X"], [u(0, 8), b"\x00" + u(0xDEADBEEF, 8), b"\x01" + b"\x09",
                                                u(16, 2), u(1234, 8, True)]),
            (et.PPME["PPME_SYSCALL_KILL_E"], [u(77, 8, True), b"\x09"]),
        ]

    def event(self, version: int, code: int, raws: list[bytes], *, flags: int = 0, large: bool = False,
              cpu: int = 1, ts: int = 1_700_000_000_123_456_789, tid: int = 301) -> bytes:
        width = 4 if large else 2
        lens = b"".join(self.u(len(r), width) for r in raws)
        hdr = 26 if version == 2 else 22
        elen = hdr + len(lens) + sum(map(len, raws))
        head = self.u(cpu, 2) + (self.u(flags, 4) if flags else b"")
        ev = self.u(ts, 8) + self.u(tid, 8) + self.u(elen, 4) + self.u(code, 2)
        if version == 2:
            ev += self.u(len(raws), 4)
        if version == 1:
            btype = 0x208 if flags else 0x204
        else:
            btype = {(False, False): 0x216, (True, False): 0x217, (False, True): 0x221, (True, True): 0x222}[
                (bool(flags), large)]
        return self.block(btype, head + ev + lens + b"".join(raws))

    def capture(self) -> bytes:
        parts = [self.shb(2), self.mi(), self.il_v1(), self.il_v2(), self.ul(1), self.ul(2)]
        parts += [self.pl(v) for v in range(1, 10)]
        parts += [self.fdl(1, 301), self.fdl(2, 302)]
        for i, (code, raws) in enumerate(self.params()):
            parts.append(self.event(2, code, raws, cpu=i))
            parts.append(self.event(2, code, raws, flags=B.DF_STATE_ONLY, cpu=i))
        open_x = self.params()[0]
        parts.append(self.event(1, *open_x))                    # v1: nparams inferred
        parts.append(self.event(1, *open_x, flags=B.DF_STATE_ONLY))
        plugin = (et.PPME_PLUGINEVENT_E, [self.u(999, 4), b"\xab" * 70_000])
        parts.append(self.event(2, *plugin, large=True))
        parts.append(self.event(2, *plugin, large=True, flags=B.DF_STATE_ONLY))
        return b"".join(parts)


def test_every_block_version_reads_the_same_in_both_orders():
    le, be = _Build("<").capture(), _Build(">").capture()
    pl, pb = ScapParser(), ScapParser()
    got_le, got_be = _items(le, pl), _items(be, pb)
    assert set(pb.stats) == {"blocks", "events", "sections"}, pb.stats
    assert pb.stats == pl.stats
    assert _comparable(got_be) == _comparable(got_le)
    # the values themselves, so a mistake shared by both orders cannot hide
    mi = next(i for i in got_be if isinstance(i, B.MachineInfo))
    assert (mi.num_cpus, mi.memory_size_bytes, mi.max_pid, mi.hostname, mi.boot_ts_epoch) == (
        4, 8 << 30, 32768, "bighost", 1_600_000_000 * 10**9)
    ils = [i for i in got_be if isinstance(i, B.InterfaceList)]
    assert [(i.name, i.family, i.addr, i.netmask, i.linkspeed) for i in ils[0].interfaces] == [
        ("et0", 2, "10.1.2.3", "255.255.0.0", 1000), ("et1", 10, "2001:db8::1", "ffff::", 10_000),
        ("lo", 2, "10.1.2.3", "255.255.0.0", 0)]
    assert [(i.name, i.addr, i.linkspeed) for i in ils[1].interfaces] == [("lo0", "127.0.0.1", 7)]
    for ul in (i for i in got_be if isinstance(i, B.UserList)):
        assert [(u.uid, u.gid, u.name, u.homedir, u.shell) for u in ul.users] == [(1000, 100, "alice", "/home/a", "/bin/sh")]
        assert [(g.gid, g.name) for g in ul.groups] == [(100, "users")]
    pls = [i for i in got_be if isinstance(i, B.ProcessList)]
    assert len(pls) == 9
    for v, pl_ in enumerate(pls, 1):
        t = pl_.threads[0]
        assert (t.tid, t.pid, t.ptid, t.comm, t.exe, t.args, t.cwd, t.fdlimit, t.flags, t.uid, t.gid) == (
            300 + v, 300 + v, 1, "comm", "/usr/bin/comm", ["-a", "b"], "/tmp", 1024, 0x80, 1000, 100)
        assert t.sid == (-1 if v < 6 else (-1 if t.tid % 2 else t.tid))
        if v >= 2:
            assert (t.vmsize_kb, t.vmrss_kb, t.vmswap_kb, t.pfmajor, t.pfminor) == (5000, 4000, 3, 12, 3400)
        if v >= 4:
            assert (t.vtid, t.vpid, t.cgroups) == (t.tid + 1, t.tid + 2, ["cpu=/x", "memory=/y"])
        if v >= 9:
            assert (t.pidns_init_start_ts, t.tty, t.loginuid, t.exe_writable, t.cap_inheritable, t.cap_permitted,
                    t.cap_effective, t.exe_ino, t.exe_ino_mtime, t.exe_from_memfd, t.pgid) == (
                123456789, 34816, 1000, True, 1, 2, 0x1FF, 77, 99, True, t.tid)
        assert len(pl_.threads) == 2
    fdls = [i for i in got_be if isinstance(i, B.FdList)]
    assert [f.tid for f in fdls] == [301, 302]
    for fdl in fdls:
        by = {f.num: f for f in fdl.fds}
        assert by[0].name == "/dev/null" and by[0].ino == 11
        assert (by[3].name, by[3].l4proto) == ("10.0.0.1:40000->1.2.3.4:443", "tcp")
        assert by[4].name == "2001:db8::4:5->::1:6"
        assert (by[5].name, by[5].is_server) == ("0.0.0.0:8080", True)
        assert by[6].name == ":::53"
        assert (by[7].usrc, by[7].udst, by[7].name) == (0xFFFF88003C420800, 1, "/run/s")
        assert (by[8].name, by[8].flags) == ("/var/log/x", 0o1101)
        assert by[8].dev == (0x803 if fdl.tid == 302 else 0)
    evs = [e for e in got_be if isinstance(e, Event)]
    want = [
        [3, "/etc/passwd", 4097, 0o644],
        [-115, (2, "10.0.0.1", 4000, "1.2.3.4", 80), 3],
        [0, (10, "2001:db8::4", 5, "::1", 6), 4],
        [0, (1, 0xFFFF88003C420800, 2, "/run/s"), 5],
        [0, (2, "0.0.0.0", 22), 6],
        [1, ((3, 1), (-100, 4))],
        [0, 3, 1, 2, (2, 1024), 4],
        [0, 3, 1, 2, (4, 1_500_000_000), 16],
        [0, (0, 0xDEADBEEF), (1, 9), 16, 1234],
        [77, 9],
    ]
    assert [e.params for e in evs[:2 * len(want):2]] == want
    assert [e.params for e in evs[1:2 * len(want):2]] == want
    assert [e.cpu for e in evs[:2 * len(want):2]] == list(range(len(want)))
    assert all(e.dump_flags == B.DF_STATE_ONLY for e in evs[1:2 * len(want):2])
    assert [e.params for e in evs[-4:-2]] == [want[0]] * 2 and evs[-3].dump_flags == B.DF_STATE_ONLY
    assert [e.params for e in evs[-2:]] == [[999, b"\xab" * 70_000]] * 2
    assert all(e.ts == 1_700_000_000_123_456_789 and e.tid == 301 for e in evs)


def test_every_fixed_size_parameter_type_swaps():
    """Each PT_* of fixed size: the big-endian table reads the reversed bytes of the little-endian
    one; addresses (network-order bytes) read the same text in both."""
    for name, (_v, kind, size, code) in et.PARAM_TYPES.items():
        if kind != "fixed" or not code:
            continue
        raw = bytes(range(0x81, 0x81 + size))
        le = P.DECODERS_BY_ORDER["<"][name]
        be = P.DECODERS_BY_ORDER[">"][name]
        if name in P.ADDRESS_TYPES:
            assert be(raw, 0, size) == le(raw, 0, size) == socket.inet_ntop(
                socket.AF_INET if size == 4 else socket.AF_INET6, raw), name
        elif code.endswith("s"):
            assert be(raw, 0, size) == le(raw, 0, size) == raw, name
        else:
            assert be(raw, 0, size) == le(raw[::-1], 0, size), name
            assert be(raw, 0, size) == struct.unpack(">" + code, raw)[0], name
        enc = P.ENCODERS_BY_ORDER[">"][name]
        assert enc(be(raw, 0, size)) == raw, name


def test_big_endian_writer_stores_ports_in_host_order_and_addresses_in_network_order():
    code = et.PPME["PPME_SOCKET_CONNECT_X"]
    ev = Event(1, 1, 1, code, [0, (2, "10.0.0.1", 4000, "1.2.3.4", 80), 3])
    le = W.event_block(ev)
    be = W.event_block(ev, order=">")
    tup_le = b"\x02" + socket.inet_aton("10.0.0.1") + (4000).to_bytes(2, "little") + socket.inet_aton("1.2.3.4") + b"\x50\x00"
    tup_be = b"\x02" + socket.inet_aton("10.0.0.1") + (4000).to_bytes(2, "big") + socket.inet_aton("1.2.3.4") + b"\x00\x50"
    assert tup_le in le and tup_be in be


# --- the CLI and sysdig ---------------------------------------------------------------------------

def _rewrite(src, dst, byteorder: str) -> None:
    with open(dst, "wb") as f:
        write_scap(f, read_scap(src), compress=True, byteorder=byteorder)


@pytest.mark.parametrize("fmt", [None, "*%evt.num %evt.type %proc.name %proc.cmdline %fd.name %fd.sport %user.name %evt.args"])
def test_inspect_prints_the_same_for_a_big_endian_capture(conformance_dir, tmp_path, fmt):
    src = conformance_dir / "traces" / "libs" / "curl_google.scap"
    be = tmp_path / "be.scap"
    _rewrite(src, be, "big")
    extra = ["-p", fmt] if fmt else []
    a = tiercel("inspect", str(src), *extra, check=True)
    b = tiercel("inspect", str(be), *extra, check=True)
    assert a.stdout.count("\n") > 100
    assert b.stdout == a.stdout


@pytest.mark.sysdig
@pytest.mark.skipif(shutil.which("sysdig") is None, reason="sysdig is not installed")
def test_sysdig_refuses_what_tiercel_reads(conformance_dir, tmp_path):
    """libscap does not byte-swap: sysdig rejects the big-endian capture Tiercel reads."""
    src = conformance_dir / "traces" / "cat_write.scap"
    le, be = tmp_path / "le.scap", tmp_path / "be.scap"
    _rewrite(src, le, "little")
    _rewrite(src, be, "big")
    ok = subprocess.run(["sysdig", "-r", str(le), "-q"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    p = subprocess.run(["sysdig", "-r", str(be)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "magic" in (p.stdout + p.stderr).lower(), (p.returncode, p.stdout[:300], p.stderr)
    assert _ev_key(_items(be.read_bytes())) == _ev_key(_items(src.read_bytes()))


# --- bad big-endian input: clear errors, counted skips, no crash ----------------------------------

def test_big_endian_bad_input_is_a_clear_error_or_counted():
    b = _Build(">")
    with pytest.raises(ScapError, match="corrupt block"):
        _items(b.shb(2) + struct.pack(">II", 0x216, 4))
    with pytest.raises(ScapError, match="corrupt block"):   # a big-endian SHB with a bad length
        _items(struct.pack(">II", B.SHB, 7) + struct.pack(">I", B.MAGIC) + b"\0" * 16)
    with pytest.raises(ScapError, match="magic"):
        _items(_Build("<").block(B.SHB, b"\x01\x02\x03\x04" + b"\0" * 12))
    with pytest.raises(ScapError, match="corrupt block|magic"):
        _items(b.block(B.SHB, b"\x01\x02\x03\x04" + b"\0" * 12))
    # a little-endian reading of a big-endian event is what a missed switch would do: caught here
    good = b.event(2, *b.params()[1])
    bad_len = bytearray(good)
    bad_len[30:34] = (5000).to_bytes(4, "big")    # event length beyond its block
    p = ScapParser()
    evs = [e for e in _items(b.shb(2) + bytes(bad_len) + good, p) if isinstance(e, Event)]
    assert len(evs) == 1 and p.stats["corrupt_events"] == 1
    # a corrupt big-endian process list is skipped and counted; the rest is read
    bad_pl = bytearray(b.pl(6))
    bad_pl[8 + 24 + 8:8 + 24 + 10] = (60000).to_bytes(2, "big")  # comm length past the block
    p = ScapParser()
    items = _items(b.shb(2) + bytes(bad_pl) + b.pl(7) + good, p)
    assert p.stats["corrupt_blocks"] == 1
    assert [len(i.threads) for i in items if isinstance(i, B.ProcessList)] == [2]
    assert len([e for e in items if isinstance(e, Event)]) == 1


_BE = None


def _be_raw() -> bytes:
    global _BE
    if _BE is None:
        _BE = _Build(">").capture()
    return _BE


_EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=12)


def _mutate_and_read(raw: bytes, edits) -> None:
    b = bytearray(raw)
    for pos, val in edits:
        b[pos % len(b)] = val
    try:
        for _ in read_scap(io.BytesIO(bytes(b)), ScapParser(), chunk=4096):
            pass
    except ScapError as e:
        assert str(e)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=_EDITS)
def test_big_endian_mutations_never_crash(edits):
    _mutate_and_read(_be_raw(), edits)


@pytest.mark.fuzz
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=_EDITS, cut=st.integers(0, 200_000))
def test_big_endian_mutations_never_crash_fuzz(edits, cut):
    _mutate_and_read(_be_raw()[:cut or None], edits)
