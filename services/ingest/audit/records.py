"""Audit record text, sans-IO: the `audit(ts:serial):` stamp, `key=value` fields, and the
kernel's encodings (quoted, hex for untrusted strings, `(null)`, split execve arguments, raw
sockaddr bytes)."""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass


class GarbledRecord(ValueError):
    """A record that does not follow the audit text format."""


_STAMP = re.compile(rb"audit\((\d+)\.(\d+):(\d+)\):\s?")
_FIELD = re.compile(rb"([A-Za-z0-9_\[\]-]+)=(\"[^\"]*\"|'[^']*'|[^ ]*)")


def parse_stamp(payload: bytes) -> tuple[int, int, int]:
    """(ts_ns, serial, offset of the body) of a record."""
    m = _STAMP.match(payload)
    if m is None:
        raise GarbledRecord(f"no audit(ts:serial) stamp in {payload[:60]!r}")
    sec, frac, serial = m.groups()
    frac_ns = int(frac.ljust(9, b"0")[:9])
    ts = int(sec) * 1_000_000_000 + frac_ns
    if ts >= 1 << 64:  # the kernel's time is a 64-bit count of ns; more is not a kernel record
        raise GarbledRecord(f"audit stamp time out of range in {payload[:60]!r}")
    return ts, int(serial), m.end()


_KEYS: dict[bytes, str] = {}


def parse_fields(body: bytes) -> dict[str, bytes]:
    """Raw field tokens of a record body, in order; a repeated key keeps the first value.

    The kernel hex-encodes every untrusted string holding a space or a quote, so tokens split
    on spaces; only user-space messages (`msg='...'`) need the slower quoted parse."""
    if b"'" in body:
        out: dict[str, bytes] = {}
        for k, v in _FIELD.findall(body):
            key = k.decode("ascii", "replace")
            if key not in out:
                out[key] = v
        return out
    out = {}
    keys = _KEYS
    for tok in body.split():
        k, sep, v = tok.partition(b"=")
        if not sep:
            continue
        key = keys.get(k)
        if key is None:
            key = k.decode("ascii", "replace")
            if len(keys) < 4096:
                keys[k] = key
        if key not in out:
            out[key] = v
    return out


# The SYSCALL record as the kernel writes it (audit_log_exit + audit_log_task_info), matched in one
# pass: arch, syscall, exit (absent for exit/exit_group), a0-a3, then the process identity span
# (ppid .. exe) with ppid and pid. Records in another layout fall back to `parse_fields`.
SYSCALL_RE = re.compile(
    rb"arch=([0-9a-f]+) syscall=(\d+)(?: success=\w+ exit=(-?\d+))? a0=([0-9a-f]+) a1=([0-9a-f]+) "
    rb"a2=([0-9a-f]+) a3=([0-9a-f]+) items=\d+ (ppid=(\d+) pid=(\d+) auid=\d+ uid=\d+ gid=\d+ euid=\d+ "
    rb"suid=\d+ fsuid=\d+ egid=\d+ sgid=\d+ fsgid=\d+ tty=\S+ ses=\d+ comm=\S+ exe=\S+)")
# SYSCALL_RE in two parts: the head (arguments, exit: new in every record) and the process
# identity, which a process repeats in every record until something about it changes. The
# identity's groups are remembered by the text after the head, so a process's records after its
# first cost the head match and one lookup. Same result as SYSCALL_RE (it is the two joined).
_SYSCALL_HEAD_RE = re.compile(
    rb"arch=([0-9a-f]+) syscall=(\d+)(?: success=\w+ exit=(-?\d+))? a0=([0-9a-f]+) a1=([0-9a-f]+) "
    rb"a2=([0-9a-f]+) a3=([0-9a-f]+) items=\d+ ")
_SYSCALL_IDENT_RE = re.compile(
    rb"(ppid=(\d+) pid=(\d+) auid=\d+ uid=\d+ gid=\d+ euid=\d+ suid=\d+ fsuid=\d+ egid=\d+ sgid=\d+ "
    rb"fsgid=\d+ tty=\S+ ses=\d+ comm=\S+ exe=\S+)")
