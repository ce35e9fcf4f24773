"""Audit netlink codec, record parser, assembler and translation, fed with bytes (sans-IO)."""

from __future__ import annotations

import socket
import struct

import pytest

from tiercel.common import eventtable as et
from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.assembler import Assembler
from tiercel.ingest.audit.records import (
    GarbledRecord,
    execve_args,
    parse_fields,
    parse_sockaddr,
    parse_stamp,
    untrusted,
)
from tiercel.ingest.audit.syscall_set import RULE_KEY, build_rules, syscalls_for
from tiercel.ingest.audit.syscalls import B32, B64
from tiercel.ingest.audit.translate import Translator, clone_flags_to_ppm, open_flags_to_ppm
from tiercel.ingest.livestate import LiveState


def rec(rtype: int, serial: int, body: str, ts: str = "1700000000.123") -> tuple[int, bytes]:
    return rtype, f"audit({ts}:{serial}): {body}".encode()


def record_datagram(rtype: int, payload: bytes) -> bytes:
    # the kernel puts the payload length (without header) in nlmsg_len for records
    return struct.pack("=IHHII", len(payload), rtype, 0, 0, 0) + payload


def test_status_roundtrip():
    st = nl.AuditStatus(mask=nl.STATUS_ENABLED | nl.STATUS_PID, enabled=1, pid=42, backlog_limit=8192)
    back = nl.AuditStatus.unpack(st.pack())
    assert back == st
    with pytest.raises(nl.NetlinkError):
        nl.AuditStatus.unpack(b"\0" * 8)


def test_rule_roundtrip_and_key():
    rules = build_rules({"openat", "execve", "connect"})
    assert len(rules) == 2  # b64 and b32
    r64 = rules[0]
    assert sorted(r64.syscalls()) == sorted([B64["openat"], B64["execve"], B64["connect"]])
    back = nl.AuditRule.unpack(r64.pack())
    assert back.keys() == [RULE_KEY] and back.arch() == nl.ARCH_X86_64
    assert back.signature() == r64.signature()
    r32 = nl.AuditRule.unpack(rules[1].pack())
    assert B32["socketcall"] in r32.syscalls()  # 32-bit socket calls may go through socketcall
    assert "-F key=tiercel" in back.describe()


def test_multi_key_rule():
    r = nl.AuditRule(fields=[nl.RuleField(nl.AUDIT_FILTERKEY, nl.AUDIT_EQUAL, text="a\x01tiercel")])
    assert nl.AuditRule.unpack(r.pack()).keys() == ["a", "tiercel"]


def test_iter_messages_record_quirk_and_control():
    payload = b"audit(1.000:7): arch=c000003e syscall=257"
    msgs = list(nl.iter_messages(record_datagram(nl.AUDIT_SYSCALL, payload + b"\0")))
    assert len(msgs) == 1 and msgs[0].payload == payload
    two = nl.pack_message(nl.NLMSG_DONE, b"", 5, 0) + nl.pack_message(nl.NLMSG_ERROR, struct.pack("=i", -1), 6, 0)
    got = list(nl.iter_messages(two))
    assert [m.type for m in got] == [nl.NLMSG_DONE, nl.NLMSG_ERROR]
    assert nl.parse_error(got[1].payload) == 1
    with pytest.raises(nl.NetlinkError):
        list(nl.iter_messages(struct.pack("=IHHII", 4, 2, 0, 0, 0)))


def test_stamp_and_fields():
    ts, serial, off = parse_stamp(b"audit(1700000000.123:456): a=1")
    assert ts == 1700000000_123000000 and serial == 456
    with pytest.raises(GarbledRecord):
        parse_stamp(b"garbage")
    f = parse_fields(b'a0="cat" a1=2F6574632F736861646F77 key=(null) msg=\'op=x res=1\' a2[0]=41')
    assert untrusted(f["a0"]) == "cat" and untrusted(f["a1"]) == "/etc/shadow"
    assert untrusted(f["key"]) is None and f["msg"] == b"'op=x res=1'" and "a2[0]" in f
    assert untrusted(b"ZZ") == "ZZ"  # undecodable hex is kept as written


