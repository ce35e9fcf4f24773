"""Falco's event table (libs' `g_event_info` and its companion tables), as run-time lookups.

The facts live in `eventtable.json` beside this module, generated from the reference table by
`tools/gen_event_table.py`; this module only indexes them. Event codes are libs' PPME_* values:
even codes are enter events, odd codes exit events, and each version of an event has its own code.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

_DATA: dict[str, Any] = json.loads((pathlib.Path(__file__).parent / "eventtable.json").read_text())

SOURCE_COMMIT: str = _DATA["source"]["commit"]
EVENT_MAX: int = _DATA["event_max"]

EC: dict[str, int] = _DATA["enums"]["ppm_event_category"]
EF: dict[str, int] = _DATA["enums"]["ppm_event_flags"]
PT: dict[str, int] = _DATA["enums"]["ppm_param_type"]
PF: dict[str, int] = _DATA["enums"]["ppm_print_format"]
BLOCK_TYPES: dict[str, int] = _DATA["block_types"]

EF_CREATES_FD = EF["EF_CREATES_FD"]
EF_DESTROYS_FD = EF["EF_DESTROYS_FD"]
EF_USES_FD = EF["EF_USES_FD"]
EF_READS_FROM_FD = EF["EF_READS_FROM_FD"]
EF_WRITES_TO_FD = EF["EF_WRITES_TO_FD"]
EF_MODIFIES_STATE = EF["EF_MODIFIES_STATE"]
EF_UNUSED = EF["EF_UNUSED"]
EF_WAITS = EF["EF_WAITS"]
EF_OLD_VERSION = EF["EF_OLD_VERSION"]
EF_LARGE_PAYLOAD = EF["EF_LARGE_PAYLOAD"]

EC_SYSCALL = EC["EC_SYSCALL"]
EC_TRACEPOINT = EC["EC_TRACEPOINT"]
EC_PLUGIN = EC["EC_PLUGIN"]
EC_METAEVENT = EC["EC_METAEVENT"]
# The low bits of a category value hold the kind of event (file, net, io...), the high bits its source.
EC_KIND_MASK = EC_SYSCALL - 1

# The category names sysdig prints for `evt.category` (kind bits only).
CATEGORY_NAMES: dict[int, str] = {
    EC["EC_UNKNOWN"]: "unknown", EC["EC_OTHER"]: "other", EC["EC_FILE"]: "file", EC["EC_NET"]: "net",
    EC["EC_IPC"]: "IPC", EC["EC_MEMORY"]: "memory", EC["EC_PROCESS"]: "process", EC["EC_SLEEP"]: "sleep",
    EC["EC_SYSTEM"]: "system", EC["EC_SIGNAL"]: "signal", EC["EC_USER"]: "user", EC["EC_TIME"]: "time",
    EC["EC_PROCESSING"]: "processing", EC["EC_IO_READ"]: "io-read", EC["EC_IO_WRITE"]: "io-write",
    EC["EC_IO_OTHER"]: "io-other", EC["EC_WAIT"]: "wait", EC["EC_SCHEDULER"]: "scheduler",
    EC["EC_INTERNAL"]: "internal",
}


class ParamInfo:
    """One parameter of an event's schema."""

    __slots__ = ("name", "type", "ptype", "fmt", "table", "dyn", "dirfd")

    def __init__(self, row: list):
        self.name: str = row[0]
        self.type: str = row[1]        # "PT_FD", ...
        self.ptype: int = PT[row[1]]
        self.fmt: str = row[2]         # "PF_DEC", ...
        extra = row[3] if len(row) > 3 else {}
        self.table: str | None = extra.get("table")  # flags table name
        self.dyn: str | None = extra.get("dyn")      # dynamic param table name (PT_DYN)
        self.dirfd: int | None = extra.get("dirfd")  # index of the dirfd param (PT_FSRELPATH)

    def __repr__(self) -> str:
        return f"ParamInfo({self.name!r}, {self.type})"


class EventInfo:
    """One entry of the event table."""

    __slots__ = ("code", "enum", "name", "dir", "category", "flags", "params", "nparams", "paired",
                 "hist_nparams", "fd_param", "large_payload", "unused", "param_index")

    def __init__(self, d: dict):
        self.code: int = d["code"]
        self.enum: str = d["enum"]
        self.name: str = d["name"]
        self.dir: str = d["dir"]                  # ">" enter, "<" exit, "" unused placeholder
        self.category: int = d["category"]        # OR of EC_* values
        self.flags: int = d["flags"]              # OR of EF_* values
        self.params: tuple[ParamInfo, ...] = tuple(ParamInfo(p) for p in d["params"])
        self.nparams = len(self.params)
        self.paired: int | None = d.get("paired")
        self.hist_nparams: tuple[int, ...] = tuple(d.get("hist_nparams", ()))
        self.fd_param: int | None = d.get("fd_param")
        self.large_payload: bool = d.get("large", False)
        self.unused: bool = bool(self.flags & EF_UNUSED)
        self.param_index: dict[str, int] = {}
        for i, p in enumerate(self.params):
            self.param_index.setdefault(p.name, i)

    @property
    def category_name(self) -> str:
        return CATEGORY_NAMES.get(self.category & EC_KIND_MASK, "unknown")

    def __repr__(self) -> str:
        return f"EventInfo({self.code}, {self.name!r}, {self.dir!r})"


