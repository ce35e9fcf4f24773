"""Tokens of the condition language (spec §2.1), matched at a cursor.

Falco's parser has no separate token stream: what a token is depends on where the parser is
(numbers are tokens only after `<`/`<=`/`>`/`>=` and in transformer arguments, everything else
there is a bare string). So the lexer is a `Scanner`: a cursor over the text with one method per
token class, each of which either consumes a token (and remembers it as the last token, for
Falco's "unexpected token after '...'" message) or leaves the cursor where it was.

String escapes follow libsinsp's `escaping.cpp` and work on the UTF-8 bytes of the text, so
`"\\xc3\\xa9"` is `é` and a lone `"\\xff"` survives as the surrogate-escaped byte 0xff (values are
`str` decoded with `surrogateescape`, byte-exact).
"""

from __future__ import annotations

import re

from tiercel.rules.condition.errors import ParseError
from tiercel.rules.condition.nodes import SourceText

BLANKS = " \t\b\r\n"
IDENTIFIER = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
FIELD_NAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+")
FIELD_ARG_BARE = re.compile(r"[^\]\[\"'\s]+", re.ASCII)
HEX_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+")
NUMBER = re.compile(r"[+\-]?[0-9]+\.?[0-9]*(?:[eE][+\-][0-9]+)?")
BARE_STRING = re.compile(r"[^()\"'\s=,]+", re.ASCII)
BARE_STRING_FULL = re.compile(r"[^()\"'\s=,]+\Z", re.ASCII)
_BLANK_RUN = re.compile(r"[ \t\b\r\n]+")

_SIMPLE_ESCAPES = {ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t",
                   ord("\\"): b"\\", ord("/"): b"/"}
_HEX = frozenset(b"0123456789abcdefABCDEF")


def unescape(content: str, delimiter: str) -> str:
    """Decode the escapes of a quoted string's content; `delimiter` is `"` or `'`.

    Raises ValueError("unsupported string escape sequence") for anything else."""
    if "\\" not in content:
        return content
    raw = content.encode("utf-8", "surrogateescape")
    out = bytearray()
    i, n = 0, len(raw)
    delim = ord(delimiter)
    while i < n:
        c = raw[i]
        if c != 0x5C:  # backslash
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("unsupported string escape sequence")
        e = raw[i + 1]
        if e in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[e]
            i += 2
        elif e == delim:
            out.append(delim)
            i += 2
        elif e == 0x20:  # legacy quirk: "\ " is a backslash, the space is dropped
            out.append(0x5C)
            i += 2
        elif e == ord("x") and i + 3 < n and raw[i + 2] in _HEX and raw[i + 3] in _HEX:
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
        else:
            raise ValueError("unsupported string escape sequence")
    return out.decode("utf-8", "surrogateescape")


class Scanner:
    """A cursor over the condition text. `pos` is a character offset; `last` the last token."""

    __slots__ = ("text", "pos", "last", "src", "n")

    def __init__(self, text: str):
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.last = ""
        self.src = SourceText(text)

    # -- cursor state (for the few places where the parser backs off) --
    def save(self) -> tuple[int, str]:
        return self.pos, self.last

    def restore(self, state: tuple[int, str]) -> None:
        self.pos, self.last = state

    def at_end(self) -> bool:
        return self.pos >= self.n

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.n else ""

    def error(self, message: str, pos: int | None = None) -> ParseError:
        return ParseError(message, self.src.position(self.pos if pos is None else pos))

    # -- tokens --
    def blank(self) -> bool:
        """Skip blanks (space, \\t, \\b, \\r, \\n); True if there were any."""
        if self.pos < self.n and self.text[self.pos] in BLANKS:
            m = _BLANK_RUN.match(self.text, self.pos)
            self.pos = m.end()
            return True
        return False

    def literal(self, s: str) -> bool:
        if self.text.startswith(s, self.pos):
            self.pos += len(s)
            self.last = s
            return True
        return False

    def literal_any(self, options: tuple[str, ...]) -> str | None:
        for s in options:
            if self.text.startswith(s, self.pos):
                self.pos += len(s)
                self.last = s
                return s
        return None

    def word(self, options: tuple[str, ...]) -> str | None:
        """A word operator: one of `options` followed by at least one blank (consumed)."""
        for s in options:
            end = self.pos + len(s)
            if self.text.startswith(s, self.pos) and end < self.n and self.text[end] in BLANKS:
                self.pos = end
                self.last = s
                self.blank()
                return s
        return None

    def regex(self, rx: re.Pattern) -> str | None:
        m = rx.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        self.last = m.group()
        return self.last

    def quoted(self) -> str | None:
        """A quoted string; returns the unescaped content. The token ends at the first delimiter
        not preceded by a backslash (Falco's quirk: `"a\\\\"` does not end at its last quote)."""
        text, start = self.text, self.pos
        if start >= self.n:
            return None
        q = text[start]
        if q != '"' and q != "'":
            return None
        i = start + 1
        while True:
            j = text.find(q, i)
            if j < 0:
                return None
            if text[j - 1] != "\\" or j == start + 1:
                break
            i = j + 1
        self.pos = j + 1
        self.last = text[start:j + 1]
        try:
            return unescape(text[start + 1:j], q)
        except ValueError as e:
            raise self.error(str(e)) from None
