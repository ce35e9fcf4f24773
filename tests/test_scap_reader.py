"""The .scap reader: every capture of the corpus, the block and event variants of the format,
and bad input (skipped and counted, or a clear error; never a crash or a hang)."""

from __future__ import annotations

import gzip
import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiercel.common import eventtable as et
from tiercel.common.event import Event, FdInfo, ThreadInfo
from tiercel.ingest.scap import blocks as B
from tiercel.ingest.scap import writer as W
from tiercel.ingest.scap.reader import ScapError, ScapParser, read_scap

CAPTURES = ["cat_write.scap", "empty.scap", "open-multiple-files.scap", "libs/curl_google.scap",
            "libs/test_ipv6_client.scap"]


def _items(data: bytes, parser: ScapParser | None = None):
    return list(read_scap(data, parser))


def _events(items):
    return [i for i in items if isinstance(i, Event)]


@pytest.mark.parametrize("name", CAPTURES)
def test_corpus_reads_cleanly(conformance_dir, name):
    p = ScapParser()
    items = list(read_scap(conformance_dir / "traces" / name, p))
    evs = _events(items)
    assert isinstance(items[0], B.Section) and items[0].major == 1
    assert any(isinstance(i, B.ProcessList) and i.threads for i in items)
    assert evs and [e.num for e in evs] == list(range(1, len(evs) + 1))
    # nothing skipped, nothing corrupt, nothing left over
    assert set(p.stats) == {"blocks", "events", "sections"}, p.stats
    for e in evs:
        info = et.info(e.code)
        assert len(e.params) <= max(info.nparams, 0) or e.code == 0
        assert e.ts > 1_400_000_000 * 10**9 or et.info(e.code).name == "container"


def test_cat_write_metadata(conformance_dir):
    items = _items((conformance_dir / "traces" / "cat_write.scap").read_bytes())
    mi = next(i for i in items if isinstance(i, B.MachineInfo))
    assert (mi.num_cpus, mi.hostname, mi.memory_size_bytes) == (2, "ubuntu", 10_485_940_224)
    il = next(i for i in items if isinstance(i, B.InterfaceList))
    assert [(i.name, i.addr) for i in il.interfaces][:2] == [("lo", "127.0.0.1"), ("enp0s3", "10.0.2.15")]
    ul = next(i for i in items if isinstance(i, B.UserList))
    assert (ul.users[0].name, ul.users[0].homedir, ul.users[0].shell) == ("root", "/root", "/bin/bash")
    assert len(ul.users) == 32 and len(ul.groups) == 61
    pl = next(i for i in items if isinstance(i, B.ProcessList))
    init = pl.threads[0]
    assert (init.tid, init.comm, init.exe, init.cwd, init.fdlimit, init.sid) == (1, "systemd", "/sbin/init", "/", 65536, 1)
    assert init.env[0] == "HOME=/" and init.vmsize_kb == 37488 and init.root == "/"
    assert len(pl.threads) == 73
    fdl = next(i for i in items if isinstance(i, B.FdList))
    assert fdl.tid == 1 and (fdl.fds[0].num, fdl.fds[0].type, fdl.fds[0].name) == (0, "file", "/dev/null")
    # the open exit of 12.8: v1 block, 4 params inferred
    ev = next(e for e in _events(items) if e.code == 3)
    assert ev.params == [3, "/etc/ld.so.cache", 4097, 0] and ev.tid == 20072


def test_v2_metadata_and_pl_tail(conformance_dir):
    items = _items((conformance_dir / "traces" / "empty.scap").read_bytes())
    pl = next(i for i in items if isinstance(i, B.ProcessList))
    assert pl.threads[0].exepath and pl.threads[0].loginuid == 0xFFFFFFFF
    fdl = [i for i in items if isinstance(i, B.FdList)]
    assert any(f.dev for x in fdl for f in x.fds if f.type == "file")


def test_byte_at_a_time_equals_whole(conformance_dir):
    raw = gzip.decompress((conformance_dir / "traces" / "cat_write.scap").read_bytes())
    whole = [(e.num, e.code, e.params) for e in _events(_items(raw))]
    p = ScapParser()
    got, peak = [], 0
    for i in range(0, len(raw), 7):
        got.extend(x for x in p.feed(raw[i:i + 7]) if isinstance(x, Event))
        peak = max(peak, len(p._buf))
    p.close()
    assert [(e.num, e.code, e.params) for e in got] == whole
    assert peak < 70_000  # bounded by the largest block (the process list), not the file


def _capture(*events: Event, threads=(), extra_blocks: bytes = b"") -> bytes:
    t = ThreadInfo(100, comm="sh", exe="/bin/sh", cwd="/", fds={3: FdInfo(3, "file", "/etc/x")})
    return (W.shb() + W.machine_info(B.MachineInfo(1, 2, 3, "h")) + extra_blocks
            + W.process_list([t, *threads]) + W.fd_list(100, t.fds.values())
            + b"".join(W.event_block(e) for e in events))


def _open_exit(num=1, fd=3):
    return Event(num, 1_700_000_000_000_000_000, 100, 3, [fd, "/etc/x", 1, 0, 0, 5])


def test_unknown_block_and_event_are_counted():
    weird = W.block(0x7777, b"abcdefgh")
    unknown_ev = W.block(0x216, struct.pack("<HQQIHI", 0, 1, 100, 26, 9999, 0))
    data = _capture(_open_exit(), extra_blocks=weird) + unknown_ev + W.event_block(_open_exit(2, 4))
    p = ScapParser()
    evs = _events(_items(data, p))
    assert [e.params[0] for e in evs] == [3, 4]
    assert p.stats["skipped_blocks"] == 1 and p.stats["unknown_events"] == 1


