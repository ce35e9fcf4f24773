"""Live kernel drivers and the thread that reads them.

A driver turns kernel messages into event-model events, each with the process identity its
source states (`poll()`). The `KernelReader` thread runs it, puts every event through the state
engine (`tiercel.ingest.livestate`), encodes it in the bus wire form right away (thread and fd
snapshots, shared within one batch: `tiercel.common.wire`) and hands whole batches to the bounded
`EventQueue`, counting every event it sees and every one it has to drop. It never blocks on the
publisher: a full queue is a counted `queue_full` drop.
"""

from __future__ import annotations

import logging
import os
import pathlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlparse

from tiercel.common import eventtable as et
from tiercel.common.event import Event
from tiercel.common.wire import Encoder
from tiercel.ingest import procconn
from tiercel.ingest.audit.assembler import Assembler
from tiercel.ingest.audit.client import DatagramReader
from tiercel.ingest.audit.netlink import NetlinkError
from tiercel.ingest.audit.session import AuditSession
from tiercel.ingest.audit.translate import Translator
from tiercel.ingest.drops import CATEGORY, StageCounters
from tiercel.ingest.livestate import LiveState
from tiercel.ingest.queue import EventQueue

log = logging.getLogger("tiercel.ingest")

LINGER_BELOW = 256  # events per read under which the reader lingers before the next read


class AuditDriver:
    """Kernel audit over NETLINK_AUDIT (see tiercel.ingest.audit)."""

    name = "audit"

    def __init__(self, state_dir: pathlib.Path, event_types: Iterable[str] | None = None,
                 backlog_limit: int = 8192, rcvbuf: int = 64 << 20, exclude_pids: Iterable[int] = (),
                 resolve: bool = True):
        self.session = AuditSession(state_dir, backlog_limit=backlog_limit, rcvbuf=rcvbuf)
        self.session.exclude_pids = set(exclude_pids)
        self.event_types = event_types
        self.assembler = Assembler()
        self.translator = Translator(resolve=resolve, exclude=self.session.exclude_pids)
        self.reader: DatagramReader | None = None
        self._lock = threading.Lock()  # the control socket is used from two threads

    @property
    def enobufs(self) -> int:
        return self.reader.enobufs if self.reader is not None else 0

    def start(self) -> None:
        self.session.start(self.event_types)
        assert self.session.reader is not None
        self.reader = DatagramReader(self.session.reader.sock)

    def describe(self) -> str:
        return (f"audit driver: auditing {len(self.session.syscalls)} syscalls; kernel audit settings "
                f"are restored on exit")

    def fileno(self) -> int:
        assert self.session.reader is not None
        return self.session.reader.fileno()

    def poll(self, max_msgs: int = 4096) -> tuple[list[tuple[Event, Any]], int]:
        """Drain up to max_msgs records. Returns ((event, identity) pairs, garbled records)."""
        asm, now = self.assembler, time.monotonic_ns()
        st = asm.stats
        bad_before = st.garbled + st.late + self.translator.garbled
        done: list = []
        assert self.reader is not None
        trunc = self.reader.truncated
        datagrams = self.reader.read(max_msgs)
        try:
            asm.feed_datagrams(datagrams, now, done)
        except NetlinkError:
            st.garbled += 1
        done.extend(asm.expire(now))
        tr = self.translator.translate
        out = [p for p in map(tr, done) if p is not None]
        garbled = st.garbled + st.late + self.translator.garbled - bad_before + self.reader.truncated - trunc
        return out, garbled

    def kernel_counters(self) -> dict[str, int]:
        with self._lock:
            st = self.session.status()
        return {"lost": st.lost, "backlog": st.backlog, "backlog_limit": st.backlog_limit}

    def set_event_types(self, event_types: Iterable[str] | None) -> None:
        with self._lock:
            if self.session.control is not None:  # not stopped meanwhile
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
        self.reader: DatagramReader | None = None

    @property
    def enobufs(self) -> int:
        return self.reader.enobufs if self.reader is not None else 0

    def start(self) -> None:
        self.conn = procconn.ProcConnector(self.rcvbuf)
        self.reader = DatagramReader(self.conn.sock, slots=64)

    def describe(self) -> str:
        return f"proc_connector driver: sees {procconn.SEES}; cannot see {procconn.BLIND}"

    def fileno(self) -> int:
        assert self.conn is not None
        return self.conn.fileno()

    def poll(self, max_msgs: int = 2048) -> tuple[list[tuple[Event, Any]], int]:
        assert self.reader is not None
        out: list[tuple[Event, Any]] = []
        garbled = 0
        for data in self.reader.read(max_msgs):
            try:
                pes = procconn.parse(data)
            except (procconn.GarbledProcEvent, NetlinkError):
                garbled += 1
                continue
            for pe in pes:
                ev = self.translator.translate(pe)
                if ev is not None:
                    hint, ev.thread = ev.thread, None
                    out.append((ev, hint))
        return out, garbled

    def kernel_counters(self) -> dict[str, int]:
        return {}

    def set_event_types(self, event_types: Iterable[str] | None) -> None:
        pass

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def local_server_pids(url: str | None) -> set[int]:
    """Pids listening on the TCP port of a NATS URL on this host (the nats-server we publish to:
    its own syscalls are not worth auditing). Empty for remote servers or when not found."""
    if not url:
        return set()
    out: set[int] = set()
    for one in url.split(","):
        try:
            u = urlparse(one.strip())
            host, port = u.hostname or "", u.port or 4222
        except ValueError:
            continue
        if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", socket.gethostname()):
            continue
        inodes = set()
        for f in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(f) as fh:
                    next(fh, None)
                    for line in fh:
                        p = line.split()
                        if len(p) > 9 and p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                            inodes.add(f"socket:[{p[9]}]")
            except (OSError, ValueError):
                continue
        if not inodes:
            continue
        for pid in (int(x) for x in os.listdir("/proc") if x.isdigit()):
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        out.add(pid)
                        break
                except OSError:
                    continue
    out.discard(os.getpid())
    return out


