"""The event wire form: events as they travel in the `events` slot of a bus event batch.

A rules worker on another host must resolve the same fields the state engine resolved, so an
event carries, besides its own data, a snapshot of its thread (with the ancestor chain, up to
`MAX_DEPTH` levels, and the process's main thread) and of the fds it refers to, taken when it
is encoded. Encode right after the state engine processed the event: threads are live objects.

Each event is one msgpack-encoded `bytes` item (so one bad event is one bad event, and strings
keep undecodable bytes through `surrogateescape`). Thread snapshots are deduplicated within one
`encode_events` call: an item refers to a snapshot defined by an earlier item of the same list by
its index; `encode_event` makes a self-contained item. Layouts: docs/bus.md, "Event wire form".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from tiercel.common import eventtable as et
from tiercel.common.event import SYSCALL, Event, FdInfo, ThreadInfo

WIRE_VERSION = 1
MAX_DEPTH = 16  # ancestors carried per thread snapshot

_packer = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape", autoreset=True)
_pack = _packer.pack
# Strings without lone surrogates (nearly all) encode the same either way; msgpack's strict UTF-8
# path is the faster one, so it goes first and raises UnicodeEncodeError for the others.
_pack_strict = msgpack.Packer(use_bin_type=True, autoreset=True).pack

# Item layout (a msgpack array).
# [0] version, [1] num, [2] ts, [3] tid, [4] cpu, [5] code, [6] params, [7] thread, [8] fd,
# [9] fdnum, [10] flags (bit 0 fdrel, bit 1 fd_name_changed, dump flags << 8), [11] latency,
# [12] extra (map or nil), [13] referenced fds (array of fd snapshots or nil), [14] source,
# [15] payload
_FD_ATTRS = ("num", "type", "name", "nameraw", "flags", "mode", "dev", "ino", "l4proto", "cip", "cport",
             "sip", "sport", "is_server", "connected", "pid", "usrc", "udst", "role")
_TH_ATTRS = ("tid", "pid", "ptid", "sid", "vpgid", "vtid", "vpid", "comm", "exe", "exepath", "args", "cwd",
             "env", "uid", "gid", "euid", "egid", "loginuid", "user", "group", "loginname", "homedir",
             "shell", "tty", "flags", "start_ts", "exe_writable", "exe_upper_layer", "exe_lower_layer",
             "exe_from_memfd", "exe_ino", "exe_ino_ctime", "exe_ino_mtime", "cap_permitted",
             "cap_effective", "cap_inheritable", "cgroups", "container_id", "container",
             "pidns_init_start_ts", "fdlimit", "vmsize_kb", "vmrss_kb", "vmswap_kb", "pfmajor", "pfminor",
             "root", "pgid", "dead")
_NTH = len(_TH_ATTRS)
# thread snapshot: [*_TH_ATTRS values, parent, main, nfds]; parent/main are nil, an index of an
# earlier snapshot, or a nested snapshot; main is nil when the thread is its own main thread.


# Snapshots are tuples (msgpack writes them as the arrays lists would be), read attribute by
# attribute in Python: the interpreter's specialized slot reads beat operator.attrgetter's
# generic lookups (about 2.5x). Same order as _FD_ATTRS and _TH_ATTRS (tests check).
def _fd_snapshot(f: FdInfo) -> tuple:
    return (f.num, f.type, f.name, f.nameraw, f.flags, f.mode, f.dev, f.ino, f.l4proto, f.cip,
            f.cport, f.sip, f.sport, f.is_server, f.connected, f.pid, f.usrc, f.udst, f.role)


def _th_snapshot(t: ThreadInfo, parent: Any, main: Any, nfds: int) -> tuple:
    return (t.tid, t.pid, t.ptid, t.sid, t.vpgid, t.vtid, t.vpid, t.comm, t.exe, t.exepath, t.args,
            t.cwd, t.env, t.uid, t.gid, t.euid, t.egid, t.loginuid, t.user, t.group, t.loginname,
            t.homedir, t.shell, t.tty, t.flags, t.start_ts, t.exe_writable, t.exe_upper_layer,
            t.exe_lower_layer, t.exe_from_memfd, t.exe_ino, t.exe_ino_ctime, t.exe_ino_mtime,
            t.cap_permitted, t.cap_effective, t.cap_inheritable, t.cgroups, t.container_id,
            t.container, t.pidns_init_start_ts, t.fdlimit, t.vmsize_kb, t.vmrss_kb, t.vmswap_kb,
            t.pfmajor, t.pfminor, t.root, t.pgid, t.dead, parent, main, nfds)


def _fd_restore(a: Any) -> FdInfo:
    f = FdInfo.__new__(FdInfo)
    for name, v in zip(_FD_ATTRS, a, strict=True):
        setattr(f, name, v)
    return f


# Per code: indices of PT_FD params and PT_FDLIST params (their fds travel with the event).
_FD_PARAMS: list[tuple[tuple[int, ...], tuple[int, ...]]] = [
    (tuple(i for i, p in enumerate(e.params) if p.type in ("PT_FD", "PT_FD32")),
     tuple(i for i, p in enumerate(e.params) if p.type == "PT_FDLIST"))
    for e in et.EVENTS]
# Per code, the fd parameters `encode` looks up (their fds travel with the event unless it is
# the event's own fd): the index of the only one (most events), -1 none, a tuple of indices for
# several, None when the code has an fd list (`_referenced_fds`).
_FD_REF: list[int | tuple[int, ...] | None] = [
    None if fdl else fdp[0] if len(fdp) == 1 else fdp if fdp else -1 for fdp, fdl in _FD_PARAMS]
_NCODES = len(_FD_REF)


class Encoder:
    """Encodes a list of events into wire items, sharing thread snapshots between them.

    Snapshots are keyed by the thread objects themselves (with their `version` and fd count), so
    a thread that ends mid-batch stays alive until the encoder goes: a new thread can never take
    its id and with it its snapshot."""

    __slots__ = ("_index", "_n", "_chains", "_leaders")

    def __init__(self) -> None:
        self._index: dict[tuple, int] = {}
        self._n = 0
        # a whole ancestor chain of leaders ((thread, version, nfds) of each level) -> index
        self._chains: dict[tuple, int] = {}
        # thread -> (its chain as last keyed, the thread past the chain's end, snapshot index):
        # checking an unchanged chain in place is cheaper than building its key again
        self._leaders: dict[ThreadInfo, tuple[tuple, ThreadInfo | None, int]] = {}

    @staticmethod
    def _chain_key(t: ThreadInfo) -> tuple | None:
        """(thread, version, fd count) of each thread of an ancestor chain: equal keys within a
        batch name the same snapshot the recursion would find, so it is found without the
        recursion. Only for chains of process leaders (no separate main thread to follow)."""
        sig: list = []
        a: ThreadInfo | None = t
        d = 0
        while a is not None and d <= MAX_DEPTH:
            m = a.main
            if m is not None and m is not a:
                return None
            n = a.nfds
            sig.append((a, a.version, len(a.fds) if n is None else n))
            a = a.parent
            d += 1
        return tuple(sig)

    def _thread(self, t: ThreadInfo | None, depth: int) -> tuple[Any, int | None]:
        """(wire value, snapshot index) of a thread: the index of a snapshot this batch already
        defined, or a new snapshot (post-order: its parent and main thread are defined first)."""
        if t is None or depth > MAX_DEPTH:
            return None, None
        pw, pi = self._thread(t.parent, depth + 1) if t.parent is not None else (None, None)
        m = t.main
        if m is None or m is t:
            mw = mi = None
        else:
            mw, mi = self._thread(m, depth + 1)
        nfds = t.nfds if t.nfds is not None else len(t.fds)
        key = (t, t.version, nfds, pi, mi)
        idx = self._index.get(key)
        if idx is not None:
            return idx, idx
        snap = _th_snapshot(t, pw, mw, nfds)
        idx = self._n
        self._n += 1
        self._index[key] = idx
        return snap, idx

    def _thread_slow(self, t: ThreadInfo) -> Any:
        """The thread's wire value when its chain is not the one last seen for it."""
        key = self._chain_key(t)
        if key is None:
            return self._thread(t, 0)[0]
        idx = self._chains.get(key)
        if idx is None:
            th, idx = self._thread(t, 0)
            self._chains[key] = idx  # type: ignore[assignment]
        else:
            th = idx
        last = key[-1][0].parent if len(key) > MAX_DEPTH else None
        self._leaders[t] = (key, last, idx)  # type: ignore[assignment]
        return th

    def encode(self, ev: Event) -> bytes:
        """One wire item. When it cannot be made, the snapshots it would have defined are
        forgotten (later items must not refer to what no item carries) and the error raised."""
        n0 = self._n
        try:
            t = ev.thread
            f = ev.fd
            code = ev.code
            refs = None
            if t is None:
                th = None
            else:
                # the common case: the thread's chain is still the one last keyed for it (each level
                # the same thread, version, fd count, and its own main thread)
                hit = self._leaders.get(t)
                th = None
                if hit is not None:
                    key, last, idx = hit
                    a: Any = t
                    for o, v, n in key:
                        if o is not a or a.version != v:
                            break
                        x = a.nfds
                        m = a.main
                        if (len(a.fds) if x is None else x) != n or (m is not a and m is not None):
                            break
                        a = a.parent
                    else:
                        if a is last:
                            th = idx
                if th is None:
                    th = self._thread_slow(t)
                if 0 <= code < _NCODES:
                    i = _FD_REF[code]
                    if type(i) is int:
                        if i >= 0:  # one fd parameter (most events): often the event's own fd, or none
                            p = ev.params
                            v = p[i] if i < len(p) else None
                            if type(v) is int and v >= 0:
                                o = t.fds.get(v)
                                if o is not None and o is not f:
                                    refs = [_fd_snapshot(o)]
                    elif i is not None:  # several (openat: its fd and dirfd)
                        p = ev.params
                        np = len(p)
                        for j in i:
                            if j < np:
                                v = p[j]
                                if type(v) is int and v >= 0:
                                    o = t.fds.get(v)
                                    if o is not None and o is not f:
                                        if refs is None:
                                            refs = [_fd_snapshot(o)]
                                        else:
                                            refs.append(_fd_snapshot(o))
                    else:
                        refs = _referenced_fds(ev, t, *_FD_PARAMS[code])
            flags = (1 if ev.fdrel else 0) | (2 if ev.fd_name_changed else 0) | (ev.dump_flags << 8)
            extra = ev.extra
            if extra is not None and "fds" in extra:
                extra = {k: v for k, v in extra.items() if k != "fds"}
            item = [WIRE_VERSION, ev.num, ev.ts, ev.tid, ev.cpu, code, ev.params, th,
                    _fd_snapshot(f) if f is not None else None, ev.fdnum, flags, ev.latency, extra or None,
                    refs, ev.source, ev.payload]
            try:
                return _pack_strict(item)
            except UnicodeEncodeError:
                pass
            except (OverflowError, ValueError):
                return _pack_carryable(item)
            try:
                return _pack(item)
            except (OverflowError, ValueError):
                return _pack_carryable(item)
        except BaseException:
            if self._n != n0:
                self._forget(n0)
            raise

    def _forget(self, n: int) -> None:
        """Drop the snapshots from index `n` on (defined by an item that was never made)."""
        self._index = {k: i for k, i in self._index.items() if i < n}
        self._chains = {k: i for k, i in self._chains.items() if i < n}
        self._leaders = {t: h for t, h in self._leaders.items() if h[-1] < n}
        self._n = n


