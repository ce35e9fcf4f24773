"""Live kernel drivers and the thread that reads them.

A driver turns kernel messages into event-model events (`poll()`); the `KernelReader` thread
runs it, resolves process context, encodes events for the bus and hands them to the bounded
`EventQueue`, counting every event it sees and every one it has to drop. It never blocks on
the publisher: a full queue is a counted `queue_full` drop.
"""

from __future__ import annotations

import errno
import logging
import pathlib
import select
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from tiercel.common import eventtable as et
from tiercel.common.event import Event, ThreadInfo
from tiercel.ingest import procconn
from tiercel.ingest.audit.assembler import Assembler
from tiercel.ingest.audit.netlink import NetlinkError, iter_messages
from tiercel.ingest.audit.session import AuditSession
from tiercel.ingest.audit.translate import Translator
from tiercel.ingest.drops import CATEGORY, StageCounters
from tiercel.ingest.queue import EventQueue

log = logging.getLogger("tiercel.ingest")


class AuditDriver:
    """Kernel audit over NETLINK_AUDIT (see tiercel.ingest.audit)."""

    name = "audit"

    def __init__(self, state_dir: pathlib.Path, event_types: Iterable[str] | None = None,
                 backlog_limit: int = 8192, rcvbuf: int = 32 << 20):
        self.session = AuditSession(state_dir, backlog_limit=backlog_limit, rcvbuf=rcvbuf)
        self.event_types = event_types
        self.assembler = Assembler()
        self.translator = Translator()
        self.enobufs = 0
        self.syscall_events = 0  # events from the kernel that carry a SYSCALL record
        self._lock = threading.Lock()  # the control socket is used from two threads

    def start(self) -> None:
        self.session.start(self.event_types)

    def describe(self) -> str:
        return (f"audit driver: auditing {len(self.session.syscalls)} syscalls; kernel audit settings "
                f"are restored on exit")

    def fileno(self) -> int:
        assert self.session.reader is not None
        return self.session.reader.fileno()

    def poll(self, max_msgs: int = 2048) -> tuple[list[Event], int]:
        """Drain up to max_msgs records. Returns (events, garbled records)."""
        sock = self.session.reader.sock  # type: ignore[union-attr]
        asm, now = self.assembler, time.monotonic_ns()
        done = []
        garbled_before = asm.stats.garbled + asm.stats.late
        for _ in range(max_msgs):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # the socket buffer overflowed: records lost
                    self.enobufs += 1
                    continue
                raise
            try:
                for m in iter_messages(data):
                    done.extend(asm.feed(m.type, m.payload, now))
            except NetlinkError:
                asm.stats.garbled += 1
        done.extend(asm.expire(now))
        out: list[Event] = []
        tr = self.translator
        for ae in done:
            if not ae.records:
                continue
            ev = tr.translate(ae)
            if ev is not None:
                out.append(ev)
        garbled = asm.stats.garbled + asm.stats.late - garbled_before
        return out, garbled

    def kernel_counters(self) -> dict[str, int]:
        with self._lock:
            st = self.session.status()
        return {"lost": st.lost, "backlog": st.backlog, "backlog_limit": st.backlog_limit}

    def set_event_types(self, event_types: Iterable[str] | None) -> None:
        with self._lock:
            self.session.set_event_types(event_types)

    def stop(self) -> None:
        with self._lock:
            self.session.stop()


