"""Logging set-up shared by every service: one line per record on stderr, secrets never printed."""

from __future__ import annotations

import logging
import re
import sys

_LEVELS = {
    "emergency": logging.CRITICAL, "alert": logging.CRITICAL, "critical": logging.CRITICAL,
    "error": logging.ERROR, "warning": logging.WARNING, "notice": logging.INFO,
    "info": logging.INFO, "informational": logging.INFO, "debug": logging.DEBUG,
}

# user:password@ and token@ in URLs, and values of keys that hold secrets.
_SECRET = re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)|(://)[^:/@\s,]+(@)"
                     r"|((?:password|token|seed|secret)[\"']?\s*[=:]\s*[\"']?)[^\s\"',}]+", re.I)


def redact(text: str) -> str:
    """`text` with the secrets it may hold replaced by `***` (for logs and error lines)."""
    def repl(m: re.Match) -> str:
        if m.group(1):
            return m.group(1) + "***" + m.group(2)
        if m.group(3):
            return m.group(3) + "***" + m.group(4)
        return m.group(5) + "***"

    return _SECRET.sub(repl, text)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup(level: str = "info", service: str = "tiercel") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(f"%(asctime)s %(levelname)s {service}: %(message)s",
                                             "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    logging.getLogger("nats").setLevel(logging.CRITICAL)
