"""Output formats: `%field` tokens in rule outputs (libsinsp `sinsp_evt_formatter`, spec §3.1-3.2).

    fmt = compile_output("File opened by %proc.name (%20fd.name) %tolower(user.name)", "syscall")
    fmt.render(evt)   # "File opened by cat (/etc/shadow        ) root", `<NA>` for missing values
    fmt.fields(evt)   # {"fd.name": "/etc/shadow", "proc.name": "cat", "user.name": "root"}

Syntax: text is literal up to a `%`; then optional decimal digits (a width: pad with spaces or
truncate to exactly that many characters, text only), then a field or a transformer expression
(`%tolower(proc.name)`). The token is the **longest prefix** that is a known field: `%proc.name_x`
is proc.name followed by the text `_x`. There is no escape for `%`. Errors (CompileError):
"unknown filter: X" (the unknown class), "invalid formatting syntax: formatting cannot end with a
%", "X is filter only and cannot be used as a display field".

A leading `*` means "missing values render as `<NA>`". Falco always adds it to rule outputs, so
`compile_output` does too unless `rule_output=False`; without it one missing value makes the
whole rendering "" (libs behaviour).

Rendering (§3.2): strings as they are, numbers by the field's print format (PF_HEX `0x..`, PF_OCT
`0..`, else decimal), DOUBLE `%.1f`, BOOL `true`/`false`, IPs in their usual text form, list
fields `(a,b,c)`, a field's own `render` when it has one. `fields()` gives Falco's JSON
`output_fields`: one key per field token as written, typed values (numbers for decimal numeric
fields, arrays for list fields, booleans, strings otherwise; a field's `json_extract` when it has
one, e.g. evt.time's integer timestamp), None for missing; transformer tokens are left out but
the fields inside them are included.
"""

from __future__ import annotations

import re
import time
from typing import Any

from tiercel.rules.condition import codegen, ir
from tiercel.rules.condition.checker import check_field
from tiercel.rules.condition.errors import CompileError, ParseError, Position
from tiercel.rules.condition.lexer import FIELD_NAME
from tiercel.rules.condition.nodes import TRANSFORMERS, FieldExpr
from tiercel.rules.condition.parser import parse_field_prefix
from tiercel.rules.fields import catalog
from tiercel.rules.fields.catalog import BOOL, NUMERIC

NA = "<NA>"
_DIGITS = re.compile(r"[0-9]+")
_TRANSFORMER_START = re.compile(r"(?:" + "|".join(TRANSFORMERS) + r")\(")


def evt_time(ts: int) -> str:
    """`evt.time`: local time `HH:MM:SS.nnnnnnnnn`."""
    sec, ns = divmod(ts, 1_000_000_000)
    t = time.localtime(sec)
    return f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ns:09d}"


def evt_time_iso8601(ts: int) -> str:
    """`evt.time.iso8601`: UTC `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000`."""
    sec, ns = divmod(ts, 1_000_000_000)
    t = time.gmtime(sec)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{ns:09d}+0000")


def render_value(v: Any, e: ir.Expr) -> str:
    """The text form of a present value of expression `e`."""
    if e.is_list or e.existential:
        if isinstance(v, (list, tuple)):
            return "(" + ",".join(_scalar_text(x, e) for x in v) + ")"
    return _scalar_text(v, e)