def test_execve_forms():
    simple = parse_fields(b'argc=3 a0="ls" a1="-l" a2=2F746D702F6120622063')
    assert execve_args([simple]) == ["ls", "-l", "/tmp/a b c"]
    split = [parse_fields(b'argc=2 a0="echo" a1_len=6 a1[0]=616263'), parse_fields(b"a1[1]=646566")]
    assert execve_args(split) == ["echo", "abcdef"]
    truncated = parse_fields(b'argc=3 a0="x" a1="y"')
    assert execve_args([truncated]) == ["x", "y"]


def test_sockaddr():
    v4 = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 443) + socket.inet_aton("10.1.2.3") + b"\0" * 8
    sa = parse_sockaddr(v4)
    assert (sa.family, sa.addr, sa.port) == (socket.AF_INET, "10.1.2.3", 443)
    v6 = (struct.pack("=H", socket.AF_INET6) + struct.pack("!H", 80) + b"\0" * 4
          + socket.inet_pton(socket.AF_INET6, "::1") + b"\0" * 4)
    assert parse_sockaddr(v6).addr == "::1"
    assert parse_sockaddr(struct.pack("=H", socket.AF_UNIX) + b"/run/x.sock\0").addr == "/run/x.sock"
    assert parse_sockaddr(struct.pack("=H", socket.AF_UNIX) + b"\0abs").addr == "@abs"
    with pytest.raises(GarbledRecord):
        parse_sockaddr(b"\x02")


def test_assembler_interleaved_eoe_timeout_eviction_garbage():
    a = Assembler(max_open=2, timeout_ns=1000)
    out = []
    out += a.feed(*rec(nl.AUDIT_SYSCALL, 1, "syscall=257"), now_ns=0)
    out += a.feed(*rec(nl.AUDIT_SYSCALL, 2, "syscall=59"), now_ns=0)
    out += a.feed(*rec(nl.AUDIT_CWD, 1, 'cwd="/"'), now_ns=0)
    out += a.feed(*rec(nl.AUDIT_EOE, 2, ""), now_ns=0)
    out += a.feed(*rec(nl.AUDIT_EOE, 1, ""), now_ns=0)
    assert [(e.serial, e.complete, e.types) for e in out] == [
        (2, True, [nl.AUDIT_SYSCALL]), (1, True, [nl.AUDIT_SYSCALL, nl.AUDIT_CWD])]
    assert out[1].cwd == "/"
    # late record of a finished event, garbage, a lone EOE
    assert a.feed(*rec(nl.AUDIT_PATH, 1, "item=0")) == []
    assert a.feed(nl.AUDIT_PATH, b"not a record") == []
    assert a.feed(*rec(nl.AUDIT_EOE, 99, "")) == []
    assert a.stats.late == 2 and a.stats.garbled == 1
    # timeout
    a.feed(*rec(nl.AUDIT_CONFIG_CHANGE, 3, "op=add_rule"), now_ns=10)
    assert a.expire(500) == []
    done = a.expire(2000)
    assert [e.serial for e in done] == [3] and not done[0].complete
    # eviction of the oldest when too many are open
    a.feed(*rec(nl.AUDIT_SYSCALL, 4, "x=1"), now_ns=0)
    a.feed(*rec(nl.AUDIT_SYSCALL, 5, "x=1"), now_ns=0)
    ev = a.feed(*rec(nl.AUDIT_SYSCALL, 6, "x=1"), now_ns=0)
    assert [e.serial for e in ev] == [4] and a.stats.incomplete == 2
    assert {e.serial for e in a.flush()} == {5, 6}


def _shape(events):
    """What an event gives: its records, and every accessor (asked before `records`, which the
    datagram path builds only on demand)."""
    out = []
    for e in events:
        types = sorted({d[4] | d[5] << 8 for d in e.raw} if e.raw else {t for t, _ in e.records})
        reads = ((e.syscall_body or b"").rstrip(b"\0"), e.path_items(), e.cwd, e.proctitle, e.sockaddr,
                 [(t, (e.body(t) or b"").rstrip(b"\0")) for t in types],
                 # `changed`: the body against none, itself, itself with a byte more, a byte less
                 [((e.changed(t, None) or b"").rstrip(b"\0"), e.changed(t, e.body(t)),
                   (e.changed(t, (e.body(t) or b"") + b"x") or b"").rstrip(b"\0"),
                   (e.changed(t, (e.body(t) or b"x")[:-1]) or b"").rstrip(b"\0")) for t in types])
        out.append((e.serial, e.ts, e.complete, [(t, b.rstrip(b"\0")) for t, b in e.records], reads))
    return out


