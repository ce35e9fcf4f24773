"""The reader stage: YAML text -> rules file items handed to the collector.

Scalars stay text, as yaml-cpp gives them to Falco (`0755`, `yes`, `1.0` are strings); booleans and
integers are decoded only where the item's schema wants them, with yaml-cpp's spellings. Every
check of Falco's reader is here: item kinds by first key, required keys, value shapes, override
entries, exceptions shape, unknown keys and deprecated forms. Positions come from the YAML nodes'
marks (0-based line/column/offset, as yaml-cpp reports them).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tiercel.rules.loader import results as R
from tiercel.rules.loader.model import (
    EngineVersionInfo,
    Entry,
    ExceptionInfo,
    ListInfo,
    MacroInfo,
    PluginRequirement,
    PluginVersionInfo,
    RuleInfo,
    RuleUpdate,
    parse_priority,
)
from tiercel.rules.loader.results import Context, LoadError, LoadResult, Position

_NULL_TAG = "tag:yaml.org,2002:null"
_TRUE = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"}
_FALSE = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"}
_LIST_NAME_RE = re.compile(r"[^()\"'\s=,]+")
_MACRO_NAME_RE = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_SEMVER_RE = re.compile(r"\s*(\d+)\.(\d+)\.(\d+)")

WARNING_APPEND = ("'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') "
                  "under 'override' instead.")
WARNING_ENABLED = ("The standalone 'enabled' key usage is deprecated. The correct approach requires also a "
                   "'replace' entry under the 'override' key (i.e. 'enabled: replace').")
ERROR_OVERRIDE_APPEND = ("Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry "
                         "(e.g. 'condition: append') under 'override' instead.")

LIST_KEYS = frozenset({"list", "items", "append", "override"})
MACRO_KEYS = frozenset({"macro", "condition", "append", "override"})
RULE_KEYS = frozenset({
    "rule", "condition", "output", "desc", "priority", "source", "enabled", "tags", "exceptions",
    "warn_evttypes", "skip-if-unknown-filter", "capture", "capture_duration", "append", "override",
})
RULE_APPENDABLE = ("desc", "condition", "output", "tags", "exceptions")
RULE_REPLACEABLE = ("desc", "condition", "output", "priority", "tags", "exceptions", "enabled",
                    "warn_evttypes", "skip-if-unknown-filter", "capture", "capture_duration")


class Sink:
    """What the reader feeds: the collector's interface."""

    def define_engine_version(self, info: EngineVersionInfo) -> None: ...
    def define_plugin_versions(self, info: PluginVersionInfo) -> None: ...
    def define_list(self, info: ListInfo) -> None: ...
    def append_list(self, info: ListInfo, legacy: bool) -> None: ...
    def define_macro(self, info: MacroInfo) -> None: ...
    def append_macro(self, info: MacroInfo, legacy: bool) -> None: ...
    def define_rule(self, info: RuleInfo) -> None: ...
    def append_rule(self, info: RuleUpdate) -> None: ...
    def replace_rule(self, info: RuleUpdate) -> None: ...
    def enable_rule(self, name: str, enabled: bool, ctx: Context) -> None: ...


