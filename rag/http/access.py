"""Who may use the server when RAG_API_KEY is set: a client sending the key (``Authorization:
Bearer KEY`` or ``X-API-Key``), or a browser that signed in with it on the page and holds the
session cookie this module signs (itsdangerous: HMAC with a secret derived from the key, and an
expiry). Only the probes, the static files and the sign-in itself stay open."""

from __future__ import annotations

import hashlib
import hmac

from itsdangerous import BadSignature, TimestampSigner

COOKIE = "rag_session"
SESSION_SECONDS = 12 * 3600
OPEN_PATHS = ("/healthz", "/readyz", "/signin")
OPEN_PREFIXES = ("/static/",)
_SIGNED_IN = b"signed-in"


def key_matches(offered: str, key: str) -> bool:
    """Compared in constant time, so response times do not tell how much of a guess was right."""
    return hmac.compare_digest(offered.encode(), key.encode())


class Sessions:
    def __init__(self, key: str):
        # A new key ends every session signed with the old one.
        secret = hmac.new(key.encode(), b"rag session cookie", hashlib.sha256).digest()
        self._signer = TimestampSigner(secret, salt="rag-session")

    def issue(self) -> str:
        return self._signer.sign(_SIGNED_IN).decode("ascii")

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        try:
            return self._signer.unsign(token, max_age=SESSION_SECONDS) == _SIGNED_IN
        except BadSignature:  # tampered, expired, or from another key
            return False


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