def _both_ways(records, max_open=4):
    """The events `feed_datagrams` (the hot path: one datagram per record) and `feed` make."""
    a, b = Assembler(max_open=max_open), Assembler(max_open=max_open)
    got: list = []
    a.feed_datagrams([nl.pack_message(t, p, seq=0, flags=0) for t, p in records], 0, got)
    want: list = []
    for t, p in records:
        want += b.feed(t, p)
    got += a.flush()
    want += b.flush()
    for k in ("records", "events", "garbled", "late", "incomplete"):
        assert getattr(a.stats, k) == getattr(b.stats, k), k
    return _shape(got), _shape(want)


def test_datagram_path_assembles_as_feed_does():
    """Consecutive records of one event take a shortcut in `feed_datagrams`: interleaved events,
    records without the space after the stamp, empty bodies, late and garbled records in between,
    and an event split over two calls assemble exactly as through `feed`."""
    recs = [rec(nl.AUDIT_SYSCALL, 1, "syscall=257 a0=1"), rec(nl.AUDIT_CWD, 1, 'cwd="/a b"'),
            rec(nl.AUDIT_SYSCALL, 2, "syscall=3"),
            (nl.AUDIT_PATH, b"audit(1700000000.123:1):item=0 name=2F612062"),  # no space after the stamp
            (nl.AUDIT_PATH, b"audit(1700000000.123:1):"),  # nothing after the stamp
            (nl.AUDIT_PATH, b"audit(1700000000.123:1)"),  # garbled
            rec(nl.AUDIT_PROCTITLE, 1, "proctitle=636174"), rec(nl.AUDIT_EOE, 1, ""),
            rec(nl.AUDIT_PATH, 1, "item=1"),  # late
            rec(nl.AUDIT_CWD, 2, 'cwd="/"'), rec(nl.AUDIT_EOE, 2, ""), rec(nl.AUDIT_EOE, 2, ""),
            rec(nl.AUDIT_SYSCALL, 3, "syscall=1", ts="1700000000.1234"),
            rec(nl.AUDIT_SYSCALL, 4, "syscall=1"), rec(nl.AUDIT_SYSCALL, 5, "syscall=1"),
            rec(nl.AUDIT_SYSCALL, 6, "syscall=1"), rec(nl.AUDIT_SYSCALL, 7, "syscall=1"),  # evicts 3
            rec(nl.AUDIT_PATH, 7, "item=0"), rec(nl.AUDIT_EOE, 7, "")]
    got, want = _both_ways(recs)
    assert got == want
    assert got[0][:4] == (1, 1700000000_123000000, True, [
        (nl.AUDIT_SYSCALL, b"syscall=257 a0=1"), (nl.AUDIT_CWD, b'cwd="/a b"'),
        (nl.AUDIT_PATH, b"item=0 name=2F612062"), (nl.AUDIT_PATH, b""), (nl.AUDIT_PROCTITLE, b"proctitle=636174")])
    # one event's records over two reads: the second read finds the event open
    a = Assembler()
    out: list = []
    a.feed_datagrams([nl.pack_message(*recs[0], seq=0, flags=0)], 0, out)
    a.feed_datagrams([nl.pack_message(*r, seq=0, flags=0) for r in (recs[1], recs[6], recs[7])], 0, out)
    assert [s[:4] for s in _shape(out)] == [(1, 1700000000_123000000, True, [
        (nl.AUDIT_SYSCALL, b"syscall=257 a0=1"), (nl.AUDIT_CWD, b'cwd="/a b"'),
        (nl.AUDIT_PROCTITLE, b"proctitle=636174")])]
    # one event through both paths, each way round: its records stay in order
    for datagrams_first in (True, False):
        a, out = Assembler(), []
        for i, r in enumerate((recs[0], recs[1], recs[6], recs[7])):
            if (i % 2 == 0) == datagrams_first:
                a.feed_datagrams([nl.pack_message(*r, seq=0, flags=0)], 0, out)
            else:
                out += a.feed(*r)
        assert [s[3] for s in _shape(out)] == [[(nl.AUDIT_SYSCALL, b"syscall=257 a0=1"),
                                                (nl.AUDIT_CWD, b'cwd="/a b"'),
                                                (nl.AUDIT_PROCTITLE, b"proctitle=636174")]]