def _carryable(v: Any) -> Any:
    """A value msgpack can carry: integers beyond 64 bits become floats, as Falco's JSON reader
    (nlohmann::json) keeps them; beyond a double's range, their decimal text."""
    t = type(v)
    if t is int:
        if -(1 << 63) <= v < 1 << 64:
            return v
        try:
            return float(v)
        except OverflowError:
            return str(v)
    if t is list or t is tuple:
        return [_carryable(x) for x in v]
    if t is dict:
        return {_carryable(k): _carryable(x) for k, x in v.items()}
    return v


def _pack_carryable(item: list) -> bytes:
    """Second try for an event whose parameters or payload (parsed JSON from outside: k8s audit,
    generic JSON inputs) hold what msgpack refuses. Raises BadEvent when it still cannot travel
    (nested deeper than msgpack's limit of 1024 levels)."""
    try:
        item[6] = _carryable(item[6])
        item[15] = _carryable(item[15])
        return _pack(item)
    except (OverflowError, ValueError, TypeError, RecursionError) as e:
        raise BadEvent(f"event cannot be encoded for the bus: {e or type(e).__name__}") from None


def _referenced_fds(ev: Event, t: ThreadInfo, fdp: tuple, fdl: tuple) -> list | None:
    """Snapshots of the fds the event's parameters name (other than its own fd)."""
    out = None
    fds = t.fds
    p = ev.params
    n = len(p)
    own = ev.fd
    for i in fdp:
        if i < n:
            v = p[i]
            if type(v) is int and v >= 0:
                f = fds.get(v)
                if f is not None and f is not own:
                    if out is None:
                        out = []
                    out.append(_fd_snapshot(f))
    for i in fdl:
        if i < n and isinstance(p[i], tuple):
            for fd, _fl in p[i]:
                f = fds.get(fd)
                if f is not None and f is not own:
                    if out is None:
                        out = []
                    out.append(_fd_snapshot(f))
    return out


