"""The event wire form: every field the catalog offers extracts the same value from an event
before it is encoded and after it is decoded, for every event of every conformance capture."""

from __future__ import annotations

import ipaddress

import msgpack
import pytest

from tiercel.common import bus
from tiercel.common import eventtable as et
from tiercel.common.event import Event, FdInfo, ThreadInfo, decode_events, encode_event, encode_events
from tiercel.common.wire import MAX_DEPTH, Decoder, Encoder
from tiercel.ingest.scap.reader import read_scap
from tiercel.ingest.state import StateEngine
from tiercel.rules.fields import catalog as C

CAPTURES = ["cat_write.scap", "empty.scap", "open-multiple-files.scap", "libs/curl_google.scap",
            "libs/test_ipv6_client.scap"]
BATCH = 50


def _checks(ev: Event) -> list[tuple]:
    """(field, arg) pairs to compare for an event: every argument-less field, the indexed forms
    of the ancestor fields, and the event's own parameters by name and by number."""
    table = C.fields("syscall")
    out = [(f, None) for name, f in sorted(table.items()) if f.arg != "required" and f.name == name
           and not name.startswith(("evt.arg.", "evt.rawarg.")) and name != "evt.hostname"]  # set by the batch
    for name in ("proc.aname", "proc.apid", "proc.aexepath"):
        out += [(table[name], str(i)) for i in range(0, 5)]
    info = et.info(ev.code)
    for i, p in enumerate(info.params if info else ()):
        out += [(table["evt.arg"], p.name), (table["evt.rawarg"], p.name), (table["evt.arg"], str(i))]
    out += [(table["thread.cgroup"], "cpu"), (table["proc.env"], "HOME")]
    return out


def _norm(v):
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


@pytest.mark.parametrize("name", CAPTURES)
def test_round_trip_every_field(conformance_dir, name):
    engine = StateEngine()
    before: list[tuple[int, list]] = []
    batches: list[list[bytes]] = []
    enc = Encoder()
    items: list[bytes] = []
    for ev in engine.run(read_scap(conformance_dir / "traces" / name)):
        checks = _checks(ev)
        before.append((ev.num, [(f.name, a, _norm(f.extract(ev, a))) for f, a in checks]))
        items.append(enc.encode(ev))  # encoded right after the state engine, as ingest does
        if len(items) == BATCH:
            batches.append(items)
            items, enc = [], Encoder()
    if items:
        batches.append(items)
    after = []
    for b in batches:
        # through a real bus envelope, as a rules worker receives it
        wire = bus.EventBatch.decode(bus.EventBatch(host="h1", source="syscall", seq=1, events=b).encode())
        evs, bad = decode_events(wire)
        assert bad == 0
        after.extend(evs)
    assert [e.num for e in after] == [n for n, _ in before]
    diffs = []
    for ev, (num, vals) in zip(after, before, strict=True):
        for fname, a, want in vals:
            got = _norm(C.lookup(fname, "syscall").extract(ev, a))
            if got != want:
                diffs.append((num, fname, a, want, got))
    assert not diffs, diffs[:10]
    assert after[0].host == "h1" and after[1].seq == 2


def test_snapshots_are_shared_within_a_batch(conformance_dir):
    evs = list(StateEngine().run(read_scap(conformance_dir / "traces" / "libs/curl_google.scap")))
    shared = sum(map(len, encode_events(evs[:500])))
    alone = sum(len(encode_event(e)) for e in evs[:500])
    assert shared < alone / 3
    dec, _ = decode_events(encode_events(evs[:500]))
    assert dec[-1].thread is dec[-2].thread or dec[-1].thread.tid != dec[-2].thread.tid


def test_thread_changes_inside_a_batch_are_kept():
    t = ThreadInfo(10, comm="bash", cwd="/")
    t.main = t
    e1 = Event(1, 1, 10, 5, [0])
    e1.thread = t
    enc = Encoder()
    a = enc.encode(e1)
    t.comm = "cat"  # an execve between the two events
    t.version += 1
    e2 = Event(2, 2, 10, 5, [0])
    e2.thread = t
    b = enc.encode(e2)
    (d1, d2), bad = decode_events([a, b])
    assert (d1.thread.comm, d2.thread.comm, bad) == ("bash", "cat", 0)


def test_ancestor_chain_is_bounded():
    t = None
    for i in range(1, 30):
        n = ThreadInfo(i, comm=f"p{i}")
        n.parent = t
        n.main = n
        t = n
    e = Event(1, 1, 29, 5, [0])
    e.thread = t
    (d,), _ = decode_events([encode_event(e)])
    depth, x = 0, d.thread
    while x.parent is not None:
        depth, x = depth + 1, x.parent
    assert depth == MAX_DEPTH


def test_bad_items_are_counted_not_fatal():
    good = encode_event(Event(1, 1, 1, 5, [0]))
    evil = [b"\xc1", msgpack.packb([1, 2, 3]), msgpack.packb([2] + [0] * 15), msgpack.packb(
        [1, 1, 1, 1, 0, 5, [], 7, None, -1, 0, 0, None, None, "syscall", None]), good]
    evs, bad = decode_events(evil)
    assert bad == 4 and len(evs) == 1
    assert Decoder().decode(good).code == 5


def test_non_syscall_events_carry_their_payload():
    doc = {"kind": "Event", "auditID": "x", "verb": "create", "objectRef": {"resource": "pods"}}
    e = Event(1, 5, -1, et.PPME_PLUGINEVENT_E, source="k8s_audit", payload=doc)
    (d,), bad = decode_events([encode_event(e)])
    assert d.source == "k8s_audit" and d.payload == doc and d.thread is None


