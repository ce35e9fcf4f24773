"""The field catalog: what each Falco field is called, its type, its flags and how to extract it.

This is the contract between the condition compiler (which type-checks conditions and generates
code calling `extract`) and the modules that know the event model (syscall fields, k8s audit
fields, JSON fields), each of which registers its fields here at import time.

Extraction contract: `extract(evt, arg)` returns the value, or None when the value is missing
(Falco's "no value": every comparison on it is false). `arg` is the field argument as written in
brackets (`proc.aname[2]` -> "2", `jevt.value[/a/b]` -> "/a/b"), or for `evt.arg.flags` the
dotted remainder ("flags"), or None. List fields return a list (an empty list counts as
missing). Values use Python types by field type: ints for numeric types, str for CHARBUF/FSPATH,
bytes for BYTEBUF, bool for BOOL, `ipaddress` objects for IP types.

`ancestors=True` marks Falco's ancestor fields (`proc.aname`, `proc.apid`, ...): with an index the
extractor returns that ancestor's value; without one, in a filter, the compiler applies the
operator to each ancestor value from the parent up (`extract(evt, None)` returns that list) and the
check is true when any matches; in an output the list renders as the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Field types, named as libsinsp's PT_* parameter types (without the prefix).
NUMERIC = frozenset({
    "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "ERRNO", "FD", "PID",
    "PORT", "FLAGS8", "FLAGS16", "FLAGS32", "ENUMFLAGS8", "ENUMFLAGS16", "ENUMFLAGS32", "MODE", "UID",
    "GID", "RELTIME", "ABSTIME", "DOUBLE", "SYSCALLID", "SIGTYPE", "SIGSET",
})
STRING = frozenset({"CHARBUF", "FSPATH", "FSRELPATH"})
BYTES = frozenset({"BYTEBUF"})
BOOL = frozenset({"BOOL"})
IPADDR = frozenset({"IPV4ADDR", "IPV6ADDR", "IPADDR"})
IPNET = frozenset({"IPV4NET", "IPV6NET", "IPNET"})
ALL_TYPES = NUMERIC | STRING | BYTES | BOOL | IPADDR | IPNET

Extractor = Callable[[Any, str | None], Any]


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    desc: str
    source: str  # syscall | k8s_audit | json (json fields are also offered on k8s_audit)
    extract: Extractor
    arg: str = "none"  # none | required | optional
    arg_kind: str = ""  # index | key | pointer | param (evt.arg.<name>)
    is_list: bool = False
    ancestors: bool = False
    filter_only: bool = False  # cannot be used in outputs (fd.ip, fd.net, ...)
    no_rhs: bool = False  # cannot be the field inside val()
    no_transformer: bool = False  # cannot be wrapped in a transformer
    print_format: str = "PF_DEC"  # PF_DEC | PF_HEX | PF_OCT | PF_ID | PF_NA ...
    render: Callable[[Any], str] | None = None  # text form when the default is not right
    deprecated: bool = False
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.type not in ALL_TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type}")


_FIELDS: dict[str, dict[str, Field]] = {}


def register(f: Field) -> Field:
    """Add a field to its source's table (aliases too). Re-registering a name replaces it."""
    table = _FIELDS.setdefault(f.source, {})
    for name in (f.name, *f.aliases):
        table[name] = f
    return f


def fields(source: str) -> dict[str, Field]:
    """Every field offered for a source, by name (k8s_audit also offers the json fields)."""
    _load_builtin()
    out = dict(_FIELDS.get(source, {}))
    if source != "syscall":
        for name, f in _FIELDS.get("json", {}).items():
            out.setdefault(name, f)
    return out


def lookup(name: str, source: str) -> Field | None:
    return fields(source).get(name)


_BUILTIN = (
    # Modules that register fields at import. Each owner adds its module here.
)
_loaded = False


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib

    for mod in _BUILTIN:
        importlib.import_module(mod)
