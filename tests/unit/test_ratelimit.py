"""Sign-in backoff per account and per address, and the bound on concurrent password hashing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher

from owlscope.auth import passwords, ratelimit
from owlscope.auth.ratelimit import Policy, SignInLimiter
from owlscope.errors import TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock) -> SignInLimiter:
    return SignInLimiter(Policy(free=3, window=600, max_delay=60), Policy(free=10, window=600, max_delay=60),
                         clock=clock)


def test_an_account_backs_off_exponentially_after_the_free_failures() -> None:
    clock = Clock()
    lim = limiter(clock)
    for _ in range(3):
        lim.check("a@example.com", "1.2.3.4")
        lim.record("a@example.com", "1.2.3.4", success=False)
    lim.check("A@example.com ", "1.2.3.4")  # still free: 3 failures, case and spaces ignored
    lim.record("a@example.com", "1.2.3.4", success=False)
    with pytest.raises(TooManyRequests) as exc:
        lim.check("a@example.com", "5.6.7.8")  # another address does not help
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "1"
    clock.now += 1.1
    lim.check("a@example.com", "1.2.3.4")
    lim.record("a@example.com", "1.2.3.4", success=False)
    clock.now += 1.9
    with pytest.raises(TooManyRequests):
        lim.check("a@example.com", "1.2.3.4")  # 2 s after the fifth failure
    clock.now += 0.2
    lim.check("a@example.com", "1.2.3.4")
    lim.check("b@example.com", "1.2.3.4")  # other accounts are not affected


def test_the_delay_is_capped_and_failures_expire_and_success_clears() -> None:
    clock = Clock()
    lim = limiter(clock)
    for _ in range(20):
        lim.record("a@example.com", None, success=False)
    with pytest.raises(TooManyRequests) as exc:
        lim.check("a@example.com", None)
    assert int(exc.value.headers["Retry-After"]) <= 61
    clock.now += 601
    lim.check("a@example.com", None)  # forgotten after the window
    for _ in range(5):
        lim.record("a@example.com", None, success=False)
    lim.record("a@example.com", None, success=True)
    lim.check("a@example.com", None)


def test_an_address_guessing_many_accounts_backs_off() -> None:
    clock = Clock()
    lim = limiter(clock)
    for i in range(11):
        lim.record(f"user{i}@example.com", "9.9.9.9", success=False)
    with pytest.raises(TooManyRequests):
        lim.check("fresh@example.com", "9.9.9.9")
    lim.check("fresh@example.com", "8.8.8.8")


def test_password_hashing_runs_a_bounded_number_at_a_time(monkeypatch) -> None:
    active, peak = 0, 0
    lock = threading.Lock()

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str, password: str) -> bool:
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            try:
                time.sleep(0.02)
                return super().verify(hash, password)
            finally:
                with lock:
                    active -= 1

    monkeypatch.setattr(passwords, "_hasher", CountingHasher())
    monkeypatch.setattr(ratelimit, "HASH_WAIT_SECONDS", 300.0)  # a loaded CI machine is slow
    stored = passwords.hash_password("secret")
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: passwords.verify_password("secret", stored), range(6)))
    assert all(results)
    assert peak <= ratelimit.HASH_CONCURRENCY


def test_a_flood_waits_for_a_slot_and_is_refused_when_none_frees_up(monkeypatch) -> None:
    monkeypatch.setattr(ratelimit, "HASH_WAIT_SECONDS", 0.05)
    holders = [ratelimit.hashing_slot() for _ in range(ratelimit.HASH_CONCURRENCY)]
    for h in holders:
        h.__enter__()
    try:
        with pytest.raises(TooManyRequests):
            passwords.verify_password("x", passwords._dummy_hash())
    finally:
        for h in holders:
            h.__exit__(None, None, None)