def test_datagram_path_assembles_as_feed_does_generated():
    from hypothesis import given, settings

    from tests.fuzzkit import audit_records

    @settings(max_examples=100, derandomize=True, deadline=None, database=None)
    @given(audit_records())
    def check(recs):
        recs = [(t, p) for t, p in recs if t >= 1100]  # below: netlink control messages, not records
        got, want = _both_ways(recs)
        assert got == want

    check()


def test_path_fast_layout_reads_as_path_re():
    """PATH_FAST_RE (the kernel's layout) gives PATH_RE's groups wherever it matches."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tiercel.ingest.audit.records import PATH_FAST_RE, PATH_RE

    tok = st.sampled_from(["0", "12", "fe:01", "00:00", "0100644", '"/etc/x"', "2F6120", "(null)", "NORMAL",
                           "PARENT", "a=b", "nametype=X", "system_u:object_r:etc_t:s0", "", "zz"])
    keys = st.sampled_from(["item", "name", "inode", "dev", "mode", "ouid", "ogid", "rdev", "obj", "nametype",
                            "cap_fp", "x"])
    canonical = ["item", "name", "inode", "dev", "mode", "ouid", "ogid", "rdev", "obj", "nametype", "cap_fp"]

    @settings(max_examples=300, derandomize=True, deadline=None, database=None)
    @given(st.lists(st.tuples(keys, tok), max_size=12), st.lists(tok, min_size=11, max_size=11), st.booleans())
    def check(pairs, values, use_canonical):
        if use_canonical:  # the kernel's order, values drawn (a valid record or nearly one)
            pairs = list(zip(canonical, values, strict=True))
        body = " ".join(f"{k}={v}" for k, v in pairs).encode()
        slow = PATH_RE.match(body)
        fast = PATH_FAST_RE.match(body) or slow
        assert (fast.groups() if fast else None) == (slow.groups() if slow else None)

    check()
    body = (b'item=0 name="/etc/hostname" inode=612 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 '
            b'obj=system_u:object_r:etc_t:s0 nametype=NORMAL cap_fp=0')
    assert PATH_FAST_RE.match(body).groups() == (b"0", b'"/etc/hostname"', b"612", b"fe", b"00", b"0100644",
                                                 b"NORMAL")


def test_syscall_groups_read_as_syscall_re():
    """syscall_groups (head match + remembered identity) gives SYSCALL_RE's groups where it
    matches, the field parse's elsewhere, whatever it has seen before."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tiercel.ingest.audit.records import SYSCALL_RE, _syscall_fields, syscall_groups

    layout = ["arch", "syscall", "success", "exit", "a0", "a1", "a2", "a3", "items", "ppid", "pid", "auid", "uid",
              "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid", "tty", "ses", "comm", "exe", "key"]
    val = st.sampled_from(["0", "1", "-2", "c000003e", "yes", "ffffff9c", "(none)", "pts0", '"cat"',
                           '"/usr/bin/cat"', "2F6120", "zz", "", "(null)", "1 x=2"])

    valid = ["c000003e", "257", "yes", "3", "ffffff9c", "7ffd", "80000", "0", "1", "100", "200", "1000", "0", "0",
             "0", "0", "0", "0", "0", "0", "pts0", "3", '"cat"', '"/usr/bin/cat"', '"tiercel"']
    matched = []

    @settings(max_examples=400, derandomize=True, deadline=None, database=None)
    @given(st.dictionaries(st.integers(0, len(layout) - 1), val, max_size=3),
           st.sets(st.sampled_from(layout), max_size=2), st.integers(0, 3))
    def check(changed, dropped, tail):
        pairs = [(k, changed.get(i, v)) for i, (k, v) in enumerate(zip(layout, valid, strict=True))
                 if k not in dropped]
        body = " ".join(f"{k}={v}" for k, v in pairs).encode() + [b"", b" key=x", b" obj=y", b" "][tail]
        for _ in range(2):  # first sight, then remembered
            m = SYSCALL_RE.match(body)
            assert syscall_groups(body) == (m.groups() if m else _syscall_fields(body))
            # read in place, inside a datagram with NUL padding (the hot path)
            assert syscall_groups(b"audit(1:2): " + body + b"\0\0", 12, 12 + len(body)) == syscall_groups(body)
        matched.append(m is not None)

    check()
    assert any(matched) and not all(matched)


