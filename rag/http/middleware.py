"""ASGI middleware, plain (FastAPI's @app.middleware("http") costs about a millisecond per
layer and request: a task and a stream each)."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie

from starlette.datastructures import Headers

from .access import COOKIE, Sessions, is_open, key_matches
from .openai_api import PREFIX as OPENAI_PREFIX
from .openai_api import openai_error
from .schemas import problem

SECURITY_HEADERS = {
    # Scripts, styles and everything else come from this server only; no inline script.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
NEEDS_KEY = "this API needs a key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
KEYED = ("/api/", OPENAI_PREFIX)  # API paths: refused in their own shape without the key


def _has_key(headers: Headers, key: str) -> bool:
    authorization = headers.get("authorization", "")
    offered = authorization[7:] if authorization[:7].lower() == "bearer " else headers.get("x-api-key", "")
    return key_matches(offered, key)


class Guard:
    """The security headers on every response; and, when an API key is set, the key (or the
    session cookie of a browser that signed in with it) for everything but the probes, the
    static files and the sign-in (access.py). A browser without it gets the sign-in page."""

    def __init__(self, app, api_key: str | None, sessions: Sessions | None, signin_page: Callable):
        self.app, self.api_key, self.sessions, self.signin_page = app, api_key, sessions, signin_page
        self.headers = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

    def _allowed(self, scope) -> bool:
        if not self.api_key or is_open(scope["path"]):
            return True
        headers = Headers(scope=scope)
        if _has_key(headers, self.api_key):
            return True
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except CookieError:
            return False
        session = cookies.get(COOKIE)
        return self.sessions is not None and self.sessions.valid(session.value if session else None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        path = scope["path"]
        if not self._allowed(scope):
            headers = {"WWW-Authenticate": "Bearer"}
            if path.startswith(OPENAI_PREFIX):
                refusal = openai_error(401, NEEDS_KEY, code="invalid_api_key", headers=headers)
            elif path.startswith(KEYED):
                refusal = problem(401, NEEDS_KEY, headers=headers)
            else:  # the page and its parts: sign in first
                refusal = self.signin_page(None)
            return await refusal(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """A body over ``limit`` bytes (``larger[path]`` for those paths) gets 413 before it is read
    whole, whether its Content-Length says so or it streams in chunks (then the app sees a disconnect)."""

    def __init__(self, app, limit: int, larger: dict[str, int] | None = None):
        self.app, self.default, self.larger = app, limit, larger or {}

    @staticmethod
    def _size(limit: int) -> str:
        return f"{limit // 1024 // 1024} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"

    async def _refuse(self, scope, receive, send, limit: int) -> None:
        await problem(413, f"the body is over {self._size(limit)}")(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.larger.get(scope["path"], self.default)
        headers = dict(scope["headers"])
        if b"content-length" in headers and b"transfer-encoding" in headers:
            # Two lengths that a proxy and this server may read differently: request smuggling.
            refusal = problem(400, "a request may not carry both Content-Length and Transfer-Encoding")
            return await refusal(scope, receive, send)
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > limit:
            return await self._refuse(scope, receive, send, limit)
        received = 0
        refused = False

        async def counted_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                refused = True
                await self._refuse(scope, receive, send, limit)
                return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message):
            if not refused:
                await send(message)

        await self.app(scope, counted_receive, send_unless_refused)
