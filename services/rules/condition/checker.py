"""Type checking: an expanded condition tree against a source's field catalog (spec §2.3-2.8).

    checked = check(tree, "syscall")     # CompileError; checked.pred (ir), checked.warnings

Each check is resolved against the catalog (unknown field: "filter_check called with nonexistent
field X"), its operator checked against the field type (§2.3), its right-hand side parsed for the
type (§2.8: decimal-only integers with C wrap-around, `true`/`false`, IPs and CIDRs, port service
names, hex for `bcontains`/`bstartswith`, regexes compiled, `evt.type` names checked), `val()`
and transformers checked (§2.6). Errors are `CompileError`s with Falco's message and the position
of the check; `.is_unknown` marks the class skip-if-unknown-filter downgrades.

Warnings (`Warning` tuples with the load-result code) are the compiler's (§2.13):
`LOAD_COMPILE_CONDITION` (a regex with no special characters in the middle; a constant spelled
like a field or like a transformer call), `LOAD_UNSAFE_NA_CHECK` (`ka.*`/`jevt.*` compared with
`<NA>`), `LOAD_DEPRECATED_ITEM` (a deprecated field; `extra["deprecated_field"]`).
"""

from __future__ import annotations

import re
import socket
from typing import Any, NamedTuple

from tiercel.rules.condition import evttypes, ir
from tiercel.rules.condition import runtime as rt
from tiercel.rules.condition.errors import CompileError, MacroError, Position
from tiercel.rules.condition.nodes import (
    AndExpr,
    BinaryCheck,
    FieldExpr,
    Identifier,
    ListValue,
    Node,
    NotExpr,
    OrExpr,
    TransformerExpr,
    TransformerList,
    UnaryCheck,
    Value,
)
from tiercel.rules.fields import catalog
from tiercel.rules.fields.catalog import BOOL, BYTES, IPADDR, IPNET, NUMERIC, STRING, Field

# §2.3, flt_is_comparable
_NUM_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists"})
_BOOL_OPS = frozenset({"=", "!=", "in", "intersects", "exists"})
_STR_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "contains", "icontains", "startswith", "endswith",
                      "glob", "iglob", "pmatch", "regex", "in", "intersects", "exists"})
_BYTES_OPS = frozenset({"=", "!=", "contains", "bcontains", "startswith", "bstartswith", "endswith", "in",
                        "intersects", "exists"})
_IP_OPS = frozenset({"=", "!=", "in", "intersects", "exists"})
_LIST_OPS = frozenset({"in", "intersects", "exists"})
_SET_OPS = ("in", "intersects", "pmatch")
# Operators whose values are matched as text (no event-type name check on evt.type).
_TEXT_MATCH_OPS = frozenset({"contains", "icontains", "startswith", "endswith", "glob", "iglob", "regex",
                             "pmatch", "<", "<=", ">", ">=", "bcontains", "bstartswith"})
_NA_OPS = frozenset({"=", "!=", "in", "intersects", "pmatch"})

# Integer types: (bits, signed), as libsinsp stores them.
_INT_LAYOUT = {
    "INT8": (8, True), "INT16": (16, True), "INT32": (32, True), "INT64": (64, True),
    "ERRNO": (64, True), "FD": (64, True), "PID": (64, True), "DOUBLE": (64, True),
    "UINT8": (8, False), "UINT16": (16, False), "UINT32": (32, False), "UINT64": (64, False),
    "PORT": (16, False), "FLAGS8": (8, False), "FLAGS16": (16, False), "FLAGS32": (32, False),
    "ENUMFLAGS8": (8, False), "ENUMFLAGS16": (16, False), "ENUMFLAGS32": (32, False),
    "MODE": (32, False), "UID": (32, False), "GID": (32, False), "RELTIME": (64, False),
    "ABSTIME": (64, False), "SYSCALLID": (16, False), "SIGTYPE": (8, False), "SIGSET": (32, False),
}
_SCANF_INT = re.compile(r"[ \t\n\r\f\v]*([+-]?)([0-9]+)[ \t\n\r\f\v]*\Z")
_HEX_STRING = re.compile(r"(?:[0-9a-fA-F]{2})*\Z")
_TRANSFORMER_LOOKALIKE = re.compile(r"(?:tolower|toupper|b64|basename|len|join|concat|getopt|val)\(.*\)\Z", re.S)
_REGEX_SPECIAL = set(".^$*+?()[]{}|\\")