def test_stamp_forms():
    from tiercel.ingest.audit.assembler import _stamp_ts

    assert _stamp_ts(b"1700000000.123:42") == (1700000000_123000000, 42)
    assert _stamp_ts(b"1700000000.12:42") == (1700000000_120000000, 42)
    assert _stamp_ts(b"170000000.123:42") == (170000000_123000000, 42)
    assert _stamp_ts(b"1700000000:42") == (1700000000_000000000, 42)
    for bad in (b"1700000000.12x:42", b"1700000000.123:4x", b"1700000000.123:", b"x700000000.123:1",
                b"1700000000.123:+4"):
        with pytest.raises(ValueError):
            _stamp_ts(bad)


def _feed_all(records):
    a = Assembler()
    out = []
    for r in records:
        out += a.feed(*r)
    return out


SC = ("arch=c000003e syscall={nr} success=yes exit={ret} a0={a0} a1={a1} a2={a2} a3=0 items=1 ppid=100 "
      'pid=200 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 '
      'comm="cat" exe="/usr/bin/cat" key="tiercel"')


def test_translate_openat_ppm_flags(tmp_path):
    body = SC.format(nr=B64["openat"], ret=3, a0="ffffff9c", a1="7ffd0000", a2="80000", )
    evs = _feed_all([rec(nl.AUDIT_SYSCALL, 10, body), rec(nl.AUDIT_CWD, 10, 'cwd="/root"'),
                     rec(nl.AUDIT_PATH, 10, 'item=0 name="/etc/shadow" inode=42 dev=fe:01 mode=0100640 '
                                            'nametype=NORMAL'),
                     rec(nl.AUDIT_PROCTITLE, 10, "proctitle=636174002F6574632F736861646F77"),
                     rec(nl.AUDIT_EOE, 10, "")])
    ev, ident = Translator(self_pid=1).translate(evs[0])
    info = et.info(ev.code)
    assert info.name == "openat" and info.dir == "<"
    p = dict(zip([x.name for x in info.params], ev.params, strict=True))
    assert p["fd"] == 3 and p["dirfd"] == -100 and p["name"] == "/etc/shadow" and p["ino"] == 42
    assert p["flags"] == 1 | 4096  # O_RDONLY|O_CLOEXEC in PPM values (Linux: 0x80000)
    assert p["dev"] == (0xFE << 20) | 1
    assert ev.tid == 200 and ev.thread is None and ev.ts == 1700000000_123000000
    assert ident[0].startswith(b"ppid=100 pid=200 ") and ident[0].endswith(b'exe="/usr/bin/cat"')
    # the identity the record states makes the thread, when /proc does not know the pid
    st = LiveState(proc=str(tmp_path))
    st.process(ev, ident)
    t = ev.thread
    assert (t.comm, t.ptid, t.cwd, t.exepath, t.exe, t.args, t.loginuid, t.tty) == (
        "cat", 100, "/root/", "/usr/bin/cat", "cat", ["/etc/shadow"], 1000, (0 & 0xFF) | (136 << 8))
    assert ev.fd.name == "/etc/shadow" and ev.fd.type == "file"


