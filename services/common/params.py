"""Event parameter values: wire bytes <-> typed Python values, per libs' PT_* parameter types.

One decoder/encoder pair per type, so that the .scap reader, the .scap writer and the bus codec
agree on what a parameter value is:

- integers (every numeric, flags, fd, pid, errno, uid... type) -> int; PT_DOUBLE -> float
- PT_CHARBUF / PT_FSPATH / PT_FSRELPATH -> str (UTF-8, undecodable bytes kept by surrogateescape)
- PT_BYTEBUF (I/O data, NUL-separated lists) and the rare array types -> bytes
- PT_IPV4ADDR / PT_IPV6ADDR / PT_IPADDR -> str in the usual text form
- PT_SOCKADDR -> (family, ip, port) for INET/INET6, (family, path) for UNIX, (family,) otherwise
- PT_SOCKTUPLE -> (family, sip, sport, dip, dport) for INET/INET6, (family, src, dst, path) for UNIX
- PT_FDLIST -> ((fd, flags), ...)
- PT_DYN -> (index, value) with value typed per the param's dynamic table
- an empty parameter (length 0, "not available") -> None
- a fixed-size parameter whose length is wrong -> the raw bytes (never guess)

Every integer is in the producer's byte order: little-endian almost always, big-endian in a
section written on a big-endian host (s390x). Each table exists for both orders (`ORDERS`: "<"
little, ">" big), built once, so a reader picks a whole table per section and never branches
per value. IP addresses are network-order bytes in both; ports are host order, so they follow the
section's byte order like every other integer.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any

from tiercel.common import eventtable as et

# Families, as PPM_AF_* (same numbers as Linux for these).
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10

ENC = "utf-8"
ERRORS = "surrogateescape"

ORDERS = ("<", ">")  # struct prefixes: little-endian, big-endian
BYTEORDERS = {"little": "<", "big": ">"}  # int.to_bytes names -> struct prefixes


def _fixed_structs(order: str) -> dict[str, struct.Struct]:
    return {name: struct.Struct(order + code) for name, (_val, kind, _size, code) in et.PARAM_TYPES.items()
            if kind == "fixed" and code}


FIXED_BY_ORDER: dict[str, dict[str, struct.Struct]] = {o: _fixed_structs(o) for o in ORDERS}
_FIXED = FIXED_BY_ORDER["<"]

STRING_TYPES = frozenset({"PT_CHARBUF", "PT_FSPATH", "PT_FSRELPATH"})
ADDRESS_TYPES = frozenset({"PT_IPV4ADDR", "PT_IPV6ADDR", "PT_IPADDR"})  # fixed size or not: text values
RAW_TYPES = frozenset({"PT_BYTEBUF", "PT_CHARBUFARRAY", "PT_CHARBUF_PAIR_ARRAY", "PT_IPV4NET",
                       "PT_IPV6NET", "PT_IPNET", "PT_NONE", "PT_MAX"})

Decoder = Callable[[Any, int, int], Any]  # (buffer, offset, length) -> value
Encoder = Callable[[Any], bytes]

def _dec_fixed(st: struct.Struct) -> Decoder:
    size = st.size
    unpack = st.unpack_from

    def dec(buf, off: int, ln: int) -> Any:
        if ln == size:
            return unpack(buf, off)[0]
        return None if ln == 0 else bytes(buf[off:off + ln])
    return dec


def _dec_str(buf, off: int, ln: int) -> str | None:
    if ln == 0:
        return None
    end = off + ln
    if buf[end - 1] == 0:
        end -= 1
    return bytes(buf[off:end]).decode(ENC, ERRORS)


def _dec_raw(buf, off: int, ln: int) -> bytes | None:
    return bytes(buf[off:off + ln]) if ln else None


def _ip4(b) -> str:
    return socket.inet_ntop(socket.AF_INET, bytes(b))


def _ip6(b) -> str:
    return socket.inet_ntop(socket.AF_INET6, bytes(b))


def _dec_ipv4(buf, off, ln):
    if ln == 4:
        return _ip4(buf[off:off + 4])
    return None if ln == 0 else bytes(buf[off:off + ln])


def _dec_ipv6(buf, off, ln):
    if ln == 16:
        return _ip6(buf[off:off + 16])
    return None if ln == 0 else bytes(buf[off:off + ln])


def _dec_ipaddr(buf, off, ln):
    if ln == 4:
        return _ip4(buf[off:off + 4])
    if ln == 16:
        return _ip6(buf[off:off + 16])
    return None if ln == 0 else bytes(buf[off:off + ln])


def _cstr(buf, off: int, end: int) -> str:
    b = bytes(buf[off:end])
    i = b.find(b"\0")
    if i >= 0:
        b = b[:i]
    return b.decode(ENC, ERRORS)


def _special_decoders(order: str) -> dict[str, Decoder]:
    """The composite types whose integers (ports, unix socket pointers, fd list entries) follow
    the byte order; their addresses are network-order bytes whatever the order."""
    port = struct.Struct(order + "H").unpack_from
    ptr = struct.Struct(order + "Q").unpack_from
    count = struct.Struct(order + "H").unpack_from
    entry = struct.Struct(order + "qH").unpack_from

    def sockaddr(buf, off, ln):
        if ln == 0:
            return None
        fam = buf[off]
        if fam == AF_INET and ln >= 7:
            return (fam, _ip4(buf[off + 1:off + 5]), port(buf, off + 5)[0])
        if fam == AF_INET6 and ln >= 19:
            return (fam, _ip6(buf[off + 1:off + 17]), port(buf, off + 17)[0])
        if fam == AF_UNIX:
            return (fam, _cstr(buf, off + 1, off + ln))
        if ln == 1:
            return (fam,)
        return bytes(buf[off:off + ln])

    def socktuple(buf, off, ln):
        if ln == 0:
            return None
        fam = buf[off]
        if fam == AF_INET and ln >= 13:
            return (fam, _ip4(buf[off + 1:off + 5]), port(buf, off + 5)[0],
                    _ip4(buf[off + 7:off + 11]), port(buf, off + 11)[0])
        if fam == AF_INET6 and ln >= 37:
            return (fam, _ip6(buf[off + 1:off + 17]), port(buf, off + 17)[0],
                    _ip6(buf[off + 19:off + 35]), port(buf, off + 35)[0])
        if fam == AF_UNIX and ln >= 17:
            return (fam, ptr(buf, off + 1)[0], ptr(buf, off + 9)[0], _cstr(buf, off + 17, off + ln))
        if ln == 1:
            return (fam,)
        return bytes(buf[off:off + ln])

    def fdlist(buf, off, ln):
        if ln == 0:
            return None
        if ln < 2:
            return bytes(buf[off:off + ln])
        n = count(buf, off)[0]
        if 2 + n * 10 != ln:
            return bytes(buf[off:off + ln])
        return tuple(entry(buf, off + 2 + 10 * i) for i in range(n))

    return {"PT_SOCKADDR": sockaddr, "PT_SOCKTUPLE": socktuple, "PT_FDLIST": fdlist,
            "PT_IPV4ADDR": _dec_ipv4, "PT_IPV6ADDR": _dec_ipv6, "PT_IPADDR": _dec_ipaddr}


def _by_type(order: str, special: dict[str, Any], fixed: Callable[[struct.Struct], Any], string: Any,
             raw: Any) -> dict[str, Any]:
    """One codec per parameter type (decoders or encoders): the special ones first (the address
    types have a fixed size too, but travel as text), then fixed-size, string, raw bytes."""
    sizes = FIXED_BY_ORDER[order]
    return {name: special[name] if name in special
            else fixed(sizes[name]) if name in sizes
            else string if name in STRING_TYPES
            else raw
            for name in et.PARAM_TYPES}


DECODERS_BY_ORDER: dict[str, dict[str, Decoder]] = {
    o: _by_type(o, _special_decoders(o), _dec_fixed, _dec_str, _dec_raw) for o in ORDERS}
DECODERS = DECODERS_BY_ORDER["<"]


def _dyn_decoder(table: str, order: str) -> Decoder:
    decs = DECODERS_BY_ORDER[order]
    rows = [decs[t] for t, _fmt in et.DYN_TABLES[table]]

    def dec(buf, off, ln):
        if ln == 0:
            return None
        idx = buf[off]
        if idx >= len(rows):
            return bytes(buf[off:off + ln])
        return (idx, rows[idx](buf, off + 1, ln - 1))
    return dec


def decoder(p: et.ParamInfo, order: str = "<") -> Decoder:
    """The decoder of one schema parameter, for a section of byte order `order` ("<" or ">")."""
    if p.type == "PT_DYN" and p.dyn:
        return _dyn_decoder(p.dyn, order)
    return DECODERS_BY_ORDER[order][p.type]


# --- encoding (the exact inverse) ---------------------------------------------------------------

def _enc_fixed(st: struct.Struct) -> Encoder:
    pack = st.pack

    def enc(v) -> bytes:
        if v is None:
            return b""
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        return pack(v)
    return enc


def _enc_str(v) -> bytes:
    if v is None:
        return b""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    return v.encode(ENC, ERRORS) + b"\0"


def _enc_raw(v) -> bytes:
    return b"" if v is None else bytes(v)


def _pton(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


def _enc_ip(v) -> bytes:
    if v is None:
        return b""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    return _pton(v)


def _special_encoders(order: str) -> dict[str, Encoder]:
    port = struct.Struct(order + "H").pack
    ptr = struct.Struct(order + "Q").pack
    entry = struct.Struct(order + "qH").pack

    def sockaddr(v) -> bytes:
        if v is None:
            return b""
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        fam = v[0]
        if fam in (AF_INET, AF_INET6) and len(v) == 3:
            return bytes((fam,)) + _pton(v[1]) + port(v[2])
        if fam == AF_UNIX and len(v) == 2:
            return bytes((fam,)) + v[1].encode(ENC, ERRORS) + b"\0"
        return bytes((fam,))

    def socktuple(v) -> bytes:
        if v is None:
            return b""
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        fam = v[0]
        if fam in (AF_INET, AF_INET6) and len(v) == 5:
            return bytes((fam,)) + _pton(v[1]) + port(v[2]) + _pton(v[3]) + port(v[4])
        if fam == AF_UNIX and len(v) == 4:
            return bytes((fam,)) + ptr(v[1]) + ptr(v[2]) + v[3].encode(ENC, ERRORS) + b"\0"
        return bytes((fam,))

    def fdlist(v) -> bytes:
        if v is None:
            return b""
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        return port(len(v)) + b"".join(entry(fd, fl) for fd, fl in v)

    return {"PT_SOCKADDR": sockaddr, "PT_SOCKTUPLE": socktuple, "PT_FDLIST": fdlist,
            "PT_IPV4ADDR": _enc_ip, "PT_IPV6ADDR": _enc_ip, "PT_IPADDR": _enc_ip}


ENCODERS_BY_ORDER: dict[str, dict[str, Encoder]] = {
    o: _by_type(o, _special_encoders(o), _enc_fixed, _enc_str, _enc_raw) for o in ORDERS}
ENCODERS = ENCODERS_BY_ORDER["<"]


def _dyn_encoder(table: str, order: str) -> Encoder:
    encs = ENCODERS_BY_ORDER[order]
    rows = [encs[t] for t, _fmt in et.DYN_TABLES[table]]

    def enc(v) -> bytes:
        if v is None:
            return b""
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        idx, val = v
        return bytes((idx,)) + rows[idx](val)
    return enc


def encoder(p: et.ParamInfo, order: str = "<") -> Encoder:
    if p.type == "PT_DYN" and p.dyn:
        return _dyn_encoder(p.dyn, order)
    return ENCODERS_BY_ORDER[order][p.type]


# Per-(code, order) plans, built on first use.
_DEC_PLANS: dict[tuple[int, str], tuple[Decoder, ...]] = {}
_ENC_PLANS: dict[tuple[int, str], tuple[Encoder, ...]] = {}


def decoders_for(code: int, order: str = "<") -> tuple[Decoder, ...]:
    plan = _DEC_PLANS.get((code, order))
    if plan is None:
        info = et.info(code)
        plan = tuple(decoder(p, order) for p in info.params) if info else ()
        _DEC_PLANS[code, order] = plan
    return plan


def encoders_for(code: int, order: str = "<") -> tuple[Encoder, ...]:
    plan = _ENC_PLANS.get((code, order))
    if plan is None:
        info = et.info(code)
        plan = tuple(encoder(p, order) for p in info.params) if info else ()
        _ENC_PLANS[code, order] = plan
    return plan


def encode_params(code: int, params, order: str = "<") -> list[bytes]:
    """Wire bytes of each parameter of an event (params beyond the schema must be bytes)."""
    encs = encoders_for(code, order)
    n = len(encs)
    return [encs[i](v) if i < n else _enc_raw(v) for i, v in enumerate(params)]


def decode_param(code: int, index: int, raw: bytes, order: str = "<") -> Any:
    decs = decoders_for(code, order)
    if index >= len(decs):
        return raw
    return decs[index](raw, 0, len(raw))
