"""Failed sign-ins refuse further sign-ins, per client address and per account, before any
password is hashed.

Every way of giving a password counts (`POST /auth/signin`, HTTP basic auth on any API path, the
admin's login page): checking one costs ~0.7 s of CPU (PBKDF2 at Django's 1,000,000 iterations), so
an unlimited stream of wrong passwords is both a brute-force attempt and a way to burn the web
server's CPU. Past `SIGNIN_MAX_FAILURES_PER_ADDRESS` failures from one address, or
`SIGNIN_MAX_FAILURES_PER_ACCOUNT` on one account from anywhere, within `SIGNIN_FAILURE_WINDOW_S`
(a fixed window that starts at the first failure), sign-ins are refused until the window ends:
callers get 429 with `Retry-After`.

The per-account limit is the higher one: it is there for attempts spread over many addresses, and
while it holds the account's own owner cannot sign in with a password either (nothing is hashed, so
a right password cannot be told from a wrong one). Tokens and JWTs already issued keep working.

Counts live in the `signin` cache: Redis when the queue is on Redis (shared by every process),
otherwise each web process's memory (with gunicorn's N workers, up to N times the limits)."""

import math
import time

from django.conf import settings
from django.core.cache import caches

from .addresses import client_address
from .identity import account_for


def _cache():
    return caches["signin"]


def _subjects(request, identifier: str) -> list[tuple[str, int]]:
    """(cache key, limit) of what one sign-in counts against: its address and its account. An
    unknown name counts as an account of its own, so that unknown and known names behave alike."""
    account = account_for(request, identifier)
    name = f"user:{account.pk}" if account is not None else f"name:{(identifier or '').strip().lower()[:200]}"
    return [
        (f"signin-failures:address:{client_address(request)}", settings.SIGNIN_MAX_FAILURES_PER_ADDRESS),
        (f"signin-failures:{name}", settings.SIGNIN_MAX_FAILURES_PER_ACCOUNT),
    ]


def retry_after(request, identifier: str) -> int | None:
    """Seconds until a sign-in as `identifier` from this request's address may be tried again, or
    None when it may be tried now."""
    subjects = _subjects(request, identifier)
    keys = [key for key, _ in subjects] + [f"{key}:until" for key, _ in subjects]
    stored = _cache().get_many(keys)
    waits = [
        max(1, math.ceil(stored.get(f"{key}:until", time.time() + 1) - time.time()))
        for key, limit in subjects
        if stored.get(key, 0) >= limit
    ]
    return max(waits) if waits else None


def record_failure(request, identifier: str) -> None:
    cache, window = _cache(), settings.SIGNIN_FAILURE_WINDOW_S
    for key, _ in _subjects(request, identifier):
        if cache.add(key, 0, window):
            cache.set(f"{key}:until", time.time() + window, window)
        try:
            cache.incr(key)
        except ValueError:  # the window ended between add and incr
            cache.set(key, 1, window)
            cache.set(f"{key}:until", time.time() + window, window)