EVENTS: tuple[EventInfo, ...] = tuple(EventInfo(e) for e in _DATA["events"])
PPME: dict[str, int] = {e.enum: e.code for e in EVENTS}

FLAGS_TABLES: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {
    k: (v["kind"], tuple((n, val) for n, val in v["values"])) for k, v in _DATA["flags_tables"].items()}
DYN_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    k: tuple((t, f) for t, f in v) for k, v in _DATA["dynamic_param_tables"].items()}
PARAM_TYPES: dict[str, tuple[int, str, int | None, str | None]] = {
    k: tuple(v) for k, v in _DATA["param_types"].items()}  # type: ignore[misc]
SYSCALL_IDS: dict[int, str] = {int(k): v for k, v in _DATA["syscall_ids"].items()}
ERRNO_NAMES: dict[int, str] = {int(k): v for k, v in _DATA["errno_names"].items()}
SIGNAL_NAMES: dict[int, str] = {int(k): v for k, v in _DATA["signal_names"].items()}

# Codes the product refers to by name.
PPME_GENERIC_E = PPME["PPME_GENERIC_E"]
PPME_GENERIC_X = PPME["PPME_GENERIC_X"]
PPME_PROCEXIT_E = PPME["PPME_PROCEXIT_E"]
PPME_PROCEXIT_1_E = PPME["PPME_PROCEXIT_1_E"]
PPME_PROCINFO_E = PPME["PPME_PROCINFO_E"]
PPME_CONTAINER_E = PPME["PPME_CONTAINER_E"]
PPME_CONTAINER_JSON_E = PPME["PPME_CONTAINER_JSON_E"]
PPME_CONTAINER_JSON_2_E = PPME["PPME_CONTAINER_JSON_2_E"]
PPME_PLUGINEVENT_E = PPME["PPME_PLUGINEVENT_E"]
PPME_ASYNCEVENT_E = PPME["PPME_ASYNCEVENT_E"]
PPME_SCHEDSWITCH_6_E = PPME["PPME_SCHEDSWITCH_6_E"]
PPME_DROP_E = PPME["PPME_DROP_E"]
PPME_DROP_X = PPME["PPME_DROP_X"]


def info(code: int) -> EventInfo | None:
    """The table entry of an event code, None for codes this table does not know."""
    return EVENTS[code] if 0 <= code < len(EVENTS) else None


_BY_NAME: dict[str, set[int]] = {}
for _e in EVENTS:
    if not _e.unused:
        _BY_NAME.setdefault(_e.name, set()).add(_e.code)
_GENERIC = frozenset({PPME_GENERIC_E, PPME_GENERIC_X})
_CODES: dict[str, frozenset[int]] = {k: frozenset(v) for k, v in _BY_NAME.items() if k != "syscall"}
for _sc in SYSCALL_IDS.values():
    if _sc != "unknown":
        _CODES[_sc] = _CODES.get(_sc, frozenset()) | _GENERIC
_CODES["syscall"] = frozenset(_BY_NAME.get("syscall", ()))


def codes(name: str) -> frozenset[int]:
    """Every event code (both directions, every version) that `evt.type = name` matches.

    A syscall without a dedicated event also matches the generic codes (its events are recorded
    as `syscall` with its PPM_SC id), so `codes("mprotect")` includes 0 and 1."""
    return _CODES.get(name, frozenset())


def event_type_names() -> frozenset[str]:
    """Every name `evt.type` can take: event names and the syscall names of generic events."""
    return frozenset(_CODES)


def syscall_name(ppm_sc: int) -> str:
    return SYSCALL_IDS.get(ppm_sc, "<unknown>") if ppm_sc else "<unknown>"


def errno_name(err: int) -> str | None:
    """The symbolic name of a positive errno number (`2` -> `ENOENT`)."""
    return ERRNO_NAMES.get(err)


def signal_name(sig: int) -> str | None:
    return SIGNAL_NAMES.get(sig)


def flags_table(name: str) -> tuple[tuple[str, int], ...]:
    return FLAGS_TABLES[name][1]