def encode_events(events: Iterable[Event]) -> list[bytes]:
    """Wire items for one batch (thread snapshots shared within it)."""
    enc = Encoder()
    return [enc.encode(ev) for ev in events]


def encode_event(ev: Event) -> bytes:
    """One self-contained wire item."""
    return Encoder().encode(ev)


class BadEvent(ValueError):
    pass


class Decoder:
    """Decodes the wire items of one batch, in order."""

    __slots__ = ("_snaps",)

    def __init__(self) -> None:
        self._snaps: list[ThreadInfo] = []

    def _thread(self, v: Any, depth: int = 0) -> ThreadInfo | None:
        if v is None:
            return None
        if depth > 2 * MAX_DEPTH + 2:  # encoders cut the chain at MAX_DEPTH (parent and main links)
            raise BadEvent("thread snapshots nested deeper than any encoder writes them")
        if type(v) is int:
            try:
                return self._snaps[v]
            except IndexError:
                raise BadEvent(f"thread snapshot {v} is not defined in this batch") from None
        if not isinstance(v, (list, tuple)) or len(v) != _NTH + 3:
            raise BadEvent("malformed thread snapshot")
        parent = self._thread(v[_NTH], depth + 1)
        main = self._thread(v[_NTH + 1], depth + 1)
        t = ThreadInfo.__new__(ThreadInfo)
        for name, x in zip(_TH_ATTRS, v, strict=False):
            setattr(t, name, x)
        t.args = list(t.args)
        t.env = list(t.env)
        t.cgroups = list(t.cgroups)
        t.parent = parent
        t.main = main if main is not None else t
        t.fds = {}
        t.nfds = v[_NTH + 2]
        t.lastevent_fd, t.lastevent_code, t.lastevent, t.version = -1, -1, None, 0
        self._snaps.append(t)
        return t

    def skip(self, a: Any) -> None:
        """An unpacked item the caller does not need: only the thread snapshots it defines are
        kept, since later items of the batch may refer to them."""
        if not isinstance(a, (list, tuple)) or len(a) != 16:
            raise BadEvent("event item must be a 16-element array")
        try:
            self._thread(a[7])
        except (TypeError, ValueError) as e:
            raise BadEvent(f"malformed event item: {e}") from None

    def decode(self, item: Any) -> Event:
        if isinstance(item, (bytes, bytearray, memoryview)):
            try:
                a = msgpack.unpackb(item, raw=False, use_list=False, strict_map_key=False,
                                    unicode_errors="surrogateescape")
            except Exception as e:  # msgpack raises several unrelated types
                raise BadEvent(f"event item is not msgpack: {e}") from None
        else:
            a = item
        if not isinstance(a, (list, tuple)) or len(a) != 16:
            raise BadEvent("event item must be a 16-element array")
        if a[0] != WIRE_VERSION:
            raise BadEvent(f"event wire version {a[0]!r}, expected {WIRE_VERSION}")
        num, ts, tid, cpu, code, params = a[1], a[2], a[3], a[4], a[5], a[6]
        if not (type(num) is int and type(ts) is int and type(tid) is int and type(code) is int):
            raise BadEvent("event num, ts, tid and code must be integers")
        if not isinstance(params, (list, tuple)):
            raise BadEvent("event params must be an array")
        source = a[14]
        if source is not None and type(source) is not str:
            raise BadEvent("event source must be a string")
        ev = Event(num, ts, tid, code, list(params), source=source or SYSCALL, payload=a[15],
                   cpu=cpu if type(cpu) is int else -1)
        try:
            ev.thread = self._thread(a[7])
            f = a[8]
            ev.fd = _fd_restore(f) if f is not None else None
            refs = a[13]
            extra = dict(a[12]) if a[12] else None
            if refs:
                fds = {}
                for r in refs:
                    x = _fd_restore(r)
                    fds[x.num] = x
                extra = extra or {}
                extra["fds"] = fds
            flags = a[10]
            ev.fdrel = bool(flags & 1)
            ev.fd_name_changed = bool(flags & 2)
            ev.dump_flags = flags >> 8
        except (TypeError, ValueError) as e:
            raise BadEvent(f"malformed event item: {e}") from None
        ev.extra = extra
        ev.fdnum = a[9]
        ev.latency = a[11]
        return ev