def parse_semver(text: str) -> tuple[int, int, int] | None:
    m = _SEMVER_RE.match(text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def version_str(v: tuple[int, int, int]) -> str:
    return ".".join(map(str, v))


class Reader:
    """Reads one rules file into a Sink. Stops at the first error (raised as LoadError)."""

    def __init__(self, name: str, content: str, sink: Sink, result: LoadResult,
                 engine_version: tuple[int, int, int]):
        self.name = name
        self.content = content
        self.sink = sink
        self.res = result
        self.engine_version = engine_version

    # --- helpers over nodes -------------------------------------------------------------------
    def pos(self, node: Node | None) -> Position:
        if node is None:
            return Position(self.name, -1, -1, -1)
        m = node.start_mark
        return Position(self.name, m.line, m.column, m.index)

    def ctx(self, parent: Context, node: Node | None, item_type: str, item_name: str = "") -> Context:
        return parent.child(item_type, item_name, self.pos(node))

    @staticmethod
    def get(node: MappingNode, key: str) -> Node | None:
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return v
        return None

    @staticmethod
    def is_null(node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag == _NULL_TAG

    def decode_scalar(self, item: MappingNode, key: str, ctx: Context, optional: bool = False) -> tuple[str, Node] | None:
        val = self.get(item, key)
        if val is None:
            if optional:
                return None
            raise LoadError("LOAD_ERR_YAML_VALIDATE", f"Item has no mapping for key '{key}'", ctx)
        if self.is_null(val):
            raise LoadError("LOAD_ERR_YAML_VALIDATE", f"Mapping for key '{key}' is empty", ctx)
        vctx = self.ctx(ctx, val, R.VALUE_FOR, key)
        if not isinstance(val, ScalarNode):
            raise LoadError("LOAD_ERR_YAML_VALIDATE", "Value is not a scalar value", vctx)
        if val.value == "":
            raise LoadError("LOAD_ERR_YAML_VALIDATE", "Value must be non-empty", vctx)
        return val.value, val

    def decode_str(self, item: MappingNode, key: str, ctx: Context, optional: bool = False) -> str | None:
        r = self.decode_scalar(item, key, ctx, optional)
        return None if r is None else r[0]

    def decode_bool(self, item: MappingNode, key: str, ctx: Context, optional: bool = False) -> bool | None:
        r = self.decode_scalar(item, key, ctx, optional)
        if r is None:
            return None
        text, node = r
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise LoadError("LOAD_ERR_YAML_VALIDATE", "Can't decode YAML scalar value",
                        self.ctx(ctx, node, R.VALUE_FOR, key))

    def decode_uint(self, item: MappingNode, key: str, ctx: Context, optional: bool = False) -> int | None:
        r = self.decode_scalar(item, key, ctx, optional)
        if r is None:
            return None
        v = _parse_uint(r[0])
        if v is None:
            raise LoadError("LOAD_ERR_YAML_VALIDATE", "Can't decode YAML scalar value",
                            self.ctx(ctx, r[1], R.VALUE_FOR, key))
        return v

    def decode_seq(self, item: MappingNode, key: str, ctx: Context, optional: bool = False) -> list[str] | None:
        val = self.get(item, key)
        if val is None:
            if optional:
                return None
            raise LoadError("LOAD_ERR_YAML_VALIDATE", f"Item has no mapping for key '{key}'", ctx)
        vctx = self.ctx(ctx, val, R.VALUE_FOR, key)
        if not isinstance(val, SequenceNode):
            raise LoadError("LOAD_ERR_YAML_VALIDATE", "Value is not a sequence", vctx)
        out = []
        for v in val.value:
            if not isinstance(v, ScalarNode) or self.is_null(v):
                raise LoadError("LOAD_ERR_YAML_VALIDATE", "sequence value is not scalar",
                                self.ctx(vctx, v, R.LIST_ITEM))
            out.append(v.value)
        return out

    def check_unknown_keys(self, item: MappingNode, allowed: frozenset[str], ctx: Context) -> None:
        for k, _v in item.value:
            key = k.value if isinstance(k, ScalarNode) else "<non-scalar key>"
            if key not in allowed:
                self.res.warn("LOAD_UNKNOWN_KEY", f"Unknown key '{key}'. The key will be ignored.", ctx)

    # --- documents ----------------------------------------------------------------------------
    def read(self) -> None:
        root = Context().child(R.RULES_CONTENT, "", Position(self.name, 0, 0, 0))
        docs = parse_documents(self.content, root)
        for doc in docs:
            if doc is None or self.is_null(doc):
                continue
            if isinstance(doc, MappingNode):
                raise LoadError("LOAD_ERR_YAML_VALIDATE", "Rules content is not yaml array of objects", root)
            if not isinstance(doc, SequenceNode):
                raise LoadError("LOAD_ERR_YAML_VALIDATE", "Rules content is not yaml", root)
            for item in doc.value:
                if self.is_null(item):
                    continue
                self.read_item(item, root)

    def read_item(self, item: Node, parent: Context) -> None:
        if not isinstance(item, MappingNode):
            raise LoadError("LOAD_ERR_YAML_VALIDATE",
                            "Unexpected element type. Each element should be a yaml associative array.",
                            self.ctx(parent, item, R.RULES_CONTENT_ITEM))
        for kind, fn in self._kinds:
            if self.get(item, kind) is not None:
                fn(self, item, parent)
                return
        self.res.warn("LOAD_UNKNOWN_ITEM", "Unknown top level item", self.ctx(parent, item, R.RULES_CONTENT_ITEM))

    # --- item kinds -----------------------------------------------------------------------------
    def read_engine_version(self, item: MappingNode, parent: Context) -> None:
        ctx = self.ctx(parent, item, R.REQUIRED_ENGINE_VERSION)
        self.check_unknown_keys(item, frozenset({"required_engine_version"}), ctx)
        text, node = self.decode_scalar(item, "required_engine_version", ctx)
        n = _parse_uint(text)
        if n is not None:
            version = (0, n, 0)
        else:
            version = parse_semver(text)
            if version is None:
                raise LoadError(
                    "LOAD_ERR_YAML_VALIDATE",
                    f"Can't decode YAML scalar value: unable to parse engine version '{text}' as a semver "
                    "string. Expected \"x.y.z\" semver format.",
                    self.ctx(ctx, node, R.VALUE_FOR, "required_engine_version"))
        ev = self.engine_version
        if version[0] != ev[0] or version > ev:
            raise LoadError("LOAD_ERR_VALIDATE", f"Rules require engine version {version_str(version)}, "
                            f"but engine version is {version_str(ev)}", ctx)
        self.sink.define_engine_version(EngineVersionInfo(version, ctx))

    def read_plugin_versions(self, item: MappingNode, parent: Context) -> None:
        reqs = self.get(item, "required_plugin_versions")
        ctx = self.ctx(parent, reqs, R.REQUIRED_PLUGIN_VERSIONS)
        self.check_unknown_keys(item, frozenset({"required_plugin_versions"}), ctx)
        if not isinstance(reqs, SequenceNode):
            raise LoadError("LOAD_ERR_YAML_VALIDATE", "Value of required_plugin_versions must be a sequence", ctx)
        for plugin in reqs.value:
            pctx = self.ctx(ctx, plugin, R.REQUIRED_PLUGIN_VERSIONS_ENTRY)
            if not isinstance(plugin, MappingNode):
                raise LoadError("LOAD_ERR_YAML_VALIDATE", "Unexpected element type. Each element should be a "
                                "yaml associative array.", pctx)
            first = self._requirement(plugin, pctx)
            alts = [first]
            anode = self.get(plugin, "alternatives")
            if anode is not None:
                actx = self.ctx(pctx, anode, R.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE)
                if not isinstance(anode, SequenceNode):
                    raise LoadError("LOAD_ERR_YAML_VALIDATE", "Value is not a sequence", actx)
                for alt in anode.value:
                    altctx = self.ctx(actx, alt, R.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE)
                    if not isinstance(alt, MappingNode):
                        raise LoadError("LOAD_ERR_YAML_VALIDATE", "Unexpected element type. Each element "
                                        "should be a yaml associative array.", altctx)
                    r = self._requirement(alt, altctx)
                    if any(a.name == r.name for a in alts):
                        raise LoadError("LOAD_ERR_YAML_VALIDATE",
                                        f"Defined multiple alternative version requirements for plugin '{r.name}'",
                                        altctx)
                    alts.append(r)
            self.sink.define_plugin_versions(PluginVersionInfo(alts, pctx))

    def _requirement(self, node: MappingNode, ctx: Context) -> PluginRequirement:
        name = self.decode_str(node, "name", ctx)
        version = self.decode_str(node, "version", ctx)
        if parse_semver(version) is None:
            raise LoadError("LOAD_ERR_YAML_VALIDATE", f"Invalid required version '{version}' for plugin '{name}'",
                            ctx)
        return PluginRequirement(name, version)

    def decode_overrides(self, item: MappingNode, appendable: tuple[str, ...], replaceable: tuple[str, ...],
                         ctx: Context) -> tuple[list[str], list[str]]:
        val = self.get(item, "override")
        if val is None:
            return [], []
        octx = self.ctx(ctx, item, R.OVERRIDE)
        if not isinstance(val, MappingNode):
            raise LoadError("LOAD_ERR_YAML_VALIDATE", "Value of 'override' must be a mapping", octx)
        app: list[str] = []
        rep: list[str] = []
        for k, v in val.value:
            key = k.value if isinstance(k, ScalarNode) else ""
            kctx = self.ctx(octx, k, R.OVERRIDE, key)
            op = v.value if isinstance(v, ScalarNode) else ""
            if op == "append":
                if key not in appendable:
                    raise LoadError("LOAD_ERR_YAML_VALIDATE",
                                    f"Key '{key}' cannot be appended to, use 'replace' instead", kctx)
                app.append(key)
            elif op == "replace":
                if key not in replaceable:
                    raise LoadError("LOAD_ERR_YAML_VALIDATE", f"Key '{key}' cannot be replaced", kctx)
                rep.append(key)
            else:
                raise LoadError("LOAD_ERR_YAML_VALIDATE", f"Invalid override operation for key '{key}': "
                                f"'{op}'. Allowed values are: append, replace", kctx)
        return app, rep

    def check_override_keys(self, item: MappingNode, keys: tuple[str, ...], app: list[str], rep: list[str],
                            ctx: Context) -> None:
        present = [k for k in keys if self.get(item, k) is not None]
        expected = set(present)
        for key in app:
            if key not in expected:
                raise LoadError("LOAD_ERR_YAML_VALIDATE",
                                f"An append override for '{key}' was specified but '{key}' is not defined", ctx)
            expected.discard(key)
        for key in rep:
            if key not in expected:
                raise LoadError("LOAD_ERR_YAML_VALIDATE",
                                f"A replace override for '{key}' was specified but '{key}' is not defined", ctx)
            expected.discard(key)
        if expected:
            key = next(k for k in present if k in expected)
            raise LoadError("LOAD_ERR_YAML_VALIDATE",
                            f"Unexpected key '{key}': no corresponding entry under 'override' is defined.", ctx)

    def read_list(self, item: MappingNode, parent: Context) -> None:
        name = self.decode_str(item, "list", self.ctx(parent, item, R.LIST))
        ctx = self.ctx(parent, item, R.LIST, name)
        self.check_unknown_keys(item, LIST_KEYS, ctx)
        append = bool(self.decode_bool(item, "append", ctx, optional=True))
        if append:
            self.res.warn("LOAD_DEPRECATED_ITEM", WARNING_APPEND, ctx)
        app, rep = self.decode_overrides(item, ("items",), ("items",), ctx)
        if append and (app or rep):
            raise LoadError("LOAD_ERR_YAML_VALIDATE", ERROR_OVERRIDE_APPEND, ctx)
        if app or rep:
            self.check_override_keys(item, ("items",), app, rep, ctx)
        items = self.decode_seq(item, "items", ctx)
        if not _LIST_NAME_RE.fullmatch(name):
            self.res.warn("LOAD_INVALID_LIST_NAME", "List has an invalid name. List names should match a regular "
                          "expression: [^()\"'\\s=,]+", ctx)
        info = ListInfo(name, items, ctx)
        if append or app:
            self.sink.append_list(info, legacy=append)
        else:
            self.sink.define_list(info)

    def read_macro(self, item: MappingNode, parent: Context) -> None:
        name = self.decode_str(item, "macro", self.ctx(parent, item, R.MACRO))
        ctx = self.ctx(parent, item, R.MACRO, name)
        self.check_unknown_keys(item, MACRO_KEYS, ctx)
        append = bool(self.decode_bool(item, "append", ctx, optional=True))
        if append:
            self.res.warn("LOAD_DEPRECATED_ITEM", WARNING_APPEND, ctx)
        app, rep = self.decode_overrides(item, ("condition",), ("condition",), ctx)
        if append and (app or rep):
            raise LoadError("LOAD_ERR_YAML_VALIDATE", ERROR_OVERRIDE_APPEND, ctx)
        if app or rep:
            self.check_override_keys(item, ("condition",), app, rep, ctx)
        cond_node = self.get(item, "condition")
        cond_ctx = self.ctx(ctx, cond_node, R.MACRO_CONDITION)
        cond = self.decode_str(item, "condition", ctx)
        if not _MACRO_NAME_RE.fullmatch(name):
            self.res.warn("LOAD_INVALID_MACRO_NAME", "Macro has an invalid name. Macro names should match a "
                          "regular expression: [a-zA-Z]+[a-zA-Z0-9_]*", ctx)
        info = MacroInfo(name, cond, ctx, cond_ctx)
        if append or app:
            self.sink.append_macro(info, legacy=append)
        else:
            self.sink.define_macro(info)

    def read_rule(self, item: MappingNode, parent: Context) -> None:
        name = self.decode_str(item, "rule", self.ctx(parent, item, R.RULE))
        ctx = self.ctx(parent, item, R.RULE, name)
        self.check_unknown_keys(item, RULE_KEYS, ctx)
        append = bool(self.decode_bool(item, "append", ctx, optional=True))
        if append:
            self.res.warn("LOAD_DEPRECATED_ITEM", WARNING_APPEND, ctx)
        app, rep = self.decode_overrides(item, RULE_APPENDABLE, RULE_REPLACEABLE, ctx)
        if append and (app or rep):
            raise LoadError("LOAD_ERR_YAML_VALIDATE", ERROR_OVERRIDE_APPEND, ctx)
        if app or rep:
            self.check_override_keys(item, RULE_REPLACEABLE, app, rep, ctx)
            source = self.decode_str(item, "source", ctx, optional=True)
            if app:
                upd = RuleUpdate(name, ctx, source=source)
                self._read_update(item, ctx, upd, app, exceptions_append=True)
                self.sink.append_rule(upd)
            if rep:
                upd = RuleUpdate(name, ctx, source=source)
                self._read_update(item, ctx, upd, rep, exceptions_append=False)
                self.sink.replace_rule(upd)
            return
        if append:
            # Legacy append: only condition and exceptions are read; the rest is ignored.
            upd = RuleUpdate(name, ctx, legacy=True)
            upd.source = self.decode_str(item, "source", ctx, optional=True)
            if self.get(item, "condition") is not None:
                upd.cond_ctx = self.ctx(ctx, self.get(item, "condition"), R.RULE_CONDITION)
                upd.cond = self.decode_str(item, "condition", ctx)
            if self.get(item, "exceptions") is not None:
                upd.exceptions = self.read_exceptions(item, ctx, append=True)
            self.sink.append_rule(upd)
            return
        if all(self.get(item, k) is None for k in ("condition", "output", "desc", "priority")):
            enabled = self.decode_bool(item, "enabled", ctx)
            self.res.warn("LOAD_DEPRECATED_ITEM", WARNING_ENABLED, ctx)
            self.sink.enable_rule(name, bool(enabled), ctx)
            return
        info = RuleInfo(name, ctx)
        info.cond_ctx = self.ctx(ctx, self.get(item, "condition"), R.RULE_CONDITION)
        info.cond = self.decode_str(item, "condition", ctx)
        info.output_ctx = self.ctx(ctx, self.get(item, "output"), R.RULE_OUTPUT)
        info.output = self.decode_str(item, "output", ctx).strip(" \t\n\r\f\v")
        info.desc = self.decode_str(item, "desc", ctx)
        info.priority = self._priority(item, ctx)
        info.source = self.decode_str(item, "source", ctx, optional=True) or "syscall"
        info.enabled = _default(self.decode_bool(item, "enabled", ctx, optional=True), True)
        info.warn_evttypes = _default(self.decode_bool(item, "warn_evttypes", ctx, optional=True), True)
        info.skip_if_unknown_filter = _default(
            self.decode_bool(item, "skip-if-unknown-filter", ctx, optional=True), False)
        info.capture = _default(self.decode_bool(item, "capture", ctx, optional=True), False)
        info.capture_duration = _default(self.decode_uint(item, "capture_duration", ctx, optional=True), 0)
        tags = self.decode_seq(item, "tags", ctx, optional=True)
        info.tags = set(tags or ())
        info.exceptions = self.read_exceptions(item, ctx, append=False) or []
        self.sink.define_rule(info)

    def _priority(self, item: MappingNode, ctx: Context) -> int:
        text = self.decode_str(item, "priority", ctx)
        p = parse_priority(text)
        if p is None:
            raise LoadError("LOAD_ERR_YAML_VALIDATE", "Invalid priority",
                            self.ctx(ctx, self.get(item, "priority"), R.RULE_PRIORITY))
        return p

    def _read_update(self, item: MappingNode, ctx: Context, upd: RuleUpdate, keys: list[str],
                     exceptions_append: bool) -> None:
        for key in keys:
            if key == "condition":
                upd.cond_ctx = self.ctx(ctx, self.get(item, "condition"), R.RULE_CONDITION)
                upd.cond = self.decode_str(item, "condition", ctx)
            elif key == "output":
                upd.output_ctx = self.ctx(ctx, self.get(item, "output"), R.RULE_OUTPUT)
                upd.output = self.decode_str(item, "output", ctx).strip(" \t\n\r\f\v")
            elif key == "desc":
                upd.desc = self.decode_str(item, "desc", ctx)
            elif key == "priority":
                upd.priority = self._priority(item, ctx)
            elif key == "tags":
                upd.tags = set(self.decode_seq(item, "tags", ctx) or ())
            elif key == "exceptions":
                upd.exceptions = self.read_exceptions(item, ctx, append=exceptions_append) or []
            elif key == "enabled":
                upd.enabled = self.decode_bool(item, "enabled", ctx)
            elif key == "warn_evttypes":
                upd.warn_evttypes = self.decode_bool(item, "warn_evttypes", ctx)
            elif key == "skip-if-unknown-filter":
                upd.skip_if_unknown_filter = self.decode_bool(item, "skip-if-unknown-filter", ctx)
            elif key == "capture":
                upd.capture = self.decode_bool(item, "capture", ctx)
            elif key == "capture_duration":
                upd.capture_duration = self.decode_uint(item, "capture_duration", ctx)

    # --- exceptions ---------------------------------------------------------------------------
    def read_exceptions(self, item: MappingNode, parent: Context, append: bool) -> list[ExceptionInfo] | None:
        exs = self.get(item, "exceptions")
        if exs is None or self.is_null(exs):
            return None
        exs_ctx = self.ctx(parent, exs, R.EXCEPTIONS)
        if not isinstance(exs, SequenceNode):
            raise LoadError("LOAD_ERR_YAML_VALIDATE", "Rule exceptions must be a sequence", exs_ctx)
        out: list[ExceptionInfo] = []
        names: set[str] = set()
        for ex in exs.value:
            tmp = self.ctx(exs_ctx, ex, R.EXCEPTION)
            if not isinstance(ex, MappingNode):
                raise LoadError("LOAD_ERR_YAML_VALIDATE", "Rule exception must be a mapping", tmp)
            name = self.decode_str(ex, "name", tmp)
            if name in names:
                self.res.warn("LOAD_EXCEPTION_NAME_NOT_UNIQUE",
                              f"Multiple definitions of exception '{name}' in the same rule", tmp)
            names.add(name)
            ex_ctx = self.ctx(parent, ex, R.EXCEPTION, name)
            info = ExceptionInfo(name, ex_ctx)
            fields = self.get(ex, "fields")
            if fields is not None or not append:
                info.fields = self.decode_entry(fields, "fields", ex_ctx)
            comps = self.get(ex, "comps")
            if comps is not None:
                info.comps = self.decode_entry(comps, "comps", ex_ctx)
            vals = self.get(ex, "values")
            if vals is not None:
                vals_ctx = self.ctx(ex_ctx, vals, R.EXCEPTION_VALUES)
                if not isinstance(vals, SequenceNode):
                    raise LoadError("LOAD_ERR_YAML_VALIDATE", "Rule exception values must be a sequence", vals_ctx)
                for v in vals.value:
                    vctx = self.ctx(vals_ctx, v, R.EXCEPTION_VALUE)
                    info.values.append(self.decode_entry(v, None, vctx))
            elif append:
                self.res.warn("LOAD_APPEND_NO_VALUES", "Overriding/appending exception with no values", ex_ctx)
            out.append(info)
        return out

    def decode_entry(self, node: Node | None, key: str | None, ctx: Context) -> Entry:
        if node is None:
            raise LoadError("LOAD_ERR_YAML_VALIDATE", f"Item has no mapping for key '{key}'", ctx)
        e = Entry(present=True)
        if isinstance(node, ScalarNode) and not self.is_null(node):
            if node.value == "":
                raise LoadError("LOAD_ERR_YAML_VALIDATE", "Value must be non-empty", ctx)
            e.item = node.value
        elif isinstance(node, SequenceNode):
            e.is_list = True
            for v in node.value:
                e.items.append(self.decode_entry(v, None, ctx))
        return e

    _kinds: list[tuple[str, Callable]] = []


Reader._kinds = [
    ("required_engine_version", Reader.read_engine_version),
    ("required_plugin_versions", Reader.read_plugin_versions),
    ("list", Reader.read_list),
    ("macro", Reader.read_macro),
    ("rule", Reader.read_rule),
]


def _default(v, d):
    return d if v is None else v


def _parse_uint(text: str) -> int | None:
    """yaml-cpp's unsigned decoding: decimal, 0x hex or 0o octal, nothing else."""
    s = text.strip()
    try:
        if re.fullmatch(r"\+?[0-9]+", s):
            v = int(s)
        elif re.fullmatch(r"0x[0-9a-fA-F]+", s):
            v = int(s, 16)
        elif re.fullmatch(r"0o[0-7]+", s):
            v = int(s[2:], 8)
        else:
            return None
    except ValueError:
        return None
    return v if v <= 0xFFFFFFFF else None


# PyYAML problems -> yaml-cpp's wording, so messages read like Falco's.
_YAMLCPP_MESSAGES = (
    ("mapping values are not allowed", "illegal map value"),
    ("could not find expected ':'", "illegal map value"),
    ("expected ',' or ']'", "end of sequence flow not found"),
    ("expected ',' or '}'", "end of map flow not found"),
    ("expected <block end>, but found '-'", "end of map not found"),
    ("expected <block end>", "end of sequence not found"),
    ("found unexpected end of stream", "unexpected end of stream"),
    ("found undefined alias", "the referenced anchor is not defined"),
    ("found character '\\t' that cannot start any token", "illegal tab when looking for indentation"),
    ("found duplicate anchor", "duplicate anchor"),
)


def parse_documents(content: str, root: Context) -> list[Node | None]:
    """Every YAML document of the content as a node tree (parse errors are LOAD_ERR_YAML_PARSE,
    reported before any item is read, as yaml-cpp parses the whole stream first)."""
    try:
        loader = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
        return list(yaml.compose_all(content, Loader=loader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or e.context or "invalid YAML").strip()
        msg = problem
        for py, cpp in _YAMLCPP_MESSAGES:
            if problem.startswith(py):
                msg = cpp
                break
        where = f"error at line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise LoadError("LOAD_ERR_YAML_PARSE", f"yaml-cpp: {where}{msg}", root) from None
    except yaml.YAMLError as e:
        raise LoadError("LOAD_ERR_YAML_PARSE", f"yaml-cpp: {e}", root) from None
    except RecursionError:
        raise LoadError("LOAD_ERR_YAML_PARSE", "yaml-cpp: error: the document is nested too deeply", root) from None
