"""Who may use the server when RAG_API_KEY is set: a client sending the key (``Authorization:
Bearer KEY`` or ``X-API-Key``), or a browser that signed in with it on the page and holds a
session cookie: a random id that the server keeps until sign-out or expiry, in memory (a restart,
and so a new key, ends every session). Wrong keys are throttled per client address. Only the
probes, the static files and the sign-in itself stay open."""

from __future__ import annotations

import hmac
import math
import secrets
import time
from collections import OrderedDict

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

COOKIE = "rag_session"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000  # live sessions kept (about 200 bytes each: 2 MB); past it the oldest ends
WRONG_KEYS = RateLimitItemPerMinute(5)  # per client address, in a moving window
OPEN_PATHS = ("/healthz", "/readyz", "/signin")
OPEN_PREFIXES = ("/static/",)


def key_matches(offered: str, key: str) -> bool:
    """Compared in constant time, so response times do not tell how much of a guess was right."""
    return hmac.compare_digest(offered.encode(), key.encode())


class Sessions:
    """The live sessions, oldest first: each a random id (the cookie's value) and the time it was
    issued; it expires SESSION_SECONDS later. Only the event loop's thread uses them (the routes
    that do are async), so no lock. The id alone is the secret: signing it would add nothing."""

    def __init__(self, limit: int = MAX_SESSIONS):
        self._issued: OrderedDict[str, float] = OrderedDict()
        self._limit = limit

    def issue(self) -> str:
        session = secrets.token_urlsafe(32)
        self._issued[session] = time.monotonic()
        while len(self._issued) > self._limit:
            self._issued.popitem(last=False)
        return session

    def valid(self, session: str | None) -> bool:
        """False for one made up, ended, expired, or from before a restart. An expired one is
        kept until it is the oldest past the limit: the count alone bounds the memory."""
        issued = self._issued.get(session) if session else None
        return issued is not None and time.monotonic() - issued <= SESSION_SECONDS

    def end(self, session: str | None) -> None:
        if session:
            self._issued.pop(session, None)


class Throttle:
    """Wrong keys per client address, in memory. Past WRONG_KEYS the address is refused until the
    oldest of them is a minute old, whatever key it sends (the right one too: else guessing on
    would still tell when a guess is right)."""

    def __init__(self):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def wait(self, address: str) -> int:
        """Seconds before ``address`` may send a key again; 0: now."""
        if self._limiter.test(WRONG_KEYS, address):
            return 0
        reset, _ = self._limiter.get_window_stats(WRONG_KEYS, address)
        return max(1, math.ceil(reset - time.time()))

    def failed(self, address: str) -> None:
        self._limiter.hit(WRONG_KEYS, address)


def client_address(scope) -> str:
    """The peer's address: behind a reverse proxy, the proxy's, unless uvicorn takes the client's
    from X-Forwarded-For (only for a proxy in RAG_TRUSTED_PROXIES; none by default)."""
    client = scope.get("client")
    return client[0] if client else ""


def too_many(wait: int) -> str:
    return f"too many wrong keys from this address: try again in {wait} seconds"


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
