"""Drop accounting for ingest: counters per stage and reason, the once-per-second drop reports,
and Falco's `syscall_event_drops` behaviour (threshold, actions, token bucket, the internal alert).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tiercel.common import bus

log = logging.getLogger("tiercel.ingest.drops")

DROP_RULE = "Falco internal: syscall event drop"

# Falco's output_fields of the drop alert, in its order; all values are strings.
DROP_ALERT_FIELDS = (
    "n_evts", "n_drops", "n_drops_buffer_total", "n_drops_buffer_clone_fork_exit",
    "n_drops_buffer_execve_exit", "n_drops_buffer_connect_exit", "n_drops_buffer_open_exit",
    "n_drops_buffer_dir_file_exit", "n_drops_buffer_other_interest_exit", "n_drops_buffer_close_exit",
    "n_drops_buffer_proc_exit", "n_drops_scratch_map", "n_drops_page_faults", "n_drops_bug", "ebpf_enabled",
)

# Falco's buffer-drop categories by event type (what was lost in our queue).
CATEGORY = {
    "clone": "clone_fork", "clone3": "clone_fork", "fork": "clone_fork", "vfork": "clone_fork",
    "execve": "execve", "execveat": "execve", "connect": "connect",
    "open": "open", "openat": "open", "openat2": "open", "creat": "open", "open_by_handle_at": "open",
    "mkdir": "dir_file", "mkdirat": "dir_file", "rmdir": "dir_file", "unlink": "dir_file",
    "unlinkat": "dir_file", "rename": "dir_file", "renameat": "dir_file", "renameat2": "dir_file",
    "link": "dir_file", "linkat": "dir_file", "symlink": "dir_file", "symlinkat": "dir_file",
    "chmod": "dir_file", "fchmod": "dir_file", "fchmodat": "dir_file",
    "close": "close", "procexit": "proc",
}


class StageCounters:
    """Events seen and drops by reason for one stage; thread-safe increments."""

    def __init__(self, stage: str):
        self.stage = stage
        self._lock = threading.Lock()
        self.n_evts = 0
        self.totals: dict[str, int] = {}
        self.categories: dict[str, int] = {}  # queue drops by Falco category
        self._last_evts = 0
        self._last_totals: dict[str, int] = {}
        self._last_categories: dict[str, int] = {}

    def seen(self, n: int = 1) -> None:
        with self._lock:
            self.n_evts += n

    def drop(self, reason: str, n: int = 1, category: str | None = None) -> None:
        if n <= 0:
            return
        with self._lock:
            self.totals[reason] = self.totals.get(reason, 0) + n
            if category:
                self.categories[category] = self.categories.get(category, 0) + n

    @property
    def n_drops(self) -> int:
        return sum(self.totals.values())

    def interval(self) -> tuple[int, dict[str, int], dict[str, int], dict[str, int]]:
        """(events, drops by reason, totals, categories) since the previous call."""
        with self._lock:
            evts = self.n_evts - self._last_evts
            drops = {k: v - self._last_totals.get(k, 0) for k, v in self.totals.items()
                     if v - self._last_totals.get(k, 0)}
            cats = {k: v - self._last_categories.get(k, 0) for k, v in self.categories.items()
                    if v - self._last_categories.get(k, 0)}
            self._last_evts = self.n_evts
            self._last_totals = dict(self.totals)
            self._last_categories = dict(self.categories)
            return evts, drops, dict(self.totals), cats


@dataclass
class TokenBucket:
    """Falco's token bucket: `rate` tokens per second, at most `max_burst`, starts full."""

    rate: float
    max_burst: int
    tokens: float = -1.0
    last: float = field(default_factory=time.monotonic)

    def claim(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.tokens < 0:
            self.tokens = float(self.max_burst)
        self.tokens = min(float(self.max_burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class DropDecision:
    actions: tuple[str, ...]
    n_evts: int
    n_drops: int


class SyscallEventDrops:
    """`syscall_event_drops`: once per second, when drops/events exceed the threshold and the
    bucket grants a token, run all configured actions (ignore, log, alert, exit)."""

    def __init__(self, threshold: float = 0.1, actions: list[str] | tuple[str, ...] = ("log", "alert"),
                 rate: float = 0.03333, max_burst: int = 1, simulate: bool = False):
        self.threshold = 0.0 if simulate else threshold
        self.actions = tuple(a for a in actions if a != "ignore")
        self.simulate = simulate
        self.bucket = TokenBucket(rate, max_burst)
        self.occurrences = 0
        self.actions_taken = 0

    def check(self, n_evts: int, n_drops: int, now: float | None = None) -> DropDecision | None:
        if self.simulate:
            n_drops += 1
        if n_drops <= 0:
            return None
        ratio = n_drops / n_evts if n_evts > 0 else float("inf")
        if ratio <= self.threshold:
            return None
        self.occurrences += 1
        if not self.actions:
            return None
        if not self.bucket.claim(now):
            log.debug("syscall event drop: actions skipped, token bucket depleted")
            return None
        self.actions_taken += 1
        return DropDecision(self.actions, n_evts, n_drops)


def drop_alert_fields(n_evts: int, n_drops: int, buffer_total: int, categories: dict[str, int],
                      bug: int = 0) -> dict[str, str]:
    f = {k: "0" for k in DROP_ALERT_FIELDS}
    f["n_evts"] = str(n_evts)
    f["n_drops"] = str(n_drops)
    f["n_drops_buffer_total"] = str(buffer_total)
    other = 0
    for cat, n in categories.items():
        key = f"n_drops_buffer_{cat}_exit"
        if key in f:
            f[key] = str(int(f[key]) + n)
        else:
            other += n
    f["n_drops_buffer_other_interest_exit"] = str(other)
    f["n_drops_bug"] = str(bug)
    return f


def drop_alert(host: str, fields: dict[str, str], time_ns: int | None = None) -> dict[str, Any]:
    """The "Falco internal: syscall event drop" alert in the bus alert shape (Falco's internal
    alert: priority Debug, source internal, bare message as output, string fields; plus `id` and
    `seq` 0), built like the rules workers build theirs."""
    from tiercel.rules.internal import internal_alert

    time_ns = time.time_ns() if time_ns is None else time_ns
    msg = f"Falco internal: syscall event drop. {fields['n_drops']} system calls dropped in last second."
    rid = hashlib.sha1(f"{DROP_RULE}:ingest:{time_ns}".encode()).hexdigest()[:8]
    return internal_alert(DROP_RULE, msg, fields, host, f"{host}:0:{rid}", time_ns)


def report(counters: StageCounters, host: str, instance: str, interval_s: float) -> tuple[bus.DropReport, dict[str, int]]:
    evts, drops, totals, cats = counters.interval()
    return bus.DropReport(stage=counters.stage, host=host, instance=instance, time_ns=time.time_ns(),
                          interval_s=interval_s, n_evts=evts, drops=drops, totals=totals), cats
