"""Detecting lost event batches from gaps in each host's event sequence numbers.

Ingest numbers the events of a host 1, 2, 3, ... without gaps, and every batch says which range
it carries. Rules workers share the batches, so no single worker sees every range: each worker
shares the ranges it processed (`tiercel.progress.<instance>`), every worker merges everyone's
ranges here, and one of them (the leader: the smallest live instance id) declares a hole lost
once it has stayed open longer than the horizon (long enough for a dead worker's batches to be
redelivered). Declared holes are shared too, so a new leader never counts a hole twice.

Sans-IO: ranges are half-open `[a, b)`, time is passed in.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

# Ranges that arrive below a host's base are kept this long, so an ingest restart (numbering
# starting again at 1) announced after some of its ranges can replay them.
_RECENT_S = 30.0
# A non-leader collapses its ranges past this many (it never declares; the leader will).
_MAX_RANGES = 50_000


@dataclass
class HostSeq:
    """Resolved (seen or declared lost) sequence numbers of one host."""

    base: int | None = None  # every seq below base is resolved
    starts: list[int] = field(default_factory=list)  # sorted disjoint ranges above base
    ends: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # when each range was first learnt
    recent_below: deque = field(default_factory=deque)  # (a, b, t) that arrived below base

    def add(self, a: int, b: int, now: float) -> None:
        if b <= a:
            return
        if self.base is None:
            self.base = a
        if b <= self.base:
            self.recent_below.append((a, b, now))
            while self.recent_below and now - self.recent_below[0][2] > _RECENT_S:
                self.recent_below.popleft()
            return
        a = max(a, self.base)
        i = bisect.bisect_left(self.ends, a)  # first range whose end >= a (touching or overlapping)
        j = i
        t = now
        while j < len(self.starts) and self.starts[j] <= b:
            a = min(a, self.starts[j])
            b = max(b, self.ends[j])
            t = min(t, self.times[j])
            j += 1
        self.starts[i:j] = [a]
        self.ends[i:j] = [b]
        self.times[i:j] = [t]
        self._advance()

    def _advance(self) -> None:
        while self.starts and self.starts[0] <= self.base:
            self.base = max(self.base, self.ends[0])
            del self.starts[0], self.ends[0], self.times[0]

    def reset(self, a: int, now: float) -> None:
        """The host's numbering started again at `a` (ingest restarted)."""
        replay = [(x, y, t) for x, y, t in self.recent_below if x >= a and now - t <= _RECENT_S]
        self.base, self.starts, self.ends, self.times = a, [], [], []
        self.recent_below.clear()
        for x, y, t in replay:
            self.add(x, y, t)

    def holes(self) -> list[tuple[int, int]]:
        out = []
        prev = self.base
        for s, e in zip(self.starts, self.ends, strict=True):
            out.append((prev, s))
            prev = e
        return out

    def expire(self, now: float, horizon: float) -> list[tuple[int, int]]:
        """Declare lost the holes below ranges learnt more than `horizon` ago (lowest first)."""
        lost = []
        while self.starts and now - self.times[0] > horizon:
            lost.append((self.base, self.starts[0]))
            self.base = self.ends[0]
            del self.starts[0], self.ends[0], self.times[0]
            self._advance()
        return lost

    def compact(self) -> None:
        if len(self.starts) > _MAX_RANGES:
            self.base = self.ends[len(self.starts) // 2]
            self._advance()
            k = bisect.bisect_right(self.starts, self.base)
            del self.starts[:k], self.ends[:k], self.times[:k]


class SeqTracker:
    """Per-host resolved ranges, with the ranges this instance learnt since it last shared them."""

    def __init__(self) -> None:
        self.hosts: dict[str, HostSeq] = {}
        self.seen_out: dict[str, list[tuple[int, int]]] = {}  # to share: processed here
        self.lost_out: dict[str, list[tuple[int, int]]] = {}  # to share: declared here
        self.resets_out: dict[str, int] = {}
        self.counted: dict[str, int] = {}  # events per host learnt since last report (n_evts)

    def _host(self, host: str) -> HostSeq:
        h = self.hosts.get(host)
        if h is None:
            h = self.hosts[host] = HostSeq()
        return h

    def processed(self, host: str, a: int, b: int, now: float, first_delivery: bool = True) -> None:
        """This worker processed the batch `[a, b)` of `host`."""
        h = self._host(host)
        if a == 1 and first_delivery and h.base is not None and h.base > 1:
            h.reset(1, now)
            self.resets_out[host] = 1
            self.seen_out[host] = []  # ranges of the old numbering mean nothing after the reset
        h.add(a, b, now)
        self.seen_out.setdefault(host, []).append((a, b))
        self.counted[host] = self.counted.get(host, 0) + (b - a)

    def merge(self, seen: dict[str, list], lost: dict[str, list], resets: dict[str, int], now: float) -> None:
        """Ranges shared by another worker."""
        for host, start in resets.items():
            self._host(host).reset(int(start), now)
        for host, ranges in seen.items():
            h = self._host(host)
            for a, b in ranges:
                h.add(int(a), int(b), now)
                self.counted[host] = self.counted.get(host, 0) + (int(b) - int(a))
        for host, ranges in lost.items():
            h = self._host(host)
            for a, b in ranges:
                h.add(int(a), int(b), now)

    def expire(self, now: float, horizon: float) -> dict[str, int]:
        """Leader only: declare old holes lost. Returns lost event counts per host."""
        out: dict[str, int] = {}
        for host, h in self.hosts.items():
            lost = h.expire(now, horizon)
            if lost:
                out[host] = sum(b - a for a, b in lost)
                self.lost_out.setdefault(host, []).extend(lost)
        return out

    def take_outgoing(self) -> tuple[dict, dict, dict]:
        """What to share now (coalesced), clearing it."""
        seen = {h: _coalesce(r) for h, r in self.seen_out.items()}
        lost, resets = self.lost_out, self.resets_out
        self.seen_out, self.lost_out, self.resets_out = {}, {}, {}
        for h in self.hosts.values():
            h.compact()
        return seen, lost, resets

    def take_counts(self) -> dict[str, int]:
        c, self.counted = self.counted, {}
        return c


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]