def _scalar_text(v: Any, e: ir.Expr) -> str:
    if v is None:
        return NA
    f = e.field if isinstance(e, ir.FieldVal) else None
    if f is not None and f.render is not None:
        return f.render(v)
    t = e.type
    if t in BOOL:
        return "true" if v else "false"
    if t in NUMERIC:
        if t == "DOUBLE":
            return f"{v:.1f}"
        pf = f.print_format if f is not None else "PF_DEC"
        if pf == "PF_HEX":
            return hex(v)
        if pf == "PF_OCT":
            return "0" + format(v, "o")
        return str(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return str(v)


def json_value(v: Any, e: ir.Expr) -> Any:
    """A present value as Falco puts it in JSON output_fields."""
    if e.is_list or e.existential:
        if isinstance(v, (list, tuple)):
            return [_scalar_json(x, e) for x in v]
    return _scalar_json(v, e)


def _scalar_json(v: Any, e: ir.Expr) -> Any:
    if v is None:
        return None
    t = e.type
    if t in BOOL:
        return bool(v)
    if t in NUMERIC:
        f = e.field if isinstance(e, ir.FieldVal) else None
        if f is None or f.print_format in ("PF_DEC", "PF_ID", "PF_NA", "PF_10_PADDED_DEC"):
            return v
    return _scalar_text(v, e)


class _Token:
    __slots__ = ("text", "expr", "width", "index")

    def __init__(self, text: str, expr: ir.Expr, width: int | None, index: int):
        self.text = text  # as written, without the width: proc.aname[2], tolower(proc.name)
        self.expr = expr
        self.width = width
        self.index = index  # position of its value in the values tuple


class OutputFormat:
    """A compiled output format. `render(evt)` -> text, `fields(evt)` -> JSON output_fields."""

    def __init__(self, text: str, parts: list[str | _Token], json_keys: list[tuple[str, int, ir.Expr]],
                 allow_missing: bool, values_fn: Any, source_code: str):
        self.text = text
        self.parts = parts
        self.json_keys = json_keys  # (key, index in values, expr), sorted by key
        self.allow_missing = allow_missing
        self._values = values_fn
        self.source_code = source_code

    @property
    def tokens(self) -> list[str]:
        """The field and transformer tokens as written, in order (duplicates kept)."""
        return [p.text for p in self.parts if isinstance(p, _Token)]

    @property
    def field_names(self) -> list[str]:
        """The output_fields keys (fields, including those inside transformers), sorted."""
        return [k for k, _, _ in self.json_keys]

    def render(self, evt: Any) -> str:
        vals = self._values(evt)
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            v = vals[p.index]
            if v is None:
                if not self.allow_missing:
                    return ""
                s = NA
            else:
                s = render_value(v, p.expr)
            if p.width is not None:
                s = s[:p.width].ljust(p.width)
            out.append(s)
        return "".join(out)

    def fields(self, evt: Any) -> dict[str, Any]:
        vals = self._values(evt)
        out = {}
        for k, i, e in self.json_keys:
            v = vals[i]
            if v is None:
                out[k] = None
            elif isinstance(e, ir.FieldVal) and e.field.json_extract is not None:
                out[k] = e.field.json_extract(evt, e.arg)
            else:
                out[k] = json_value(v, e)
        return out


def compile_output(fmt: str, source: str, *, rule_output: bool = True) -> OutputFormat:
    """Compile an output format for `source`. Raises CompileError."""
    text = "*" + fmt if rule_output else fmt
    allow_missing = text.startswith("*")
    if allow_missing:
        text = text[1:]
    parts: list[str | _Token] = []
    exprs: dict[tuple, tuple[int, ir.Expr]] = {}
    json_fields: dict[str, tuple[tuple, ir.Expr]] = {}

    def slot(e: ir.Expr) -> int:
        hit = exprs.get(e.key)
        if hit is None:
            hit = exprs[e.key] = (len(exprs), e)
        return hit[0]

    lit_start = 0
    i, n = 0, len(text)
    while i < n:
        if text[i] != "%":
            i += 1
            continue
        if lit_start < i:
            parts.append(text[lit_start:i])
        if i == n - 1:
            raise CompileError("invalid formatting syntax: formatting cannot end with a %", Position(i, 1, i + 1))
        j = i + 1
        width = None
        m = _DIGITS.match(text, j)
        if m is not None:
            width = int(m.group())
            j = m.end()
            if j >= n:
                raise CompileError("invalid formatting syntax: formatting cannot end with a number",
                                   Position(i, 1, i + 1))
        token, expr, end = _token(text, j, source)
        if isinstance(expr, ir.FieldVal) and expr.field.filter_only:
            raise CompileError(f"{token} is filter only and cannot be used as a display field",
                               Position(i, 1, i + 1))
        parts.append(_Token(token, expr, width, slot(expr)))
        for sub in ir.value_exprs(expr):
            if isinstance(sub, ir.FieldVal) and sub.text not in json_fields:
                json_fields[sub.text] = (sub.key, sub)
                slot(sub)
        i = lit_start = end
    if lit_start < n:
        parts.append(text[lit_start:])

    gen = codegen.Generator()
    fg = codegen.FunctionGen(gen)
    ordered = sorted(exprs.values(), key=lambda t: t[0])
    d: frozenset = frozenset()
    refs = []
    for _, e in ordered:
        first, _name, d = fg.value_ref(e, d)
        refs.append(first)
    body = [f"    return ({''.join(r + ', ' for r in refs)})"]
    gen.chunks.append(fg.render("values", body))
    ns = gen.compile("<tiercel-output>")
    json_keys = sorted((k, exprs[key][0], e) for k, (key, e) in json_fields.items())
    return OutputFormat(fmt, parts, json_keys, allow_missing, ns["values"], gen.source())


def _token(text: str, j: int, source: str) -> tuple[str, ir.Expr, int]:
    """The longest field or transformer token at j: (token text, checked expr, end offset)."""
    if _TRANSFORMER_START.match(text, j):
        res = parse_field_prefix(text, j)
        if res is None:
            raise CompileError(f"unknown filter: {text[j:]}", Position(j, 1, j + 1))
        node, end = res
        try:
            return text[j:end], check_field(node, source), end
        except (CompileError, ParseError) as e:
            raise CompileError(_unknown(e.message, text[j:end]), Position(j, 1, j + 1)) from None
    m = FIELD_NAME.match(text, j)
    if m is None:
        raise CompileError(f"unknown filter: {text[j:]}", Position(j, 1, j + 1))
    name = m.group()
    table = catalog.fields(source)
    for k in range(len(name), 0, -1):
        cand = name[:k]
        if cand[-1] == "." or catalog.resolve(cand, source) is None:
            continue
        end = j + k
        res = parse_field_prefix(text, j) if end < len(text) and text[end] == "[" and k == len(name) else None
        if res is not None and isinstance(res[0], FieldExpr) and res[0].name == cand:
            node, end = res
        else:
            node = FieldExpr(cand)
        try:
            return text[j:end], check_field(node, source), end
        except CompileError as e:
            if cand in table or k == len(name):
                raise CompileError(_unknown(e.message, text[j:end]), Position(j, 1, j + 1)) from None
    raise CompileError(f"unknown filter: {name}", Position(j, 1, j + 1))


def _unknown(message: str, token: str) -> str:
    if "nonexistent field" in message:
        return f"unknown filter: {token}"
    return message
