"""Helpers the generated code calls: Falco's string matching and transformers, in Python.

- `glob_regex`: fnmatch(3) with no flags (no FNM_PATHNAME: `*` and `?` match `/`; backslash
  escapes; `[...]`, `[!...]`, `[^...]`, ranges and `[:class:]`), whole-string, compiled once.
  With `casefold`, ASCII-only case folding (`iglob`).
- `PathPrefixMatcher`: `pmatch`, a whole-component path prefix match with per-component globs.
- `ascii_lower`/`ascii_upper`: Falco's tolower/toupper and `icontains` fold ASCII only.
- transformers: `b64`, `basename`, `strlen`, `join`, `concat`, `getopt`; each returns None when it
  fails (a failed transformer is a missing value).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ascii_lower(s: str) -> str:
    return s.lower() if s.isascii() else s.translate(_LOWER)


def ascii_upper(s: str) -> str:
    return s.upper() if s.isascii() else s.translate(_UPPER)


def ascii_lower_bytes(b: bytes) -> bytes:
    return b.lower()  # bytes.lower() is ASCII-only


# -- glob ------------------------------------------------------------------------------------------

_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "print": " -~", "graph": "!-~", "cntrl": "\\x00-\\x1f\\x7f", "xdigit": "0-9a-fA-F",
}


def _bracket(p: str, i: int) -> tuple[str, int] | None:
    """Translate the bracket expression starting after '[' at i; None if it is not closed."""
    n = len(p)
    neg = False
    if i < n and p[i] in "!^":
        neg = True
        i += 1
    parts: list[str] = []
    first = True
    while i < n:
        c = p[i]
        if c == "]" and not first:
            body = "".join(parts)
            if not body:
                return None
            return ("[^" if neg else "[") + body + "]", i + 1
        first = False
        if c == "[" and i + 1 < n and p[i + 1] == ":":
            end = p.find(":]", i + 2)
            if end >= 0 and p[i + 2:end] in _CLASSES:
                parts.append(_CLASSES[p[i + 2:end]])
                i = end + 2
                continue
        if c == "\\" and i + 1 < n:
            i += 1
            c = p[i]
        lo = c
        i += 1
        if i + 1 < n and p[i] == "-" and p[i + 1] != "]":
            hi = p[i + 1]
            i += 2
            if hi == "\\" and i < n:
                hi = p[i]
                i += 1
            if ord(hi) < ord(lo):
                continue  # empty range
            parts.append(re.escape(lo) + "-" + re.escape(hi))
        else:
            parts.append(re.escape(lo))
    return None


def glob_regex(pattern: str, casefold: bool = False) -> re.Pattern:
    """The compiled regex (use `.fullmatch`) equivalent to fnmatch(pattern, s, 0)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append(".*")
            continue
        if c == "?":
            out.append(".")
        elif c == "[":
            br = _bracket(pattern, i + 1)
            if br is None:
                out.append(re.escape("["))
            else:
                out.append(br[0])
                i = br[1]
                continue
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if casefold else 0)
    return re.compile("".join(out), flags)


def has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


# -- pmatch ----------------------------------------------------------------------------------------

_END = object()


class PathPrefixMatcher:
    """`pmatch`: true when some path of the set is a whole-component prefix of the value."""

    __slots__ = ("root", "globbed", "match_all")

    def __init__(self, paths: Iterable[str]):
        self.root: dict = {}
        self.globbed: list[tuple] = []
        self.match_all = False
        for p in paths:
            comps = [c for c in p.split("/") if c]
            if not comps:
                self.match_all = True
            elif any(has_glob(c) for c in comps):
                self.globbed.append(tuple(glob_regex(c).fullmatch if has_glob(c) else c for c in comps))
            else:
                node = self.root
                for c in comps:
                    node = node.setdefault(c, {})
                node[_END] = True

    def __call__(self, value: str) -> bool:
        if self.match_all:
            return True
        comps = [c for c in value.split("/") if c]
        node = self.root
        for c in comps:
            node = node.get(c)
            if node is None:
                break
            if _END in node:
                return True
        n = len(comps)
        for entry in self.globbed:
            if len(entry) <= n and all(
                    (m(c) is not None) if callable(m) else m == c for m, c in zip(entry, comps, strict=False)):
                return True
        return False


# -- IP networks -----------------------------------------------------------------------------------

def in_network(addr: Any, net: Any) -> bool:
    return addr.version == net.version and addr in net


def in_any_network(addr: Any, nets: tuple) -> bool:
    v = addr.version
    return any(n.version == v and addr in n for n in nets)


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# -- transformers ----------------------------------------------------------------------------------

def b64(v: Any) -> Any:
    """Base64 decode, padding optional; None when the input is not base64."""
    raw = v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape")
    raw = raw.strip(b"=")
    raw += b"=" * (-len(raw) % 4)
    try:
        out = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    return out if isinstance(v, bytes) else out.decode("utf-8", "surrogateescape")


def basename(v: str) -> str:
    return v[v.rfind("/") + 1:]


def strlen(v: Any) -> int:
    """len(): elements of a list, bytes of a string or buffer."""
    if isinstance(v, str):
        return len(v) if v.isascii() else len(v.encode("utf-8", "surrogateescape"))
    return len(v)


def present(values: tuple) -> list:
    """The values of a `(...)` transformer argument that are not missing."""
    return [v for v in values if v is not None]


def join(sep: str, v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return sep.join(str(x) for x in v)
    return str(v)


def getopt(args: Any, optstring: str, opt: str) -> str | None:
    """The value of option `opt` in a getopt(3)-style scan of `args` (a list, or a string split on
    blanks): its argument when it takes one, "" for a flag; None when absent."""
    argv = args.split() if isinstance(args, str) else [str(a) for a in args]
    takes = {c: optstring[i + 1:i + 2] == ":" for i, c in enumerate(optstring) if c != ":"}
    found: str | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--" or not a.startswith("-") or a == "-":
            break
        j = 1
        while j < len(a):
            c = a[j]
            if c not in takes:
                j += 1
                continue
            if takes[c]:
                if j + 1 < len(a):
                    val = a[j + 1:]
                elif i + 1 < len(argv):
                    i += 1
                    val = argv[i]
                else:
                    val = None
                if c == opt and val is not None:
                    found = val
                break
            if c == opt:
                found = ""
            j += 1
        i += 1
    return found