def test_corrupt_event_and_truncated_tail_are_counted():
    bad = W.block(0x216, struct.pack("<HQQIHI", 0, 1, 100, 5000, 3, 0))  # len beyond the block
    data = _capture(_open_exit()) + bad + W.event_block(_open_exit(2))
    p = ScapParser()
    evs = _events(_items(data[:-10], p))
    assert len(evs) == 1 and p.stats["corrupt_events"] == 1 and p.stats["truncated_bytes"] > 0


def test_clear_errors():
    with pytest.raises(ScapError, match="not a .scap"):
        _items(b"hello world, this is not a capture")
    with pytest.raises(ScapError, match="empty"):
        _items(b"")
    # a big-endian section is read, not refused (tests/test_scap_bigendian.py)
    be = struct.pack(">II", B.SHB, 28) + struct.pack(">IHHq", B.MAGIC, 1, 2, -1) + struct.pack(">I", 28)
    [sec] = _items(be)
    assert (sec.byteorder, sec.major, sec.minor, sec.length) == ("big", 1, 2, -1)
    with pytest.raises(ScapError, match="corrupt block"):
        _items(W.shb() + struct.pack("<II", 0x216, 4))
    with pytest.raises(ScapError, match="corrupt compressed"):
        _items(b"\x1f\x8b" + b"\x08\x00" + b"\xff" * 40)


def test_shb_options_sections_and_gzip_members():
    one = _capture(_open_exit())
    opts = W.shb(options=[(1, b"File-level comment"), (4, b"editcap")])
    two = opts + W.event_block(_open_exit(1, 7))
    data = gzip.compress(one) + gzip.compress(two)
    items = _items(data)
    secs = [i for i in items if isinstance(i, B.Section)]
    assert len(secs) == 2 and secs[1].options == [(1, b"File-level comment"), (4, b"editcap")]
    assert [e.params[0] for e in _events(items)] == [3, 7]
    p = ScapParser()
    _items(gzip.compress(one)[:-30], p)
    assert p.stats.get("truncated_gzip") == 1


def test_large_payload_and_dump_flags():
    big = Event(1, 5, -1, et.PPME_PLUGINEVENT_E, [1, b"x" * 100_000])
    flagged = _open_exit(2)
    flagged.dump_flags = B.DF_STATE_ONLY
    data = _capture(big, flagged)
    assert struct.pack("<I", W.EV_V2_LARGE) in data and struct.pack("<I", W.EVF_V2) in data
    evs = _events(_items(data))
    assert evs[0].params == [1, b"x" * 100_000] and evs[0].tid == -1
    assert evs[1].dump_flags == B.DF_STATE_ONLY and evs[1].params[0] == 3


def test_v1_block_nparams_inference():
    # open exit in a v1 block with the 4 params of a 2016 producer
    vals = [struct.pack("<q", 3), b"/etc/ld.so.cache\0", struct.pack("<I", 4097), struct.pack("<I", 0)]
    lens = struct.pack("<4H", *map(len, vals))
    elen = 22 + len(lens) + sum(map(len, vals))
    body = struct.pack("<HQQIH", 0, 10, 20072, elen, 3) + lens + b"".join(vals)
    items = _items(W.shb(0) + W.block(0x204, body))
    assert _events(items)[0].params == [3, "/etc/ld.so.cache", 4097, 0]


def test_param_types_round_trip():
    from tiercel.common import params as P
    cases = [
        (et.PPME["PPME_SOCKET_CONNECT_X"], [0, (2, "10.0.0.1", 4000, "1.2.3.4", 80), 3]),
        (et.PPME["PPME_SOCKET_CONNECT_X"], [-2, (1, 0, 0xFFFF88003C420800, "/var/run/nscd/socket"), 3]),
        (et.PPME["PPME_SOCKET_CONNECT_X"], [0, (10, "2001:db8::4", 5, "::1", 6), 3]),
        (et.PPME["PPME_SOCKET_BIND_X"], [0, (2, "0.0.0.0", 22), 3]),
        (et.PPME["PPME_SYSCALL_POLL_X"], [1, ((3, 1), (4, 4))]),
        (et.PPME["PPME_SOCKET_SETSOCKOPT_X"], [0, 3, 1, 2, (2, 1024), 4]),
        (et.PPME["PPME_SYSCALL_OPEN_X"], [-2, None, 1, 0, 0, 0]),
    ]
    for code, params in cases:
        ev = Event(1, 1, 1, code, params)
        raws = P.encode_params(code, params)
        got = [P.decode_param(code, i, r) for i, r in enumerate(raws)]
        assert got == params, (code, got)
        assert _events(_items(W.shb() + W.event_block(ev)))[0].params == params


_CAT = None


def _cat_raw(conformance_dir) -> bytes:
    global _CAT
    if _CAT is None:
        _CAT = gzip.decompress((conformance_dir / "traces" / "cat_write.scap").read_bytes())
    return _CAT


def _mutate_and_read(raw: bytes, edits) -> None:
    b = bytearray(raw)
    for pos, val in edits:
        b[pos % len(b)] = val
    p = ScapParser()
    try:
        for _ in read_scap(io.BytesIO(bytes(b)), p, chunk=4096):
            pass
    except ScapError:
        pass


_EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=_EDITS)
def test_mutations_never_crash(conformance_dir, edits):
    _mutate_and_read(_cat_raw(conformance_dir), edits)


@pytest.mark.fuzz
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=_EDITS, cut=st.integers(0, 200_000))
def test_mutations_never_crash_fuzz(conformance_dir, edits, cut):
    _mutate_and_read(_cat_raw(conformance_dir)[:cut or None], edits)