class Warning(NamedTuple):  # noqa: A001 - Falco's word
    code: str  # LOAD_COMPILE_CONDITION | LOAD_UNSAFE_NA_CHECK | LOAD_DEPRECATED_ITEM
    message: str
    position: Position
    extra: dict | None = None

    @property
    def deprecated_field(self) -> str | None:
        return (self.extra or {}).get("deprecated_field")


class Checked:
    """A type-checked condition."""

    __slots__ = ("pred", "warnings", "fields", "operators", "source", "tree", "_evttypes")

    def __init__(self, pred: ir.Pred, warnings: list[Warning], fields: list[str], operators: list[str],
                 source: str, tree: Node):
        self.pred = pred
        self.warnings = warnings
        self.fields = fields  # field texts as written, first-use order, no duplicates
        self.operators = operators  # operators as written, first-use order, no duplicates
        self.source = source
        self.tree = tree
        self._evttypes: frozenset[int] | None = None

    @property
    def evttypes(self) -> frozenset[int]:
        """The event codes the condition can match (§4.2): the derived set for syscall rules (count
        it for LOAD_NO_EVTTYPE), {pluginevent} for other sources. A ruleset indexes the rule
        under these plus asyncevent (`evttypes.rule_event_codes`)."""
        if self._evttypes is None:
            if self.source == "syscall":
                self._evttypes = evttypes.event_codes(self.tree)
            else:
                from tiercel.common import eventtable as et

                self._evttypes = frozenset({et.PPME_PLUGINEVENT_E})
        return self._evttypes


def check(tree: Node, source: str) -> Checked:
    """Type-check an expanded condition for `source`. Raises CompileError (MacroError if an
    identifier is left)."""
    c = _Checker(source)
    pred = c.pred(tree)
    return Checked(pred, c.warnings, list(c.fields), list(c.operators), source, tree)


def check_field(node: FieldExpr | TransformerExpr, source: str) -> ir.Expr:
    """Resolve a lone field or transformer (output tokens, exception fields). Raises CompileError."""
    return _Checker(source).expr(node)


def is_field(text: str, source: str) -> bool:
    """Is `text` a field (or transformer expression) valid for `source`? (exception fields)"""
    from tiercel.rules.condition.errors import ConditionError
    from tiercel.rules.condition.parser import parse_field

    try:
        check_field(parse_field(text), source)
    except ConditionError:
        return False
    return True


def type_category(t: str, is_list: bool = False) -> str:
    if is_list:
        return "list"
    if t in NUMERIC:
        return "numeric"
    if t in BOOL:
        return "boolean"
    if t in STRING:
        return "string"
    if t in BYTES:
        return "buffer"
    if t in IPADDR:
        return "IP address"
    return "IP network"


def allowed_ops(t: str, is_list: bool) -> frozenset[str]:
    """Operators a field type accepts. A list field takes `in` (subset), `intersects`, `exists`,
    and, as the Falco of the conformance corpus accepted (`ka.req.role.rules.resources contains
    "pods/exec"`), its element type's operators, true when some element matches."""
    if is_list:
        return _LIST_OPS | allowed_ops(t, False)
    if t in NUMERIC:
        return _NUM_OPS
    if t in BOOL:
        return _BOOL_OPS
    if t in STRING:
        return _STR_OPS
    if t in BYTES:
        return _BYTES_OPS
    return _IP_OPS


def parse_int(text: str, t: str) -> int:
    """libsinsp's sscanf-style decimal parsing into type `t`, with C's wrap-around."""
    m = _SCANF_INT.match(text)
    if m is None:
        raise ValueError(f"{text} is not a valid number")
    n = int(m.group(2))
    neg = m.group(1) == "-"
    bits, signed = _INT_LAYOUT.get(t, (64, True))
    if signed:  # strtoll saturates, then the store truncates
        n = -n if neg else n
        n = max(-(1 << 63), min((1 << 63) - 1, n))
    else:  # strtoull saturates and negates in unsigned arithmetic
        n = min(n, (1 << 64) - 1)
        if neg:
            n = (-n) % (1 << 64)
    n &= (1 << bits) - 1
    if signed and n >= 1 << (bits - 1):
        n -= 1 << bits
    return n


