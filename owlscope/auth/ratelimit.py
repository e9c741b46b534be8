"""Sign-in protection: failed attempts back off per account and per client address, and password
hashing (argon2id, 64 MiB and tens of milliseconds each) runs a bounded number at a time.

Failures are counted in memory per process, in a sliding window. After `free` failures in the
window, each further attempt must wait an exponentially growing delay (1 s, 2 s, 4 s ... capped at
`max_delay`) counted from the last failure; an attempt made earlier is refused without checking
the password, so guessing is slow even with the right password among the guesses. A success
clears the account's failures. The limits per address are looser (several people may share one).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from owlscope.errors import TooManyRequests


@dataclass(frozen=True)
class Policy:
    free: int  # failures in the window before backoff starts
    window: float  # seconds a failure is remembered
    max_delay: float  # the longest backoff, seconds


ACCOUNT_POLICY = Policy(free=5, window=900.0, max_delay=900.0)
ADDRESS_POLICY = Policy(free=20, window=900.0, max_delay=900.0)
_MAX_TRACKED = 100_000  # keys remembered at most; the oldest are dropped first


class _Counter:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._failures: dict[str, list[float]] = {}

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        times = self._recent(key, now)
        over = len(times) - self.policy.free
        if over <= 0:
            return 0.0
        delay = min(2.0 ** (over - 1), self.policy.max_delay)
        return max(0.0, times[-1] + delay - now)

    def fail(self, key: str, now: float) -> None:
        times = self._recent(key, now)
        times.append(now)
        self._failures[key] = times
        if len(self._failures) > _MAX_TRACKED:
            self._failures.pop(next(iter(self._failures)))

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if now - t < self.policy.window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times


class SignInLimiter:
    """Per-account and per-address backoff of failed sign-ins (one per process)."""

    def __init__(self, account: Policy = ACCOUNT_POLICY, address: Policy = ADDRESS_POLICY,
                 clock=time.monotonic) -> None:
        self._accounts = _Counter(account)
        self._addresses = _Counter(address)
        self._lock = threading.Lock()
        self._clock = clock

    def check(self, email: str, address: str | None) -> None:
        """TooManyRequests (with Retry-After) when this account or address must wait."""
        now = self._clock()
        with self._lock:
            wait = max(self._accounts.wait(_account(email), now),
                       self._addresses.wait(address or "", now) if address else 0.0)
        if wait > 0:
            seconds = math.ceil(wait)
            raise TooManyRequests(
                f"Too many failed sign-in attempts. Try again in {seconds} seconds.", retry_after=seconds,
            )

    def record(self, email: str, address: str | None, *, success: bool) -> None:
        now = self._clock()
        with self._lock:
            if success:
                self._accounts.clear(_account(email))
                return
            self._accounts.fail(_account(email), now)
            if address:
                self._addresses.fail(address, now)


def _account(email: str) -> str:
    return (email or "").strip().lower()


# ---- bounded password hashing ------------------------------------------------------------------
HASH_CONCURRENCY = 2  # argon2id at 64 MiB each: bounds memory and keeps CPU for everyone else
HASH_WAIT_SECONDS = 10.0
_hash_slots = threading.BoundedSemaphore(HASH_CONCURRENCY)


@contextmanager
def hashing_slot() -> Iterator[None]:
    """Hold one of HASH_CONCURRENCY password-hashing slots; TooManyRequests when none frees up
    within HASH_WAIT_SECONDS (a flood of sign-ins waits instead of exhausting memory)."""
    if not _hash_slots.acquire(timeout=HASH_WAIT_SECONDS):
        raise TooManyRequests("The server is busy checking passwords. Try again shortly.", retry_after=2)
    try:
        yield
    finally:
        _hash_slots.release()