def test_translate_openat_path_forms():
    """PATH names as the kernel writes them: quoted, hex (a space or a quote inside), (null),
    absent (a record in another layout)."""
    body = SC.format(nr=B64["openat"], ret=3, a0="ffffff9c", a1="7ffd0000", a2="0")
    names = {}
    for serial, path in ((20, 'name="/etc/x"'), (21, "name=2F612062"), (22, "name=(null)"), (23, "")):
        evs = _feed_all([rec(nl.AUDIT_SYSCALL, serial, body),
                         rec(nl.AUDIT_PATH, serial, f"item=0 {path} inode=5 dev=fe:01 mode=0100644 ouid=0 ogid=0 "
                                                    "rdev=00:00 nametype=NORMAL"),
                         rec(nl.AUDIT_EOE, serial, "")])
        ev, _ = Translator(self_pid=1).translate(evs[0])
        names[serial] = (ev.params[2], ev.params[5], ev.params[6])
    assert names == {20: ("/etc/x", (0xFE << 20) | 1, 5), 21: ("/a b", (0xFE << 20) | 1, 5),
                     22: (None, (0xFE << 20) | 1, 5), 23: (None, (0xFE << 20) | 1, 5)}


def test_translate_execve_connect_and_skips():
    body = SC.format(nr=B64["execve"], ret=0, a0="1", a1="2", a2="3")
    evs = _feed_all([rec(nl.AUDIT_SYSCALL, 11, body),
                     rec(nl.AUDIT_EXECVE, 11, 'argc=3 a0="cat" a1="-n" a2=2F6574632F736861646F77'),
                     rec(nl.AUDIT_CWD, 11, 'cwd="/tmp"'),
                     rec(nl.AUDIT_PATH, 11, 'item=0 name="/usr/bin/cat" inode=7 dev=fe:00 nametype=NORMAL'),
                     rec(nl.AUDIT_EOE, 11, "")])
    ev, _ = Translator(self_pid=1).translate(evs[0])
    info = et.info(ev.code)
    p = dict(zip([x.name for x in info.params], ev.params, strict=True))
    assert info.name == "execve" and p["exe"] == "cat" and p["args"] == b"-n\0/etc/shadow\0"
    assert p["cwd"] == "/tmp" and p["comm"] == "cat" and p["ptid"] == 100 and p["loginuid"] == 1000
    assert p["trusted_exepath"] == "/usr/bin/cat" and p["exe_ino"] == 7

    saddr = (struct.pack("=H", socket.AF_INET) + struct.pack("!H", 8080) + socket.inet_aton("192.0.2.1")
             + b"\0" * 8).hex().upper()
    body = SC.format(nr=B64["connect"], ret=0, a0="3", a1="0", a2="10")
    evs = _feed_all([rec(nl.AUDIT_SYSCALL, 12, body), rec(nl.AUDIT_SOCKADDR, 12, f"saddr={saddr}"),
                     rec(nl.AUDIT_EOE, 12, "")])
    ev, _ = Translator(self_pid=1, resolve=False).translate(evs[0])
    assert ev.params[1] == (socket.AF_INET, "0.0.0.0", 0, "192.0.2.1", 8080)
    assert ev.params[3] == (socket.AF_INET, "192.0.2.1", 8080)

    tr = Translator(self_pid=200)
    assert tr.translate(evs[0]) is None and tr.own == 1  # our own syscalls are never published
    cfg = _feed_all([rec(nl.AUDIT_CONFIG_CHANGE, 13, "op=add_rule"), rec(nl.AUDIT_EOE, 13, "")])
    assert tr.translate(cfg[0]) is None and tr.not_syscall == 1
    odd = _feed_all([rec(nl.AUDIT_SYSCALL, 14, SC.format(nr=B64["getpid"], ret=1, a0=0, a1=0, a2=0)),
                     rec(nl.AUDIT_EOE, 14, "")])
    tr2 = Translator(self_pid=1)
    assert tr2.translate(odd[0]) is None and tr2.untranslated == {"getpid": 1}


def test_flag_tables():
    assert open_flags_to_ppm(0) == 1 and open_flags_to_ppm(1) == 2 and open_flags_to_ppm(2) == 3
    assert open_flags_to_ppm(0o1101) == 2 | 4 | 256  # O_WRONLY|O_CREAT|O_TRUNC
    assert clone_flags_to_ppm(0x10000 | 0x100) == 8192 | 32768  # CLONE_THREAD|CLONE_VM


def test_syscalls_for_event_types():
    names = syscalls_for(["procexit", "ptrace", "pread", "no_such_thing"], with_state=False)
    assert names == {"exit_group", "ptrace", "pread64"}  # `exit` ends a thread audit cannot name
    assert {"clone", "execve", "openat", "connect", "close"} <= syscalls_for([])
