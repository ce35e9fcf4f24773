"""Fields of the `alert` source: what a subscriber's condition can test on an alert.

    alert.rule, alert.priority, alert.source, alert.hostname, alert.output, alert.id  (text)
    alert.tags                                                                         (list)
    alert.seq                                                                          (number)
    alert.field[proc.name]       an output field's value as text ("" never: missing is missing)

and, for convenience, every field of the syscall and k8s_audit sources under its own name
(`proc.name = cat`, `ka.user.name = alice`), read from the alert's `output_fields` and typed as
the catalog types it: a field the alert's output does not carry is missing (comparisons false).
The json plugin's fields (`json.value[/output_fields/proc.name]`) read the whole alert JSON.

Registered in the field catalog (its `_BUILTIN` list); the evaluator runs on `Alert` objects.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from tiercel.rules.fields import catalog
from tiercel.rules.fields.catalog import IPADDR, NUMERIC, STRING, Field, register

SOURCE = "alert"
PRIORITY_TEXT = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")


def _f(name: str, type_: str, desc: str, fn: Any, **kw: Any) -> None:
    register(Field(name, type_, desc, SOURCE, fn, **kw))


_f("alert.rule", "CHARBUF", "Name of the rule that raised the alert.", lambda a, _: a.rule)
_f("alert.priority", "CHARBUF", "Priority of the alert as Falco writes it (Warning, Critical, ...).",
   lambda a, _: PRIORITY_TEXT[a.priority])
_f("alert.source", "CHARBUF", "Event source of the alert (syscall, k8s_audit, ...).", lambda a, _: a.source)
_f("alert.hostname", "CHARBUF", "Host the event happened on.", lambda a, _: a.hostname)
_f("alert.output", "CHARBUF", "The alert's output line.", lambda a, _: a.fields.get("output") or "")
_f("alert.id", "CHARBUF", "Unique alert id.", lambda a, _: a.id)
_f("alert.tags", "CHARBUF", "Tags of the rule.", lambda a, _: sorted(a.tags), is_list=True)
_f("alert.seq", "UINT64", "Sequence number of the event that matched.",
   lambda a, _: a.fields.get("seq") if isinstance(a.fields.get("seq"), int) else None)


def _output_field(a: Any, arg: str | None) -> str | None:
    fields = a.fields.get("output_fields") or {}
    if arg not in fields or fields[arg] is None:
        return None
    from tiercel.api.alerts import field_text

    return field_text(fields[arg])


_f("alert.field", "CHARBUF", "An output field of the alert, as text: alert.field[proc.name].", _output_field,
   arg="required", arg_kind="key")


def _typed(f: Field) -> Any:
    """Extractor of a source field from the alert's output_fields, converted to the field's type."""
    name = f.name

    def extract(a: Any, arg: str | None) -> Any:
        fields = a.fields.get("output_fields") or {}
        key = f"{name}[{arg}]" if arg is not None else name
        v = fields.get(key)
        if v is None:
            return None
        t = f.type
        try:
            if f.is_list:
                return v if isinstance(v, list) else [v]
            if t in NUMERIC:
                return int(v) if not isinstance(v, float) else v
            if t in STRING:
                return v if isinstance(v, str) else str(v)
            if t in IPADDR:
                return ipaddress.ip_address(str(v))
            if t == "BOOL":
                return v if isinstance(v, bool) else str(v).lower() in ("true", "1")
        except ValueError:
            return None
        return v

    return extract


_mirrored = False


def mirror_source_fields() -> None:
    """Offer every syscall and k8s_audit field on `alert`, reading the alert's output_fields."""
    global _mirrored
    if _mirrored:
        return
    _mirrored = True
    own = dict(catalog._FIELDS.get(SOURCE, {}))
    for src in ("syscall", "k8s_audit"):
        for name, f in catalog.fields(src).items():
            if name in own or name.startswith(("json.", "jevt.")) or f.name != name:
                continue
            own[name] = register(Field(name, f.type, f.desc, SOURCE, _typed(f), arg=f.arg, arg_kind=f.arg_kind,
                                       is_list=f.is_list, filter_only=True, print_format=f.print_format))