_IDENTS: dict[bytes, tuple | None] = {}
_IDENTS_MAX = 4096
_IDENT_KEYS = (b"ppid", b"pid", b"auid", b"uid", b"gid", b"euid", b"suid", b"fsuid", b"egid", b"sgid", b"fsgid",
               b"tty", b"ses", b"comm", b"exe")


def syscall_groups(body: bytes, pos: int = 0, endpos: int | None = None) -> tuple | None:
    """(arch, syscall, exit, a0, a1, a2, a3, identity span, ppid, pid) as bytes tokens (exit may be
    None), from a SYSCALL record body (`body[pos:endpos]`: a record in its datagram is read in
    place); None when it has no arch/syscall/pid."""
    if endpos is None:
        endpos = len(body)
    m = _SYSCALL_HEAD_RE.match(body, pos, endpos)
    if m is not None:
        rest = body[m.end():endpos]
        ident = _IDENTS.get(rest)
        if ident is None and rest not in _IDENTS:
            mi = _SYSCALL_IDENT_RE.match(rest)
            ident = mi.groups() if mi is not None else None
            if len(_IDENTS) >= _IDENTS_MAX:
                _IDENTS.clear()
            _IDENTS[rest] = ident
        if ident is not None:
            return m.groups() + ident
    return _syscall_fields(body[pos:endpos])


def _syscall_fields(body: bytes) -> tuple | None:
    """`syscall_groups` for a record in another layout."""
    f = parse_fields(body)
    if "arch" not in f or "syscall" not in f or "pid" not in f:
        return None
    span = b" ".join(k + b"=" + f[k.decode()] for k in _IDENT_KEYS if k.decode() in f)
    return (f["arch"], f["syscall"], f.get("exit"), f.get("a0", b"0"), f.get("a1", b"0"), f.get("a2", b"0"),
            f.get("a3", b"0"), span, f.get("ppid", b"0"), f["pid"])


# A PATH record: item, name, and (for an existing object) inode, dev, mode; nametype.
PATH_RE = re.compile(
    rb"item=(\d+) name=(\S+) (?:inode=(\d+) dev=([0-9a-f]+):([0-9a-f]+) mode=([0-7]+) .*?)?nametype=(\w+)")
# The same groups for the layout the kernel writes (audit_log_name: ouid, ogid, rdev, an LSM
# label, then nametype), without PATH_RE's scan for nametype; PATH_RE takes what it misses.
PATH_FAST_RE = re.compile(
    rb"item=(\d+) name=(\S+) (?:inode=(\d+) dev=([0-9a-f]+):([0-9a-f]+) mode=([0-7]+) ouid=\d+ ogid=\d+ "
    rb"rdev=[0-9a-f]+:[0-9a-f]+ (?:obj=[^ =]+ )?)?nametype=(\w+)")

_PATHS: dict[bytes, tuple] = {}  # PATH bodies repeat (a program opens the same files): parsed once
_PATHS_MAX = 4096


def path_item(body: bytes) -> tuple:
    """A PATH record body as (item, name token, inode, dev major, dev minor, mode, nametype),
    bytes tokens (None where absent)."""
    got = _PATHS.get(body)
    if got is not None:
        return got
    m = PATH_FAST_RE.match(body) or PATH_RE.match(body)
    if m is not None:
        got = m.groups()
    else:
        f = parse_fields(body)
        dev = f.get("dev", b"")
        ma, _, mi = dev.partition(b":")
        got = (f.get("item", b"0"), f.get("name"), f.get("inode"), ma or None, mi or None, f.get("mode"),
               f.get("nametype", b""))
    if len(_PATHS) >= _PATHS_MAX:
        _PATHS.clear()
    _PATHS[body] = got
    return got


