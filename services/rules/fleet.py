"""The live rules workers, as their heartbeats describe them.

Every worker keeps this table from `tiercel.hb.rules.>`: control answers list which ruleset
revision each live worker runs, the output rate limit is shared among the live workers, and the
smallest live instance id leads the per-host sequence-gap accounting.
"""

from __future__ import annotations

import time
from typing import Any

from tiercel.common import bus

# A worker whose last heartbeat is older than this is gone (heartbeats come every second).
LIVE_S = 3.0


class Fleet:
    def __init__(self, self_instance: str = ""):
        self.self_instance = self_instance
        self.beats: dict[str, bus.Heartbeat] = {}

    def update(self, hb: bus.Heartbeat) -> None:
        if hb.state == "stopped":
            self.beats.pop(hb.instance, None)
        else:
            self.beats[hb.instance] = hb

    def live(self, now_ns: int | None = None, service: str = "rules") -> list[bus.Heartbeat]:
        now_ns = time.time_ns() if now_ns is None else now_ns
        for inst in [i for i, hb in self.beats.items() if now_ns - hb.time_ns > 10 * LIVE_S * 1e9]:
            del self.beats[inst]
        return sorted((hb for hb in self.beats.values()
                       if hb.service == service and now_ns - hb.time_ns <= LIVE_S * 1e9),
                      key=lambda h: h.instance)

    def count(self) -> int:
        n = len(self.live())
        return max(1, n if any(h.instance == self.self_instance for h in self.live()) else n + 1)

    def leader(self) -> str:
        names = [h.instance for h in self.live()]
        if self.self_instance:
            names.append(self.self_instance)
        return min(names) if names else ""

    def workers_json(self) -> list[dict[str, Any]]:
        now = time.time_ns()
        return [{"instance": h.instance, "host": h.host, "revision": h.revision,
                 "config_revision": int(h.counters.get("config_revision", 0)), "state": h.state,
                 "age_s": round((now - h.time_ns) / 1e9, 3)} for h in self.live(now)]
