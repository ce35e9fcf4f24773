"""Falco's token bucket (`token_bucket.cpp`): `rate` tokens per second refill a bucket of
`max_burst`; each alert (or drop action) takes one token or is refused.

Sans-IO: the caller passes the monotonic time, so tests drive it without sleeping.
"""

from __future__ import annotations


class TokenBucket:
    """A bucket starting full. `rate == 0` means unlimited (Falco's `outputs.rate: 0`)."""

    __slots__ = ("rate", "max_burst", "tokens", "last")

    def __init__(self, rate: float, max_burst: int, now: float = 0.0):
        self.rate = float(rate)
        self.max_burst = max(1, int(max_burst))
        self.tokens = float(self.max_burst)
        self.last = now

    def claim(self, now: float, n: int = 1) -> bool:
        """Take `n` tokens if available; False (and nothing taken) if not."""
        if self.rate <= 0:
            return True
        if now > self.last:
            self.tokens = min(float(self.max_burst), self.tokens + (now - self.last) * self.rate)
            self.last = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def reconfigure(self, rate: float, max_burst: int) -> None:
        """New limits keep the current fill, capped at the new burst."""
        self.rate = float(rate)
        self.max_burst = max(1, int(max_burst))
        self.tokens = min(self.tokens, float(self.max_burst))