class ProcConnectorDriver:
    """Process events over the proc connector; sees no opens and no connects."""

    name = "proc_connector"

    def __init__(self, rcvbuf: int = 8 << 20):
        self.rcvbuf = rcvbuf
        self.conn: procconn.ProcConnector | None = None
        self.translator = procconn.ProcTranslator()
        self.enobufs = 0
        self.garbled = 0

    def start(self) -> None:
        self.conn = procconn.ProcConnector(self.rcvbuf)

    def describe(self) -> str:
        return f"proc_connector driver: sees {procconn.SEES}; cannot see {procconn.BLIND}"

    def fileno(self) -> int:
        assert self.conn is not None
        return self.conn.fileno()

    def poll(self, max_msgs: int = 2048) -> tuple[list[Event], int]:
        assert self.conn is not None
        out: list[Event] = []
        garbled = 0
        for _ in range(max_msgs):
            try:
                data = self.conn.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.enobufs += 1
                    continue
                raise
            try:
                pes = procconn.parse(data)
            except (procconn.GarbledProcEvent, NetlinkError):
                garbled += 1
                continue
            for pe in pes:
                ev = self.translator.translate(pe)
                if ev is not None:
                    out.append(ev)
        return out, garbled

    def kernel_counters(self) -> dict[str, int]:
        return {}

    def set_event_types(self, event_types: Iterable[str] | None) -> None:
        pass

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Ancestry:
    """Parent names for live events until the state engine resolves them: a bounded cache of
    what the stream told us (exec → comm of a pid, clone → a child's parent), /proc as fallback."""

    def __init__(self, size: int = 65536):
        self.size = size
        self._procs: OrderedDict[int, tuple[str, str, int]] = OrderedDict()  # pid -> (comm, exepath, ppid)

    def _remember(self, pid: int, comm: str, exepath: str, ppid: int) -> None:
        self._procs[pid] = (comm, exepath, ppid)
        self._procs.move_to_end(pid)
        if len(self._procs) > self.size:
            self._procs.popitem(last=False)

    def _lookup(self, pid: int) -> tuple[str, str, int] | None:
        hit = self._procs.get(pid)
        if hit is not None:
            return hit
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return None
        lp, rp = stat.find(b"("), stat.rfind(b")")
        comm = stat[lp + 1:rp].decode("utf-8", "replace")
        try:
            ppid = int(stat[rp + 2:].split()[1])
        except (IndexError, ValueError):
            ppid = 0
        self._remember(pid, comm, "", ppid)
        return self._procs[pid]

    def resolve(self, ev: Event, depth: int = 4) -> None:
        t = ev.thread
        if t is None:
            return
        info = et.info(ev.code)
        name = info.name if info else ""
        if name in ("execve", "execveat") and ev.params and ev.params[0] == 0:
            self._remember(t.pid, t.comm, t.exepath, t.ptid)
        elif t.comm:
            self._remember(t.pid, t.comm, t.exepath, t.ptid)
        if name in ("clone", "clone3", "fork", "vfork") and ev.params and isinstance(ev.params[0], int) \
                and ev.params[0] > 0:
            self._remember(ev.params[0], t.comm, t.exepath, t.pid)
        cur, ppid = t, t.ptid
        for _ in range(depth):
            if ppid <= 0:
                break
            hit = self._lookup(ppid)
            if hit is None:
                break
            comm, exepath, pp = hit
            parent = ThreadInfo(ppid, ppid, pp, comm=comm, exepath=exepath)
            cur.parent = parent
            cur, ppid = parent, pp


def _default_encode(ev: Event) -> Any:
    """Interim wire form until the event model's `encode_events` lands: code, ts, tid, params,
    and the process chain (pid, comm, exepath) for what live consumers need."""
    chain = []
    t = ev.thread
    while t is not None and len(chain) < 5:
        chain.append([t.pid, t.comm, t.exepath, t.uid])
        t = t.parent
    return [ev.code, ev.ts, ev.tid, list(ev.params), chain]


def event_encoder() -> Callable[[Event], Any]:
    from tiercel.common import event as model

    enc = getattr(model, "encode_event", None)
    return enc if enc is not None else _default_encode


class KernelReader(threading.Thread):
    """Reads the driver, resolves, encodes and queues; counts kernel and ingest stages."""

    def __init__(self, driver: Any, queue: EventQueue, kernel: StageCounters, ingest: StageCounters,
                 on_event: Callable[[Event], None] | None = None, poll_timeout: float = 0.05):
        super().__init__(name=f"tiercel-{driver.name}-reader", daemon=True)
        self.driver = driver
        self.queue = queue
        self.kernel = kernel
        self.ingest = ingest
        self.on_event = on_event
        self.poll_timeout = poll_timeout
        self.ancestry = Ancestry()
        self.encode = event_encoder()
        self._stop_evt = threading.Event()
        self.error: BaseException | None = None
        self._enobufs_seen = 0

    def stop(self) -> None:
        self._stop_evt.set()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the worker, which stops cleanly
            self.error = e
            log.error("kernel reader stopped: %s", e)

    def _run(self) -> None:
        fd = self.driver.fileno()
        drv, q, names = self.driver, self.queue, {}
        while not self._stop_evt.is_set():
            r, _, _ = select.select([fd], [], [], self.poll_timeout)
            events, garbled = drv.poll()
            if drv.enobufs != self._enobufs_seen:
                self.kernel.drop("netlink_enobufs", drv.enobufs - self._enobufs_seen)
                self._enobufs_seen = drv.enobufs
            if garbled:
                self.ingest.seen(garbled)
                self.ingest.drop("garbled", garbled)
            if not events:
                continue
            self.kernel.seen(len(events))
            self.ingest.seen(len(events))
            items = []
            for ev in events:
                self.ancestry.resolve(ev)
                if self.on_event is not None:
                    self.on_event(ev)
                items.append((self.encode(ev), ev.code))
            rejected = q.put_many(items)
            if rejected:
                for _, code in rejected:
                    name = names.get(code)
                    if name is None:
                        info = et.info(code)
                        name = names[code] = info.name if info else ""
                    self.ingest.drop("queue_full", 1, CATEGORY.get(name, "other_interest"))