class KernelReader(threading.Thread):
    """Reads the driver, runs the state engine, encodes and queues whole batches; counts the
    kernel and ingest stages."""

    def __init__(self, driver: Any, queue: EventQueue, kernel: StageCounters, ingest: StageCounters,
                 state: LiveState | None = None, on_event: Callable[[Event], None] | None = None,
                 batch_size: int = 256, batch_interval: float = 0.02, poll_timeout: float = 0.05,
                 linger: float = 0.002):
        super().__init__(name=f"tiercel-{driver.name}-reader", daemon=True)
        self.driver = driver
        self.queue = queue
        self.kernel = kernel
        self.ingest = ingest
        self.state = state if state is not None else LiveState()
        self.on_event = on_event
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self.poll_timeout = poll_timeout
        self.linger = linger
        self._stop_evt = threading.Event()
        self.error: BaseException | None = None
        self._enobufs_seen = 0
        self._names: dict[int, str] = {}
        self._pending: list[tuple[bytes, int]] = []
        self._enc = Encoder()
        self._first = 0.0

    def stop(self) -> None:
        self._stop_evt.set()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the worker, which stops cleanly
            self.error = e
            log.error("kernel reader stopped: %s", e)
        finally:
            self._flush()

    def _run(self) -> None:
        fd = self.driver.fileno()
        drv, state, on_event = self.driver, self.state, self.on_event
        process = state.process
        size, interval = self.batch_size, self.batch_interval
        stop = self._stop_evt
        linger, sleep = self.linger, time.sleep
        got = 0
        while not stop.is_set():
            timeout = self.poll_timeout
            if self._pending:
                timeout = max(0.0, min(timeout, self._first + interval - time.monotonic()))
            if select.select([fd], [], [], timeout)[0] and linger and got < LINGER_BELOW:
                # keeping up: let records gather for a moment, so one wakeup and one read take a
                # batch (every wakeup costs the kernel and us about a record's worth of CPU)
                sleep(linger)
            pairs, garbled = drv.poll()
            got = len(pairs)
            if drv.enobufs != self._enobufs_seen:
                self.kernel.drop("netlink_enobufs", drv.enobufs - self._enobufs_seen)
                self._enobufs_seen = drv.enobufs
            if garbled:
                self.ingest.seen(garbled)
                self.ingest.drop("garbled", garbled)
            if pairs:
                self.kernel.seen(len(pairs))
                self.ingest.seen(len(pairs))
                pending = self._pending
                encode = self._enc.encode
                for ev, ident in pairs:
                    try:
                        process(ev, ident)
                        if on_event is not None:
                            on_event(ev)
                        item = (encode(ev), ev.code)
                    except Exception as e:  # a state-engine or encoding bug costs one event, counted
                        log.debug("event %r not processed: %s", ev, e)
                        self.ingest.drop("state_error", 1)
                        continue
                    if not pending:
                        self._first = time.monotonic()
                    pending.append(item)
                    if len(pending) >= size:
                        self._flush()
                        pending, encode = self._pending, self._enc.encode
            if self._pending and time.monotonic() - self._first >= interval:
                self._flush()
            state.maybe_sweep()

    def _flush(self) -> None:
        """Hand the pending batch to the queue (one batch on the bus: its snapshots are shared)."""
        items = self._pending
        if not items:
            return
        self._pending = []
        self._enc = Encoder()
        rejected = self.queue.put_chunk(items)
        if rejected:
            names = self._names
            for _, code in rejected:
                name = names.get(code)
                if name is None:
                    info = et.info(code)
                    name = names[code] = info.name if info else ""
                self.ingest.drop("queue_full", 1, CATEGORY.get(name, "other_interest"))
