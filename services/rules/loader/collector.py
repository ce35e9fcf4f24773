"""The collector stage: every list, macro and rule defined so far, across files, with Falco's
define/append/replace semantics.

Each define, append or replace takes the next sequence id. An item's `index` is the id of its
first definition (a redefinition keeps it, and keeps the item's place); its `visibility` is the id
of its latest change. The compiler uses both to decide which lists and macros an item can see.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from tiercel.rules.loader.model import (
    EngineVersionInfo,
    ExceptionInfo,
    ListInfo,
    MacroInfo,
    PluginVersionInfo,
    RuleInfo,
    RuleUpdate,
)
from tiercel.rules.loader.reader import Sink
from tiercel.rules.loader.results import Context, LoadError, LoadResult

ERROR_NO_PREVIOUS_LIST = "List uses 'append' or 'override.items: append' but no list by that name already exists"
ERROR_NO_PREVIOUS_LIST_LEGACY = "List has 'append' key but no list by that name already exists"
ERROR_NO_PREVIOUS_MACRO = ("Macro uses 'append' or 'override.condition: append' but no macro by that name "
                           "already exists")
ERROR_NO_PREVIOUS_MACRO_LEGACY = "Macro has 'append' key but no macro by that name already exists"
ERROR_NO_PREVIOUS_RULE_APPEND = ("Rule uses 'append' or 'override.<key>: append' but no rule by that name "
                                 "already exists")
ERROR_NO_PREVIOUS_RULE_APPEND_LEGACY = "Rule has 'append' key but no rule by that name already exists"
ERROR_NO_PREVIOUS_RULE_REPLACE = ("An 'override.<key>: replace' to a rule was requested but no rule by that "
                                  "name already exists")

# Operators an exception comp may use (Falco's is_operator_defined), and the string operators
# that take a oneof/anyof/allof modifier (Falco 0.44).
EXCEPTION_OPERATORS = frozenset({
    "=", "==", "!=", "<", "<=", ">", ">=", "contains", "icontains", "bcontains", "startswith", "bstartswith",
    "endswith", "glob", "iglob", "regex", "in", "intersects", "pmatch", "exists",
})
STRING_OPERATORS = frozenset({
    "=", "==", "!=", "contains", "icontains", "bcontains", "startswith", "bstartswith", "endswith", "glob",
    "iglob", "regex",
})
MODIFIERS = frozenset({"oneof", "anyof", "allof"})
LIST_OPERATORS = frozenset({"in", "intersects", "pmatch"})


def split_comp(comp: str) -> tuple[str, str | None] | None:
    """`startswith oneof` -> ("startswith", "oneof"); a plain operator -> (op, None); else None."""
    c = comp.strip(" \t\n\r\f\v")
    if c in EXCEPTION_OPERATORS:
        return c, None
    parts = c.split()
    if len(parts) == 2 and parts[0] in STRING_OPERATORS and parts[1] in MODIFIERS:
        return parts[0], parts[1]
    return None


class Collector(Sink):
    """Shared by every file of one load sequence (Falco's rule_loader::collector)."""

    def __init__(self, sources: set[str], field_ok: Callable[[str, str], bool]):
        self.sources = sources
        self.field_ok = field_ok  # (source, field expression) -> valid left-hand side?
        self.lists: dict[str, ListInfo] = {}
        self.macros: dict[str, MacroInfo] = {}
        self.rules: dict[str, RuleInfo] = {}
        self.engine_version: EngineVersionInfo | None = None
        self.plugin_versions: list[PluginVersionInfo] = []
        self.seq = 0
        self.res: LoadResult | None = None  # the result of the file being read (for warnings)

    def snapshot(self) -> Collector:
        """A deep copy, so a file that fails can be thrown away without touching this state."""
        other = copy.copy(self)
        other.lists = copy.deepcopy(self.lists)
        other.macros = copy.deepcopy(self.macros)
        other.rules = copy.deepcopy(self.rules)
        other.plugin_versions = list(self.plugin_versions)
        return other

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _define(self, table: dict, info) -> None:
        prev = table.get(info.name)
        sid = self._next()
        if prev is not None:
            info.index = prev.index
        else:
            info.index = sid
        info.visibility = sid
        table[info.name] = info  # a redefinition keeps the dict position (insertion order)

    # --- required_* ---------------------------------------------------------------------------
    def define_engine_version(self, info: EngineVersionInfo) -> None:
        if self.engine_version is None or self.engine_version.version < info.version:
            self.engine_version = info

    def define_plugin_versions(self, info: PluginVersionInfo) -> None:
        self.plugin_versions.append(info)

    # --- lists and macros ---------------------------------------------------------------------
    def define_list(self, info: ListInfo) -> None:
        self._define(self.lists, info)

    def append_list(self, info: ListInfo, legacy: bool) -> None:
        prev = self.lists.get(info.name)
        if prev is None:
            raise LoadError("LOAD_ERR_VALIDATE", ERROR_NO_PREVIOUS_LIST_LEGACY if legacy else ERROR_NO_PREVIOUS_LIST,
                            info.ctx)
        prev.items = prev.items + info.items
        prev.visibility = self._next()

    def define_macro(self, info: MacroInfo) -> None:
        self._define(self.macros, info)

    def append_macro(self, info: MacroInfo, legacy: bool) -> None:
        prev = self.macros.get(info.name)
        if prev is None:
            raise LoadError("LOAD_ERR_VALIDATE",
                            ERROR_NO_PREVIOUS_MACRO_LEGACY if legacy else ERROR_NO_PREVIOUS_MACRO, info.ctx)
        prev.cond = prev.cond + " " + info.cond
        prev.visibility = self._next()

    # --- rules --------------------------------------------------------------------------------
    def define_rule(self, info: RuleInfo) -> None:
        prev = self.rules.get(info.name)
        if prev is not None and prev.source != info.source:
            raise LoadError("LOAD_ERR_VALIDATE", "Rule has been re-defined with a different source", info.ctx)
        known = info.source in self.sources
        if not known:
            info.unknown_source = True
            if self.res is not None:
                self.res.warn("LOAD_UNKNOWN_SOURCE", f"Unknown source {info.source}, skipping", info.ctx)
        for ex in info.exceptions:
            if not ex.fields.is_valid:
                raise LoadError("LOAD_ERR_VALIDATE",
                                "Rule exception item must have fields property with a list of fields", ex.ctx)
            self.validate_exception(info.source if known else None, ex)
        self._define(self.rules, info)

    def _prev_rule(self, upd: RuleUpdate, missing: str) -> RuleInfo:
        prev = self.rules.get(upd.name)
        if prev is None:
            raise LoadError("LOAD_ERR_VALIDATE", missing, upd.ctx)
        if upd.source is not None and upd.source != prev.source:
            raise LoadError("LOAD_ERR_VALIDATE", "Rule has been re-defined with a different source", upd.ctx)
        return prev

    def append_rule(self, upd: RuleUpdate) -> None:
        prev = self._prev_rule(upd, ERROR_NO_PREVIOUS_RULE_APPEND_LEGACY if upd.legacy
                               else ERROR_NO_PREVIOUS_RULE_APPEND)
        if not upd.has_any_value():
            raise LoadError("LOAD_ERR_VALIDATE", "Appended rule must have exceptions or condition property", upd.ctx)
        source = None if prev.unknown_source else prev.source
        if upd.cond:
            prev.cond = prev.cond + " " + upd.cond
        if upd.output:
            prev.output = prev.output + " " + upd.output
        if upd.desc:
            prev.desc = prev.desc + " " + upd.desc
        if upd.tags is not None:
            prev.tags = prev.tags | upd.tags
        if upd.exceptions is not None:
            for ex in upd.exceptions:
                old = next((e for e in prev.exceptions if e.name == ex.name), None)
                if old is None:
                    if not ex.fields.is_valid:
                        raise LoadError("LOAD_ERR_VALIDATE",
                                        "Rule exception must have fields property with a list of fields", ex.ctx)
                    if not ex.values:
                        raise LoadError("LOAD_ERR_VALIDATE",
                                        "Rule exception must have values property with a list of values", ex.ctx)
                    self.validate_exception(source, ex)
                    prev.exceptions.append(ex)
                else:
                    if ex.fields.is_valid:
                        raise LoadError("LOAD_ERR_VALIDATE",
                                        "Can not append exception fields to existing exception, only values", ex.ctx)
                    if ex.comps.is_valid:
                        raise LoadError("LOAD_ERR_VALIDATE",
                                        "Can not append exception comps to existing exception, only values", ex.ctx)
                    old.values = old.values + ex.values
        prev.visibility = self._next()

    def replace_rule(self, upd: RuleUpdate) -> None:
        prev = self._prev_rule(upd, ERROR_NO_PREVIOUS_RULE_REPLACE)
        if not upd.has_any_value():
            raise LoadError("LOAD_ERR_VALIDATE", "The rule must have at least one property", upd.ctx)
        source = None if prev.unknown_source else prev.source
        if upd.cond:
            prev.cond = upd.cond
            prev.cond_ctx = upd.cond_ctx
        if upd.output:
            prev.output = upd.output
            prev.output_ctx = upd.output_ctx
        if upd.desc:
            prev.desc = upd.desc
        if upd.tags is not None:
            prev.tags = set(upd.tags)
        if upd.exceptions is not None:
            for ex in upd.exceptions:
                if not ex.fields.is_valid:
                    raise LoadError("LOAD_ERR_VALIDATE",
                                    "Rule exception item must have fields property with a list of fields", ex.ctx)
                self.validate_exception(source, ex)
            prev.exceptions = list(upd.exceptions)
        for attr in ("priority", "enabled", "warn_evttypes", "skip_if_unknown_filter", "capture",
                     "capture_duration"):
            v = getattr(upd, attr)
            if v is not None:
                setattr(prev, attr, v)
        prev.visibility = self._next()

    def enable_rule(self, name: str, enabled: bool, ctx: Context) -> None:
        prev = self.rules.get(name)
        if prev is None:
            raise LoadError("LOAD_ERR_VALIDATE", "Rule has 'enabled' key but no rule by that name already exists",
                            ctx)
        prev.enabled = enabled

    # --- exceptions ---------------------------------------------------------------------------
    def validate_exception(self, source: str | None, ex: ExceptionInfo) -> None:
        """Falco's validate_exception_info: default comps, shapes, operators and fields."""
        if ex.fields.is_list:
            if not ex.comps.is_valid:
                ex.comps.is_list = True
                ex.comps.items = [type(ex.fields)(item="=") for _ in ex.fields.items]
            if not ex.comps.is_list or len(ex.fields.items) != len(ex.comps.items):
                raise LoadError("LOAD_ERR_VALIDATE", "Fields and comps lists must have equal length", ex.ctx)
            for c in ex.comps.items:
                c.item = c.item.strip(" \t\n\r\f\v")
                if c.is_list or split_comp(c.item) is None:
                    raise LoadError("LOAD_ERR_VALIDATE", f"'{c.item}' is not a supported comparison operator",
                                    ex.ctx)
            if source is not None:
                for f in ex.fields.items:
                    if f.is_list or not self.field_ok(source, f.item):
                        raise LoadError("LOAD_ERR_VALIDATE", f"'{f.item}' is not a supported filter field", ex.ctx)
        else:
            if not ex.comps.is_valid:
                ex.comps.is_list = False
                ex.comps.item = "in"
            if ex.comps.is_list:
                raise LoadError("LOAD_ERR_VALIDATE", "Fields and comps must both be strings", ex.ctx)
            ex.comps.item = ex.comps.item.strip(" \t\n\r\f\v")
            sc = split_comp(ex.comps.item)
            if sc is None or (sc[1] is None and sc[0] not in LIST_OPERATORS):
                raise LoadError("LOAD_ERR_VALIDATE",
                                "When fields is a single value, comps must be one of (in, pmatch, intersects)",
                                ex.ctx)
            if source is not None and not self.field_ok(source, ex.fields.item):
                raise LoadError("LOAD_ERR_VALIDATE", f"'{ex.fields.item}' is not a supported filter field", ex.ctx)