def parse_value(text: str, t: str, op: str) -> Any:
    """A right-hand side value parsed for field type `t` (ValueError with Falco's message)."""
    if "\x00" in text:
        raise ValueError("filter error: values cannot contain a NUL character")
    if t in STRING:
        return text
    if t in NUMERIC:
        if t == "PORT":
            try:
                return parse_int(text, t)
            except ValueError:
                try:
                    return socket.getservbyname(text)
                except OSError:
                    raise ValueError(f"{text} is not a valid number") from None
        n = parse_int(text, t)
        return float(n) if t == "DOUBLE" else n
    if t in BOOL:
        if text == "true":
            return True
        if text == "false":
            return False
        raise ValueError(f"filter error: unrecognized boolean value {text}")
    if t in BYTES:
        if op in ("bcontains", "bstartswith"):
            if not _HEX_STRING.match(text):
                raise ValueError("filter error: bcontains and bstartswith operator support hex strings only")
            return bytes.fromhex(text)
        return text.encode("utf-8", "surrogateescape")
    if t in IPADDR:
        try:
            a = rt.parse_ip(text)
        except ValueError:
            raise ValueError(f"unrecognized IP address {text}") from None
        if (t == "IPV4ADDR" and a.version != 4) or (t == "IPV6ADDR" and a.version != 6):
            raise ValueError(f"unrecognized IP address {text}")
        return a
    # IPNET
    import ipaddress

    try:
        if "/" not in text:
            raise ValueError
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"unrecognized IP network {text}") from None
    if (t == "IPV4NET" and net.version != 4) or (t == "IPV6NET" and net.version != 6):
        raise ValueError(f"unrecognized IP network {text}")
    return net


def regex_suggestion(pattern: str) -> str | None:
    """The plain operator a regex without special characters in the middle amounts to."""
    lead = pattern.startswith(".*")
    trail = pattern.endswith(".*") and len(pattern) >= (4 if lead else 2)
    mid = pattern[2 if lead else 0:len(pattern) - (2 if trail else 0)]
    if not mid or any(c in _REGEX_SPECIAL for c in mid):
        return None
    return {(False, False): "=", (False, True): "startswith", (True, False): "endswith",
            (True, True): "contains"}[(lead, trail)]


