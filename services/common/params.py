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

Addresses are network order on the wire, ports host (little-endian) order, as libs writes them.
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

_FIXED: dict[str, struct.Struct] = {}
for _name, (_val, _kind, _size, _code) in et.PARAM_TYPES.items():
    if _kind == "fixed" and _code:
        _FIXED[_name] = struct.Struct("<" + _code)

STRING_TYPES = frozenset({"PT_CHARBUF", "PT_FSPATH", "PT_FSRELPATH"})
RAW_TYPES = frozenset({"PT_BYTEBUF", "PT_CHARBUFARRAY", "PT_CHARBUF_PAIR_ARRAY", "PT_IPV4NET",
                       "PT_IPV6NET", "PT_IPNET", "PT_NONE", "PT_MAX"})

Decoder = Callable[[Any, int, int], Any]  # (buffer, offset, length) -> value
Encoder = Callable[[Any], bytes]

_H = struct.Struct("<H")
_Q = struct.Struct("<Q")
_q = struct.Struct("<q")


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


def _dec_sockaddr(buf, off, ln):
    if ln == 0:
        return None
    fam = buf[off]
    if fam == AF_INET and ln >= 7:
        return (fam, _ip4(buf[off + 1:off + 5]), _H.unpack_from(buf, off + 5)[0])
    if fam == AF_INET6 and ln >= 19:
        return (fam, _ip6(buf[off + 1:off + 17]), _H.unpack_from(buf, off + 17)[0])
    if fam == AF_UNIX:
        return (fam, _cstr(buf, off + 1, off + ln))
    if ln == 1:
        return (fam,)
    return bytes(buf[off:off + ln])


def _dec_socktuple(buf, off, ln):
    if ln == 0:
        return None
    fam = buf[off]
    if fam == AF_INET and ln >= 13:
        return (fam, _ip4(buf[off + 1:off + 5]), _H.unpack_from(buf, off + 5)[0],
                _ip4(buf[off + 7:off + 11]), _H.unpack_from(buf, off + 11)[0])
    if fam == AF_INET6 and ln >= 37:
        return (fam, _ip6(buf[off + 1:off + 17]), _H.unpack_from(buf, off + 17)[0],
                _ip6(buf[off + 19:off + 35]), _H.unpack_from(buf, off + 35)[0])
    if fam == AF_UNIX and ln >= 17:
        return (fam, _Q.unpack_from(buf, off + 1)[0], _Q.unpack_from(buf, off + 9)[0],
                _cstr(buf, off + 17, off + ln))
    if ln == 1:
        return (fam,)
    return bytes(buf[off:off + ln])


def _dec_fdlist(buf, off, ln):
    if ln == 0:
        return None
    if ln < 2:
        return bytes(buf[off:off + ln])
    n = _H.unpack_from(buf, off)[0]
    if 2 + n * 10 != ln:
        return bytes(buf[off:off + ln])
    return tuple(struct.unpack_from("<qH", buf, off + 2 + 10 * i) for i in range(n))


_DECODE_SPECIAL: dict[str, Decoder] = {
    "PT_SOCKADDR": _dec_sockaddr, "PT_SOCKTUPLE": _dec_socktuple, "PT_FDLIST": _dec_fdlist,
    "PT_IPV4ADDR": _dec_ipv4, "PT_IPV6ADDR": _dec_ipv6, "PT_IPADDR": _dec_ipaddr,
}
DECODERS: dict[str, Decoder] = {
    name: _dec_fixed(_FIXED[name]) if name in _FIXED
    else _dec_str if name in STRING_TYPES
    else _DECODE_SPECIAL.get(name, _dec_raw)
    for name in et.PARAM_TYPES
}


def _dyn_decoder(table: str) -> Decoder:
    rows = [DECODERS[t] for t, _fmt in et.DYN_TABLES[table]]

    def dec(buf, off, ln):
        if ln == 0:
            return None
        idx = buf[off]
        if idx >= len(rows):
            return bytes(buf[off:off + ln])
        return (idx, rows[idx](buf, off + 1, ln - 1))
    return dec


