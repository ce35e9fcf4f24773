"""What the reader hands the collector: the items of a rules file, decoded and checked, with their
contexts. Values are kept as text where Falco keeps text (list items, conditions, outputs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tiercel.rules.loader.results import Context

# Falco's priorities, most severe first (falco_common::priority_type order).
PRIORITY_NAMES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
_PRIORITY_BY_TEXT = {n.lower(): i for i, n in enumerate(PRIORITY_NAMES)}
_PRIORITY_BY_TEXT["info"] = 6


def parse_priority(text: str) -> int | None:
    """Falco's parse_priority: case-insensitive long names, plus `info`."""
    return _PRIORITY_BY_TEXT.get(text.strip().lower()) if isinstance(text, str) else None


@dataclass
class Entry:
    """An exception fields/comps/values entry: a scalar or a (nested) list of entries."""

    is_list: bool = False
    item: str = ""
    items: list[Entry] = field(default_factory=list)
    present: bool = False  # the key was given at all

    @property
    def is_valid(self) -> bool:
        return (self.is_list and bool(self.items)) or (not self.is_list and bool(self.item))


@dataclass
class ExceptionInfo:
    name: str
    ctx: Context
    fields: Entry = field(default_factory=Entry)
    comps: Entry = field(default_factory=Entry)
    values: list[Entry] = field(default_factory=list)


@dataclass
class EngineVersionInfo:
    version: tuple[int, int, int]
    ctx: Context


@dataclass
class PluginRequirement:
    name: str
    version: str


@dataclass
class PluginVersionInfo:
    alternatives: list[PluginRequirement]
    ctx: Context


@dataclass
class ListInfo:
    name: str
    items: list[str]
    ctx: Context
    index: int = 0
    visibility: int = 0
    used: bool = False


@dataclass
class MacroInfo:
    name: str
    cond: str
    ctx: Context
    cond_ctx: Context
    index: int = 0
    visibility: int = 0
    used: bool = False


@dataclass
class RuleInfo:
    name: str
    ctx: Context
    cond: str = ""
    cond_ctx: Context | None = None
    output: str = ""
    output_ctx: Context | None = None
    desc: str = ""
    priority: int = 7
    source: str = "syscall"
    enabled: bool = True
    tags: set[str] = field(default_factory=set)
    exceptions: list[ExceptionInfo] = field(default_factory=list)
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    capture: bool = False
    capture_duration: int = 0
    unknown_source: bool = False
    index: int = 0
    visibility: int = 0


@dataclass
class RuleUpdate:
    """An append (`append: true` / `override: {k: append}`) or a selective replace of a rule.
    None means "not given"."""

    name: str
    ctx: Context
    legacy: bool = False
    cond: str | None = None
    cond_ctx: Context | None = None
    output: str | None = None
    output_ctx: Context | None = None
    desc: str | None = None
    priority: int | None = None
    source: str | None = None
    enabled: bool | None = None
    tags: set[str] | None = None
    exceptions: list[ExceptionInfo] | None = None
    warn_evttypes: bool | None = None
    skip_if_unknown_filter: bool | None = None
    capture: bool | None = None
    capture_duration: int | None = None

    def has_any_value(self) -> bool:
        return any(v is not None for v in (
            self.cond, self.output, self.desc, self.priority, self.enabled, self.tags, self.exceptions,
            self.warn_evttypes, self.skip_if_unknown_filter, self.capture, self.capture_duration))