def test_undecodable_strings_survive():
    e = Event(1, 1, 1, et.PPME["PPME_SYSCALL_OPEN_X"], [3, "/tmp/\udcff\udcfe", 1, 0])
    (d,), _ = decode_events([encode_event(e)])
    assert d.params[1] == "/tmp/\udcff\udcfe"
    # the same bytes as one msgpack writer with surrogateescape for every item, whichever path
    # the encoder took (strict UTF-8 first, surrogateescape when a string needs it)
    t = ThreadInfo(1, 1, 0, comm="caf\udce9", exe="x")
    t.main = t
    plain = Event(2, 1, 1, et.PPME["PPME_SYSCALL_OPEN_X"], [3, "/tmp/café", 1, 0])
    for ev in (e, plain):
        ev.thread = t
        item = encode_event(ev)
        again = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape").pack(
            msgpack.unpackb(item, raw=False, unicode_errors="surrogateescape", strict_map_key=False))
        assert item == again
    assert ipaddress.ip_address("::1")


def _process(tid: int, comm: str, parent: ThreadInfo | None = None) -> ThreadInfo:
    t = ThreadInfo(tid, comm=comm, exe=f"/usr/bin/{comm}", parent=parent, ptid=parent.tid if parent else 0)
    t.main = t
    return t


def _event(num: int, t: ThreadInfo) -> Event:
    e = Event(num, num, t.tid, et.PPME["PPME_SYSCALL_CLOSE_X"], [0, -1])
    e.thread = t
    return e


def test_an_ancestor_changed_between_two_events_of_a_batch_is_seen():
    """The encoder remembers each thread's ancestor chain; any change to any level between two
    events of one batch (what the state engine or the live merge can do) must give the second
    event the new snapshot."""
    init = _process(1, "systemd")
    sh = _process(100, "bash", init)
    cat = _process(200, "cat", sh)
    enc = Encoder()
    items, want = [], []

    def emit() -> None:
        items.append(enc.encode(_event(len(items) + 1, cat)))
        p = cat.parent
        top = p.parent.parent
        want.append((cat.comm, cat.main is cat, p.tid, p.comm, len(p.fds), p.parent.comm, top and top.comm))

    emit()
    emit()  # unchanged: the same snapshot, by reference
    sh.comm = "zsh"  # an ancestor's exec
    sh.version += 1
    emit()
    sh.fds[5] = FdInfo(5, "file", "/tmp/x")  # an ancestor's fd table (its version stays)
    emit()
    other = _process(150, "tmux", init)
    cat.parent = other  # reparented without a version bump (a live merge adopting the parent)
    emit()
    cat.parent = sh
    init.comm = "init"  # the top of the chain
    init.version += 1
    emit()
    worker = ThreadInfo(201, 200, comm="cat")  # cat is no longer its own main thread
    cat.main = worker
    worker.main = worker
    emit()
    cat.main = cat
    del sh.fds[5]  # back to an fd count an earlier snapshot had
    emit()
    init.parent = _process(0, "swapper")  # the chain grows above its top
    emit()
    evs, bad = decode_events(items)
    assert bad == 0
    got = [(d.thread.comm, d.thread.main is d.thread, d.thread.parent.tid, d.thread.parent.comm,
            d.thread.parent.nfds, d.thread.parent.parent.comm,
            d.thread.parent.parent.parent and d.thread.parent.parent.parent.comm) for d in evs]
    assert got == want
    assert len(items[1]) < len(items[0]) / 2  # the unchanged chain was sent once


def test_a_thread_gone_mid_batch_never_lends_its_snapshot():
    """Snapshots are keyed by thread: one that ends (and is freed) mid-batch must not be taken
    for a new thread the allocator puts at its address."""
    enc = Encoder()
    items = []
    for i in range(50):  # short-lived processes, each gone before the next starts
        t = _process(1000 + i, f"p{i}")
        t.fds = {0: FdInfo(0, "file", "/dev/null")}
        items.append(enc.encode(_event(i + 1, t)))
        del t
    evs, bad = decode_events(items)
    assert bad == 0
    assert [e.thread.comm for e in evs] == [f"p{i}" for i in range(50)]


def test_snapshots_follow_the_attribute_lists():
    """The snapshot readers are written out attribute by attribute (for speed): their order must
    be the one the decoder restores by."""
    from tiercel.common.wire import _FD_ATTRS, _TH_ATTRS, _fd_snapshot, _th_snapshot

    f = FdInfo()
    for i, name in enumerate(_FD_ATTRS):
        setattr(f, name, f"v{i}")
    assert _fd_snapshot(f) == tuple(f"v{i}" for i in range(len(_FD_ATTRS)))
    t = ThreadInfo(1)
    for i, name in enumerate(_TH_ATTRS):
        setattr(t, name, f"v{i}")
    assert _th_snapshot(t, "p", "m", 7) == (*(f"v{i}" for i in range(len(_TH_ATTRS))), "p", "m", 7)


def test_an_event_that_cannot_be_encoded_leaves_no_dangling_snapshot():
    """Ingest drops (and counts) an event whose encoding fails and keeps filling the batch: the
    snapshots that event would have defined must not be referred to by the next items."""
    sh = _process(100, "bash")
    cat = _process(200, "cat", sh)
    enc = Encoder()
    bad_ev = _event(1, cat)
    bad_ev.params = [object(), 3]  # nothing msgpack can carry
    with pytest.raises(TypeError):
        enc.encode(bad_ev)
    items = [enc.encode(_event(2, cat)), enc.encode(_event(3, cat))]
    evs, bad = decode_events(items)
    assert bad == 0
    assert [(e.thread.comm, e.thread.parent.comm) for e in evs] == [("cat", "bash")] * 2