def decoder(p: et.ParamInfo) -> Decoder:
    """The decoder of one schema parameter."""
    if p.type == "PT_DYN" and p.dyn:
        return _dyn_decoder(p.dyn)
    return DECODERS[p.type]


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


def _enc_sockaddr(v) -> bytes:
    if v is None:
        return b""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    fam = v[0]
    if fam in (AF_INET, AF_INET6) and len(v) == 3:
        return bytes((fam,)) + _pton(v[1]) + _H.pack(v[2])
    if fam == AF_UNIX and len(v) == 2:
        return bytes((fam,)) + v[1].encode(ENC, ERRORS) + b"\0"
    return bytes((fam,))


def _enc_socktuple(v) -> bytes:
    if v is None:
        return b""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    fam = v[0]
    if fam in (AF_INET, AF_INET6) and len(v) == 5:
        return bytes((fam,)) + _pton(v[1]) + _H.pack(v[2]) + _pton(v[3]) + _H.pack(v[4])
    if fam == AF_UNIX and len(v) == 4:
        return bytes((fam,)) + _Q.pack(v[1]) + _Q.pack(v[2]) + v[3].encode(ENC, ERRORS) + b"\0"
    return bytes((fam,))


def _enc_fdlist(v) -> bytes:
    if v is None:
        return b""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    return _H.pack(len(v)) + b"".join(struct.pack("<qH", fd, fl) for fd, fl in v)


_ENCODE_SPECIAL: dict[str, Encoder] = {
    "PT_SOCKADDR": _enc_sockaddr, "PT_SOCKTUPLE": _enc_socktuple, "PT_FDLIST": _enc_fdlist,
    "PT_IPV4ADDR": _enc_ip, "PT_IPV6ADDR": _enc_ip, "PT_IPADDR": _enc_ip,
}
ENCODERS: dict[str, Encoder] = {
    name: _enc_fixed(_FIXED[name]) if name in _FIXED
    else _enc_str if name in STRING_TYPES
    else _ENCODE_SPECIAL.get(name, _enc_raw)
    for name in et.PARAM_TYPES
}


def _dyn_encoder(table: str) -> Encoder:
    rows = [ENCODERS[t] for t, _fmt in et.DYN_TABLES[table]]

    def enc(v) -> bytes:
        if v is None:
            return b""
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        idx, val = v
        return bytes((idx,)) + rows[idx](val)
    return enc


def encoder(p: et.ParamInfo) -> Encoder:
    if p.type == "PT_DYN" and p.dyn:
        return _dyn_encoder(p.dyn)
    return ENCODERS[p.type]


# Per-code plans, built on first use.
_DEC_PLANS: dict[int, tuple[Decoder, ...]] = {}
_ENC_PLANS: dict[int, tuple[Encoder, ...]] = {}


def decoders_for(code: int) -> tuple[Decoder, ...]:
    plan = _DEC_PLANS.get(code)
    if plan is None:
        info = et.info(code)
        plan = tuple(decoder(p) for p in info.params) if info else ()
        _DEC_PLANS[code] = plan
    return plan


def encoders_for(code: int) -> tuple[Encoder, ...]:
    plan = _ENC_PLANS.get(code)
    if plan is None:
        info = et.info(code)
        plan = tuple(encoder(p) for p in info.params) if info else ()
        _ENC_PLANS[code] = plan
    return plan


def encode_params(code: int, params) -> list[bytes]:
    """Wire bytes of each parameter of an event (params beyond the schema must be bytes)."""
    encs = encoders_for(code)
    n = len(encs)
    return [encs[i](v) if i < n else _enc_raw(v) for i, v in enumerate(params)]


def decode_param(code: int, index: int, raw: bytes) -> Any:
    encs = decoders_for(code)
    if index >= len(encs):
        return raw
    return encs[index](raw, 0, len(raw))
