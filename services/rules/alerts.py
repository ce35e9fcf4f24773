"""Alert assembly: Falco's text line and JSON alert for a rule match (spec §3.3-3.4).

Text: `<evt.time>: <Priority> <output>`, the time local `HH:MM:SS.nnnnnnnnn` or, with
`time_format_iso_8601`, UTC `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000`. JSON: keys sorted, compact,
`time` in UTC with nanoseconds and `Z`, `output_fields` typed with `null` for missing values and
the prefix time field as integer nanoseconds.
"""

from __future__ import annotations

import json
import os
import time as _time
from collections.abc import Mapping
from typing import Any

from tiercel.rules.condition.output import evt_time, evt_time_iso8601

PRIORITY_NAMES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")


def json_time(ts: int) -> str:
    """The JSON alert's `time`: UTC, nanoseconds, `Z`."""
    sec, ns = divmod(ts, 1_000_000_000)
    t = _time.gmtime(sec)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ns:09d}Z"


def default_hostname() -> str:
    import socket

    return os.environ.get("FALCO_HOSTNAME") or socket.gethostname()


class AlertFormatter:
    """Formats matches as Falco prints them, by the output options of the configuration."""

    def __init__(self, options: Mapping[str, Any] | None = None, hostname: str | None = None):
        o = dict(options or {})
        self.json_output = bool(o.get("json_output", False))
        self.include_output = bool(o.get("json_include_output_property", True))
        self.include_tags = bool(o.get("json_include_tags_property", True))
        self.include_message = bool(o.get("json_include_message_property", False))
        self.include_output_fields = bool(o.get("json_include_output_fields_property", True))
        self.iso8601 = bool(o.get("time_format_iso_8601", False))
        self.hostname = hostname or o.get("hostname") or default_hostname()

    def prefix(self, ts: int, priority: int) -> str:
        t = evt_time_iso8601(ts) if self.iso8601 else evt_time(ts)
        return f"{t}: {PRIORITY_NAMES[priority]}"

    def text(self, match: Any) -> str:
        """Falco's text line for a match (`match.rule`, `match.evt`, `match.message`)."""
        return self.prefix(match.evt.ts, match.rule.priority) + " " + match.message

    def alert(self, match: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Falco's JSON alert as a dict (keys as Falco sets them; `extra` adds Tiercel keys)."""
        rule = match.rule
        ts = match.evt.ts
        out: dict[str, Any] = {"hostname": self.hostname}
        message = match.message
        if self.include_output:
            out["output"] = self.prefix(ts, rule.priority) + " " + message
        if self.include_message:
            out["message"] = message
        if self.include_output_fields:
            fields: dict[str, Any] = {("evt.time.iso8601" if self.iso8601 else "evt.time"): ts}
            fields.update(match.fields)
            out["output_fields"] = fields
        out["priority"] = PRIORITY_NAMES[rule.priority]
        out["rule"] = rule.name
        out["source"] = rule.source
        if self.include_tags:
            out["tags"] = list(rule.tags)
        out["time"] = json_time(ts)
        if extra:
            out.update(extra)
        return out

    def json(self, match: Any, extra: Mapping[str, Any] | None = None) -> str:
        return dumps(self.alert(match, extra))

    def line(self, match: Any) -> str:
        """What `tiercel replay` prints for a match: the JSON object or the text line."""
        return self.json(match) if self.json_output else self.text(match)


def dumps(obj: Any) -> str:
    """nlohmann::json::dump(): keys sorted, no spaces, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(o: Any) -> Any:
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    return str(o)
