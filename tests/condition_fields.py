"""A test-only event source ("tiercel_test") with one field per field type and flag, reading from a
plain dict, so the condition compiler is tested on every type without the syscall fields."""

from __future__ import annotations

import ipaddress
from typing import Any

from tiercel.rules.fields.catalog import VARIES, Field, register

SOURCE = "tiercel_test"
PLUGIN_CODE = 322  # PPME_PLUGINEVENT_E: what a non-syscall source's rules are indexed under
EV_NAMES = {1: "open", 2: "close", 3: "execve"}  # t.ev / evt.type by code; other codes vary


class Evt:
    """A minimal event: a code and a dict of field values (missing keys are missing values)."""

    __slots__ = ("code", "payload", "ts", "num", "source", "calls")

    def __init__(self, code: int = PLUGIN_CODE, **values: Any):
        self.code = code
        self.payload = values
        self.ts = values.pop("_ts", 1_700_000_000_123_456_789)
        self.num = 1
        self.source = SOURCE
        self.calls: dict[str, int] = {}


def _get(key: str):
    def extract(evt: Evt, arg: Any) -> Any:
        evt.calls[key] = evt.calls.get(key, 0) + 1
        return evt.payload.get(key)
    return extract


def _index(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid index {text}")
    return int(text)


def _anc(evt: Evt, arg: Any) -> Any:
    chain = evt.payload.get("anc")
    if chain is None:
        return None
    if arg is None:
        return chain[1:]
    return chain[arg] if arg < len(chain) else None


def _args(evt: Evt, arg: Any) -> Any:
    return (evt.payload.get("args") or {}).get(arg)


def _ev(evt: Evt, arg: Any) -> Any:
    evt.calls["ev"] = evt.calls.get("ev", 0) + 1
    return EV_NAMES.get(evt.code, evt.payload.get("ev"))


def _ev_per_code(code: int) -> Any:
    return EV_NAMES.get(code, VARIES)


def _reg(name: str, type: str, key: str | None = None, **kw: Any) -> None:
    register(Field(name, type, f"test field {name}", SOURCE, kw.pop("extract", None) or _get(key or name[2:]), **kw))


_reg("t.str", "CHARBUF")
_reg("t.str2", "CHARBUF")
_reg("t.path", "FSPATH")
_reg("t.u32", "UINT32")
_reg("t.u32b", "UINT32")
_reg("t.i64", "INT64")
_reg("t.u8", "UINT8")
_reg("t.port", "PORT")
_reg("t.dbl", "DOUBLE")
_reg("t.bool", "BOOL")
_reg("t.ip", "IPADDR")
_reg("t.ip4", "IPV4ADDR")
_reg("t.net", "IPNET")
_reg("t.buf", "BYTEBUF")
_reg("t.list", "CHARBUF", is_list=True)
_reg("t.list2", "CHARBUF", is_list=True)
_reg("t.hex", "UINT32", print_format="PF_HEX")
_reg("t.noxf", "CHARBUF", no_transformer=True)
_reg("t.norhs", "CHARBUF", no_rhs=True)
_reg("t.filteronly", "CHARBUF", filter_only=True)
_reg("t.old", "CHARBUF", deprecated=True)
_reg("t.inl", "CHARBUF", inline="{evt}.payload.get('str')")
_reg("t.time", "CHARBUF", extract=lambda e, a: f"T{e.ts}", json_extract=lambda e, a: e.ts)
_reg("t.req", "CHARBUF", extract=_args, arg="required", arg_kind="key")
_reg("t.anc", "CHARBUF", extract=_anc, arg="optional", arg_kind="index", ancestors=True, no_rhs=True,
     no_transformer=True, parse_arg=_index)
_reg("t.arg", "CHARBUF", extract=_args, arg="required", arg_kind="param", dotted_arg=True)
_reg("evt.type", "CHARBUF", extract=_ev, per_code=_ev_per_code, no_transformer=True)
_reg("t.ev", "CHARBUF", extract=_ev, per_code=_ev_per_code)

IP = ipaddress.ip_address
