"""Errors of the condition language, with the position the Falco parser would report.

Falco reports a position as libsinsp's `pos_info`: `offset` is 0-based, `line` and `col` are
1-based, all counted in **bytes** of the UTF-8 condition text. The loader adds this position to the
YAML position of the condition node to build its "condition expression" location (spec §1.13).

Error classes the loader maps to load-result codes:
- `ParseError`: the text is not a condition (`LOAD_ERR_COMPILE_CONDITION`).
- `MacroError`: undefined macro or reference loop (`LOAD_ERR_VALIDATE`).
- `CompileError`: the condition parses but does not compile against the field catalog
  (`LOAD_ERR_COMPILE_CONDITION`; `LOAD_ERR_COMPILE_OUTPUT` for output formats). Its `is_unknown`
  tells the "unknown field / event type" class that `skip-if-unknown-filter` downgrades.
"""

from __future__ import annotations

from typing import NamedTuple

# Substrings of Falco's `err_is_unknown_type_or_field` (falco engine).
UNKNOWN_MARKERS = ("nonexistent field", "invalid formatting token", "unknown event type", "unknown filter:")


class Position(NamedTuple):
    offset: int = 0  # 0-based byte offset
    line: int = 1  # 1-based
    col: int = 1  # 1-based, in bytes

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


class ConditionError(Exception):
    """Base class: a message (Falco's text) and a position inside the condition."""

    def __init__(self, message: str, position: Position | None = None):
        super().__init__(message)
        self.message = message
        self.position = position or Position()

    @property
    def is_unknown(self) -> bool:
        """True for the class of errors `skip-if-unknown-filter` turns into a warning."""
        return is_unknown_error(self.message)

    def __str__(self) -> str:
        return self.message


class ParseError(ConditionError):
    """The condition text does not follow the grammar (spec §2.1-2.2)."""


class MacroError(ConditionError):
    """Undefined macro or macro reference loop (spec §2.10)."""


class CompileError(ConditionError):
    """The condition does not compile against the field catalog (spec §2.3-2.8, §2.12)."""


def is_unknown_error(message: str) -> bool:
    return any(m in message for m in UNKNOWN_MARKERS)
