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
check is true when any matches; in an output the list renders as the chain. The same flag serves
other "any of these values" fields: `fd.ip`/`fd.net` return `[client, server]`.

Optional, for the code generator (each owner fills them in where they help; all default off):
- `inline`: a Python expression template computing the value, used instead of calling `extract`.
  `{evt}` stands for the event variable, `{arg}` for `repr()` of the (parsed) argument, and names
  in `inline_globals` are available to it. It must evaluate `{evt}` at most once per... actually
  as often as it likes, but must have no side effects and return exactly what `extract` returns.
  Example: `"({evt}.thread.comm if {evt}.thread is not None else None)"`.
- `per_code(code)`: for fields whose value depends only on the event code (`evt.type` except for
  generic syscall events, `evt.dir`): the value for that code, or `VARIES` when it must be
  extracted per event. The compiler evaluates checks on such fields once per code at compile time.
- `parse_arg(text)`: converts the argument text once at compile time (`"2"` -> 2); `extract` then
  receives the converted value. Raise `ValueError(message)` for an invalid argument: the message
  becomes the compile error. Without it `extract` receives the text.
- `dotted_arg`: the field also accepts its argument as a dotted suffix of its name
  (`evt.arg.flags` is `evt.arg` with argument "flags"; also `evt.rawarg.<p>`, `evt.type.is.<t>`).
  `resolve()` finds the longest registered prefix for such names.

Strings are `str` decoded from bytes with `surrogateescape`, so comparisons stay byte-exact.
IP fields return `ipaddress.IPv4Address`/`IPv6Address`; IPNET fields return the address that is
tested for membership of the network given on the right-hand side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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

Extractor = Callable[[Any, Any], Any]


class _Varies:
    __slots__ = ()

    def __repr__(self) -> str:
        return "VARIES"


VARIES: Any = _Varies()  # per_code(): the value is not fixed by the event code


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
    # JSON output_fields value when it is not the typed value (libsinsp's extract_as_js: evt.time
    # and its siblings give the integer timestamp); called as json_extract(evt, arg)
    json_extract: Extractor | None = field(default=None, compare=False, hash=False)
    deprecated: bool = False
    aliases: tuple[str, ...] = field(default=())
    # Code-generation helpers (see the module docstring).
    inline: str | None = None
    inline_globals: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    per_code: Callable[[int], Any] | None = field(default=None, compare=False, hash=False)
    parse_arg: Callable[[str], Any] | None = field(default=None, compare=False, hash=False)
    dotted_arg: bool = False

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


def resolve(name: str, source: str) -> tuple[Field, str | None] | None:
    """Resolve a field name as the lexer returns it (`proc.name`, `evt.arg.flags`): the field and
    the dotted argument (None when there is none), or None for an unknown name. A registered
    name wins; otherwise the longest registered prefix (cut at a dot) of a `dotted_arg` field."""
    table = fields(source)
    f = table.get(name)
    if f is not None:
        return f, None
    cut = name.rfind(".")
    while cut > 0:
        f = table.get(name[:cut])
        if f is not None and f.dotted_arg:
            return f, name[cut + 1:]
        cut = name.rfind(".", 0, cut)
    return None


_BUILTIN = (
    # Modules that register fields at import. Each owner adds its module here.
    "tiercel.rules.fields.json",
    "tiercel.rules.fields.k8saudit",
    "tiercel.api.alertfields",
    "tiercel.rules.fields.syscall",
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
