"""Generated parameter decoders: one straight-line Python function per (event code, nparams).

The generic decoders in `tiercel.common.params` cost a function call per parameter; the reader
reads millions of events, so for each (code, nparams) it meets it compiles a function that
decodes all the parameters inline (fixed-size integers with one precompiled struct each, strings
and buffers by slicing) and falls back to the generic decoder only for composite types. Same
results as `params.decoders_for(code, order)`, which the tests check. One function per byte order
too: a big-endian section gets its own, so no decoder tests the order per value.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from tiercel.common import eventtable as et
from tiercel.common import params as P

Decoder = Callable[[Any, int, tuple], list]

_cache: dict[tuple[int, int, str], Decoder] = {}


def decoder(code: int, n: int, order: str = "<") -> Decoder:
    """The decoder of the first n parameters of `code` (extra ones stay raw bytes), for a section
    of byte order `order` ("<" little-endian, ">" big-endian)."""
    key = (code, n, order)
    fn = _cache.get(key)
    if fn is None:
        fn = _cache[key] = _build(code, n, order)
    return fn


def _build(code: int, n: int, order: str) -> Decoder:
    info = et.info(code)
    params = info.params if info is not None else ()
    env: dict[str, Any] = {"_ENC": P.ENC, "_ERR": P.ERRORS}
    fixed = P.FIXED_BY_ORDER[order]
    lines = ["def dec(b, o, L):"]
    vals = []
    for i in range(n):
        v = f"v{i}"
        vals.append(v)
        lines.append(f"    l = L[{i}]")
        p = params[i] if i < len(params) else None
        if p is None:
            lines.append(f"    {v} = b[o:o + l]")
        elif p.type in P.STRING_TYPES:
            lines.append("    if l:")
            lines.append("        e = o + l - 1 if b[o + l - 1] == 0 else o + l")
            lines.append(f"        {v} = b[o:e].decode(_ENC, _ERR)")
            lines.append("    else:")
            lines.append(f"        {v} = None")
        elif p.type == "PT_BYTEBUF":
            lines.append(f"    {v} = b[o:o + l] if l else None")
        elif p.type != "PT_DYN" and p.type in fixed and p.type not in P.ADDRESS_TYPES:
            st = fixed[p.type]
            env[f"_u{i}"] = st.unpack_from
            lines.append(f"    if l == {st.size}:")
            lines.append(f"        {v} = _u{i}(b, o)[0]")
            lines.append("    else:")
            lines.append(f"        {v} = b[o:o + l] if l else None")
        else:
            env[f"_d{i}"] = P.decoder(p, order)
            lines.append(f"    {v} = _d{i}(b, o, l)")
        lines.append("    o += l")
    lines.append(f"    return [{', '.join(vals)}]")
    src = "\n".join(lines) + "\n"
    exec(compile(src, f"<scap decoder {code}/{n}{order}>", "exec"), env)  # noqa: S102 - generated from the table
    return env["dec"]


def lens_struct(n: int, wide: bool, order: str = "<") -> struct.Struct:
    """The parameter length array of n parameters (u32 lengths for large-payload events)."""
    key = (n, wide, order)
    st = _LENS.get(key)
    if st is None:
        st = _LENS[key] = struct.Struct(f"{order}{n}{'I' if wide else 'H'}")
    return st


_LENS: dict[tuple[int, bool, str], struct.Struct] = {}
