"""A token bucket: what every "N at once, then R a second" bound here is.

Sans-IO: the caller passes `now` (a monotonic clock). Time that goes back
refills nothing.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """`burst` tokens at most, refilled at `rate` a second."""

    __slots__ = ("burst", "rate", "tokens", "at")

    def __init__(self, burst: float, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.at = now

    def available(self, now: float) -> float:
        """Tokens at `now` (refilled since the last look)."""
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
        return self.tokens

    def spend(self, n: float) -> None:
        self.tokens -= n

    def take(self, now: float) -> bool:
        """One token if there is one (True); False leaves the bucket as it was."""
        if self.available(now) < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def full(self, now: float) -> bool:
        return self.available(now) >= self.burst