def decode_events(batch: Any, wanted: Callable[[str, int], bool] | None = None) -> tuple[list[Event], int]:
    """The events of a batch (a bus `EventBatch`, or a list of wire items) and how many items
    could not be decoded (counted, skipped). From an EventBatch, events get its host, source and
    their sequence numbers. `wanted(source, code)`: events it refuses are left out without being
    built (a rules worker asks for the event codes its rules can match)."""
    items = getattr(batch, "events", batch)
    host = getattr(batch, "host", None)
    seq = getattr(batch, "seq", None)
    dec = Decoder()
    out: list[Event] = []
    bad = 0
    for i, item in enumerate(items):
        try:
            if wanted is not None:
                if isinstance(item, (bytes, bytearray, memoryview)):
                    try:
                        item = _unpack(item)
                    except Exception as e:  # msgpack raises several unrelated types
                        raise BadEvent(f"event item is not msgpack: {e}") from None
                if isinstance(item, (list, tuple)) and len(item) == 16 and type(item[5]) is int \
                        and not wanted(item[14] or SYSCALL, item[5]):
                    dec.skip(item)
                    continue
            ev = dec.decode(item)
        except BadEvent:
            bad += 1
            continue
        if host is not None:
            ev.host = host
            ev.seq = seq + i
        out.append(ev)
    return out, bad


def _unpack(item: bytes) -> Any:
    return msgpack.unpackb(item, raw=False, use_list=False, strict_map_key=False, unicode_errors="surrogateescape")