class _Checker:
    def __init__(self, source: str):
        self.source = source
        self.warnings: list[Warning] = []
        self.fields: dict[str, None] = {}
        self.operators: dict[str, None] = {}
        self.deprecated: set[str] = set()

    def error(self, msg: str, node: Node) -> CompileError:
        return CompileError(msg, node.position)

    # -- predicates --
    def pred(self, n: Node) -> ir.Pred:
        if isinstance(n, AndExpr):
            kids = tuple(self.pred(c) for c in n.children)
            return ir.OrP(kids) if isinstance(n, OrExpr) else ir.AndP(kids)
        if isinstance(n, NotExpr):
            return ir.NotP(self.pred(n.child))
        if isinstance(n, UnaryCheck):
            lhs = self.expr(n.left)
            self.operators[n.op] = None
            return ir.CheckP(lhs, "exists", None, None, None, node=n)
        if isinstance(n, BinaryCheck):
            return self.binary(n)
        if isinstance(n, Identifier):
            raise MacroError(f"Undefined macro '{n.name}' used in filter.", n.position)
        raise self.error(f"unexpected {n.kind} where a condition was expected", n)

    def binary(self, n: BinaryCheck) -> ir.CheckP:
        lhs = self.expr(n.left)
        op = "=" if n.op == "==" else n.op
        self.operators[n.op if not n.modifier else f"{n.op} {n.modifier}"] = None
        if op not in allowed_ops(lhs.type, lhs.is_list):
            raise self.error(f"filter error: '{n.op}' operator not supported for "
                             f"{type_category(lhs.type, lhs.is_list)} filters", n)
        is_type_field = isinstance(lhs, ir.FieldVal) and lhs.field.name in evttypes.TYPE_FIELDS \
            and lhs.arg is None and not lhs.existential
        r = n.right
        if isinstance(r, TransformerExpr):
            if is_type_field:
                raise self.error(f"filter error: right-hand side fields and transformers are not supported "
                                 f"with {lhs.field.name}", n)
            return self.rhs_expr(n, lhs, op, r)
        if isinstance(r, ListValue):
            texts = r.values
        elif isinstance(r, Value):
            texts = (r.value,)
        else:
            raise self.error(f"unexpected {r.kind} on the right-hand side", n)
        self.value_warnings(n, lhs, op, texts)
        values = []
        for t in texts:
            try:
                values.append(parse_value(t, lhs.type, op))
            except ValueError as e:
                raise self.error(str(e), n) from None
            if is_type_field and op not in _TEXT_MATCH_OPS and not evttypes.is_event_type(t):
                raise self.error(f"unknown event type {t}", n)
        matchers = None
        if op in ("glob", "iglob"):
            matchers = tuple(rt.glob_regex(v, op == "iglob").fullmatch for v in values)
        elif op == "regex":
            compiled = []
            for v in values:
                try:
                    compiled.append(re.compile(v, re.DOTALL).fullmatch)
                except re.error as e:
                    raise self.error(f"invalid regex pattern: {e}", n) from None
                sug = regex_suggestion(v)
                if sug is not None:
                    self.warn("LOAD_COMPILE_CONDITION", f"regex pattern '{v}' has no special characters: "
                              f"consider the '{sug}' operator instead", n)
            matchers = tuple(compiled)
        elif op == "pmatch":
            matchers = rt.PathPrefixMatcher(values)
        elif op == "icontains":
            matchers = tuple(rt.ascii_lower(v) for v in values)
        if n.modifier is not None or op in _SET_OPS or isinstance(r, ListValue):
            return ir.CheckP(lhs, op, n.modifier, "values", tuple(values), matchers, n)
        return ir.CheckP(lhs, op, None, "value", values[0], matchers[0] if matchers else None, n)

    def rhs_expr(self, n: BinaryCheck, lhs: ir.Expr, op: str, r: TransformerExpr) -> ir.CheckP:
        if op in ("pmatch", "regex"):
            raise self.error(f"filter error: '{n.op}' operator not supported with right-hand side fields", n)
        if n.modifier:
            raise self.error("filter error: operator modifiers are not supported with right-hand side fields", n)
        if r.name == "val":
            inner = r.args[0]
            rhs = self.expr(inner)
            if isinstance(rhs, ir.FieldVal) and (rhs.field.no_rhs or rhs.existential):
                raise self.error(f"filter error: field '{rhs.text}' cannot be used on the right-hand side "
                                 f"of a comparison", n)
        else:
            rhs = self.expr(r)
        if lhs.type in IPNET or rhs.type in IPNET:
            raise self.error("filter error: IP network fields cannot be compared with right-hand side fields", n)
        same = lhs.type == rhs.type or (lhs.type in STRING and rhs.type in STRING)
        if not same or lhs.is_list != rhs.is_list:
            lt = lhs.type + (" list" if lhs.is_list else "")
            rt_ = rhs.type + (" list" if rhs.is_list else "")
            raise self.error(f"field '{_text(lhs)}' has type '{lt}' while the right-hand side field "
                             f"'{_text(rhs)}' has incompatible type '{rt_}'", n)
        return ir.CheckP(lhs, op, None, "expr", rhs, None, n)

    def value_warnings(self, n: BinaryCheck, lhs: ir.Expr, op: str, texts: tuple[str, ...]) -> None:
        for t in texts:
            if "." in t and catalog.resolve(t, self.source) is not None:
                self.warn("LOAD_COMPILE_CONDITION",
                          f"string '{t}' may be a valid field misused as a const string value", n)
            elif _TRANSFORMER_LOOKALIKE.match(t):
                self.warn("LOAD_COMPILE_CONDITION",
                          f"string '{t}' may be a valid field transformer misused as a const string value", n)
        if isinstance(lhs, ir.FieldVal) and lhs.field.name.startswith(("ka.", "jevt.")) and op in _NA_OPS \
                and "<NA>" in texts:
            self.warn("LOAD_UNSAFE_NA_CHECK", "Unsafe <NA> comparison in condition", n)

    def warn(self, code: str, msg: str, n: Node, extra: dict | None = None) -> None:
        self.warnings.append(Warning(code, msg, n.position, extra))

    # -- values --
    def expr(self, n: Node) -> ir.Expr:
        if isinstance(n, FieldExpr):
            return self.field(n)
        if isinstance(n, TransformerExpr):
            return self.transformer(n)
        raise self.error(f"unexpected {n.kind} where a field was expected", n)

    def field(self, n: FieldExpr) -> ir.FieldVal:
        text = n.text
        self.fields[text] = None
        res = catalog.resolve(n.name, self.source)
        if res is None:
            raise self.error(f"filter_check called with nonexistent field {text}", n)
        f, dotted = res
        if dotted is not None and n.arg is not None:
            raise self.error(f"filter_check called with nonexistent field {text}", n)
        arg_text = dotted if dotted is not None else n.arg
        if arg_text is not None and f.arg == "none":
            raise self.error(f"filter_check called with nonexistent field {text}", n)
        if arg_text is None and f.arg == "required":
            raise self.error(f"filter {f.name} requires an argument", n)
        arg: Any = arg_text
        if arg_text is not None and f.parse_arg is not None:
            try:
                arg = f.parse_arg(arg_text)
            except ValueError as e:
                raise self.error(str(e), n) from None
        if f.deprecated and f.name not in self.deprecated:  # once per field and condition
            self.deprecated.add(f.name)
            self.warn("LOAD_DEPRECATED_ITEM", f"field '{f.name}'", n, {"deprecated_field": f.name})
        return ir.FieldVal(f, arg, arg_text, text)

    def transformer(self, n: TransformerExpr) -> ir.TransformVal:
        name = n.name
        if name == "val":
            raise self.error("filter error: val() can only be used on the right-hand side of a comparison", n)
        args = [self.targ(a) for a in n.args]
        exprs = [a for a in args if isinstance(a, ir.Expr)]
        for e in exprs:
            if isinstance(e, ir.FieldVal) and (e.field.no_transformer or e.existential
                                                or e.field.name in evttypes.TYPE_FIELDS):
                raise self.error(f"filter error: transformer '{name}' cannot be applied to field '{e.text}'", n)
        if name in ("tolower", "toupper", "b64", "basename", "len"):
            if len(args) != 1 or not exprs:
                raise self.error(f"filter error: transformer '{name}' takes exactly one field argument", n)
            if n.arg is not None:
                raise self.error(f"filter error: transformer '{name}' does not accept an argument", n)
            e = exprs[0]
            if name == "len":
                if not (e.is_list or e.type in STRING or e.type in BYTES):
                    raise self._ttype(name, e, n)
                return ir.TransformVal(name, tuple(args), None, "UINT64", False)
            ok = STRING | BYTES if name == "b64" else STRING
            if e.type not in ok:
                raise self._ttype(name, e, n)
            return ir.TransformVal(name, tuple(args), None, e.type, e.is_list)
        if name == "join":
            if len(args) != 2 or not isinstance(args[0], ir.Const) or not isinstance(args[1], (ir.Expr, ir.ListArg)):
                raise self.error("filter error: transformer 'join' takes a separator string and a list", n)
            self._string_items(name, args[1:], n)
            return ir.TransformVal(name, tuple(args), n.arg, "CHARBUF", False)
        if name == "concat":
            self._string_items(name, args, n)
            if n.arg is not None:
                raise self.error("filter error: transformer 'concat' does not accept an argument", n)
            return ir.TransformVal(name, tuple(args), None, "CHARBUF", False)
        if name == "getopt":
            if len(args) != 2 or not isinstance(args[1], ir.Const) or not isinstance(args[0], ir.Expr):
                raise self.error("filter error: transformer 'getopt' takes an arguments field and an option "
                                 "string", n)
            if n.arg is None or len(n.arg) != 1:
                raise self.error("filter error: transformer 'getopt' needs a one-character option argument", n)
            if args[0].type not in STRING:
                raise self._ttype(name, args[0], n)
            return ir.TransformVal(name, tuple(args), n.arg, "CHARBUF", False)
        raise self.error(f"filter error: unknown transformer '{name}'", n)

    def _ttype(self, name: str, e: ir.Expr, n: Node) -> CompileError:
        return self.error(f"filter error: transformer '{name}' is not supported on field type "
                          f"'{e.type}{' list' if e.is_list else ''}'", n)

    def _string_items(self, name: str, args: list, n: Node) -> None:
        for a in args:
            items = a.items if isinstance(a, ir.ListArg) else (a,)
            for x in items:
                if isinstance(x, ir.Expr) and x.type not in STRING and not (name == "join" and x.is_list):
                    raise self._ttype(name, x, n)

    def targ(self, n: Node) -> ir.Expr | ir.Const | ir.ListArg:
        if isinstance(n, Value):
            return ir.Const(n.value)
        if isinstance(n, TransformerList):
            return ir.ListArg(tuple(self.targ(i) for i in n.items))
        return self.expr(n)


def _text(e: ir.Expr) -> str:
    if isinstance(e, ir.FieldVal):
        return e.text
    return f"{e.name}(...)"  # type: ignore[attr-defined]


def field_types(source: str) -> dict[str, Field]:
    return catalog.fields(source)