def untrusted(token: bytes | None) -> str | None:
    """An "untrusted string" field (comm, exe, name, cwd, aN, proctitle, key): quoted text, hex
    bytes when it held anything unsafe, or `(null)`. Undecodable hex is returned as written."""
    if token is None or token == b"(null)":
        return None
    if len(token) >= 2 and token[:1] == b'"' and token[-1:] == b'"':
        return token[1:-1].decode("utf-8", "surrogateescape")
    try:
        return bytes.fromhex(token.decode("ascii")).decode("utf-8", "surrogateescape")
    except (ValueError, UnicodeDecodeError):
        return token.decode("utf-8", "replace")


def untrusted_bytes(token: bytes | None) -> bytes | None:
    if token is None or token == b"(null)":
        return None
    if len(token) >= 2 and token[:1] == b'"' and token[-1:] == b'"':
        return token[1:-1]
    try:
        return bytes.fromhex(token.decode("ascii"))
    except ValueError:
        return token


def number(token: bytes | None, base: int = 10, default: int = 0) -> int:
    if token is None:
        return default
    try:
        return int(token, base)
    except ValueError:
        return default


def signed_hex64(token: bytes | None) -> int:
    """A syscall argument (aN in SYSCALL): hex of the 64-bit register, as a signed value."""
    v = number(token, 16)
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass
class SockAddr:
    """A decoded `struct sockaddr` from a SOCKADDR record."""

    family: int
    addr: str = ""  # IP text, unix path (abstract: leading "@"), or "" unknown
    port: int = 0

    @property
    def family_name(self) -> str:
        return {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix",
                socket.AF_NETLINK: "netlink"}.get(self.family, str(self.family))


def parse_sockaddr(raw: bytes) -> SockAddr:
    """Decode sockaddr bytes (family in host order, port in network order)."""
    if len(raw) < 2:
        raise GarbledRecord("sockaddr shorter than its family")
    (family,) = struct.unpack_from("=H", raw)
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from("!H", raw, 2)[0]
        return SockAddr(family, socket.inet_ntop(socket.AF_INET, raw[4:8]), port)
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from("!H", raw, 2)[0]
        return SockAddr(family, socket.inet_ntop(socket.AF_INET6, raw[8:24]), port)
    if family == socket.AF_UNIX:
        path = raw[2:]
        if path[:1] == b"\0":
            return SockAddr(family, "@" + path[1:].split(b"\0", 1)[0].decode("utf-8", "replace"))
        return SockAddr(family, path.split(b"\0", 1)[0].decode("utf-8", "replace"))
    return SockAddr(family)


def execve_args(records: list[dict[str, bytes]]) -> list[str]:
    """argv from the EXECVE record(s) of one event.

    Forms: `argc=N a0="x" a1=hex`, long arguments as `aI_len=L aI[0]=hex aI[1]=hex ...`, and
    one argv spread over several EXECVE records (continuation records carry no argc).
    """
    fields: dict[str, bytes] = {}
    for r in records:
        for k, v in r.items():
            fields.setdefault(k, v)
    argc = number(fields.get("argc"), default=-1)
    if argc < 0:
        argc = sum(1 for k in fields if k[:1] == "a" and k[1:].isdigit())
    args: list[str] = []
    for i in range(argc):
        key = f"a{i}"
        if key in fields:
            args.append(untrusted(fields[key]) or "")
            continue
        if f"{key}_len" in fields or f"{key}[0]" in fields:
            parts: list[bytes] = []
            j = 0
            while f"{key}[{j}]" in fields:
                parts.append(untrusted_bytes(fields[f"{key}[{j}]"]) or b"")
                j += 1
            args.append(b"".join(parts).decode("utf-8", "surrogateescape"))
            continue
        break  # the rest of argv was not logged (audit truncates huge argv)
    return args


def proctitle(token: bytes | None) -> list[str]:
    raw = untrusted_bytes(token)
    if not raw:
        return []
    return [p.decode("utf-8", "surrogateescape") for p in raw.rstrip(b"\0").split(b"\0")]
