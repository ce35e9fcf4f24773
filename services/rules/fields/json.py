"""The json plugin's fields, `json.*` and their legacy `jevt.*` names (spec §5.2).

They read the event's JSON payload (`Event.payload`, already parsed) and are offered on every
non-syscall source. Values are text: strings raw, anything else compact JSON.
"""

from __future__ import annotations

import json as _json
from typing import Any

from tiercel.rules.fields.catalog import Field, register

MISSING: Any = object()


def compact(v: Any) -> str:
    """A JSON value as the plugins render it: strings raw, other values compact JSON text."""
    if isinstance(v, str):
        return v
    return _json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def pointer_tokens(ptr: str) -> tuple[str, ...]:
    """Split an RFC 6901 JSON pointer into its reference tokens (`~1` is `/`, `~0` is `~`)."""
    if ptr == "":
        return ()
    if not ptr.startswith("/"):
        raise ValueError(f"'{ptr}' is not a valid JSON pointer: it must start with '/'")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/"))


def resolve_pointer(doc: Any, tokens: tuple[str, ...]) -> Any:
    """The value at a pointer, or MISSING."""
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                return MISSING
            cur = cur[t]
        elif isinstance(cur, list):
            if not t.isdigit() or (len(t) > 1 and t[0] == "0"):
                return MISSING
            i = int(t)
            if i >= len(cur):
                return MISSING
            cur = cur[i]
        else:
            return MISSING
    return cur


def _value(evt: Any, tokens: tuple[str, ...]) -> str | None:
    doc = evt.payload
    if doc is None:
        return None
    v = resolve_pointer(doc, tokens)
    return None if v is MISSING else compact(v)


def _obj(evt: Any, arg: Any) -> str | None:
    doc = evt.payload
    if doc is None:
        return None
    return _json.dumps(doc, indent=2, ensure_ascii=False)


def _rawtime(evt: Any, arg: Any) -> str | None:
    return str(evt.ts)


for _prefix in ("json", "jevt"):
    register(Field(f"{_prefix}.value", "CHARBUF", "Extracts a value from the JSON payload with an RFC 6901 "
                   "pointer (`json.value[/user/username]`)", "json", _value, arg="required",
                   arg_kind="pointer", parse_arg=pointer_tokens))
    register(Field(f"{_prefix}.obj", "CHARBUF", "The whole JSON payload, indented", "json", _obj))
    register(Field(f"{_prefix}.rawtime", "CHARBUF", "The event time in nanoseconds, as text", "json", _rawtime))
