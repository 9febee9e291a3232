"""ASGI middleware, plain (FastAPI's @app.middleware("http") costs about a millisecond per
layer and request: a task and a stream each)."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie

from starlette.datastructures import Headers

from .access import COOKIE, Sessions, Throttle, client_address, is_open, key_matches, too_many
from .openai_api import PREFIX as OPENAI_PREFIX
from .openai_api import openai_error, refusal_for
from .schemas import over_limit, problem

SECURITY_HEADERS = {
    # Scripts, styles and everything else come from this server only; no inline script.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
NEEDS_KEY = "this API needs a key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
KEYED = ("/api/", OPENAI_PREFIX, "/metrics", "/mcp")  # API paths: refused in their own shape without the key


def _offered(headers: Headers) -> str:
    """The key a client sent; '' if none."""
    authorization = headers.get("authorization", "")
    return authorization[7:] if authorization[:7].lower() == "bearer " else headers.get("x-api-key", "")


class Guard:
    """The security headers on every response; and, when an API key is set, the key (or the
    session cookie of a browser that signed in with it) for everything but the probes, the
    static files and the sign-in (access.py). A browser without it gets the sign-in page. A
    client address that sent too many wrong keys is refused with 429 for a while."""

    def __init__(
        self, app, api_key: str | None, sessions: Sessions | None, throttle: Throttle | None, signin_page: Callable
    ):
        self.app, self.api_key, self.sessions, self.throttle = app, api_key, sessions, throttle
        self.signin_page = signin_page
        self.headers = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

    def _signed_in(self, headers: Headers) -> bool:
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except CookieError:
            return False
        session = cookies.get(COOKIE)
        return session is not None and self.sessions.valid(session.value)

    def _refusal(self, scope):
        """None to let the request in, else the response that refuses it."""
        if not self.api_key or is_open(scope["path"]):
            return None
        headers = Headers(scope=scope)
        if self._signed_in(headers):  # a session is no guess at the key: never throttled
            return None
        address = client_address(scope)
        wait = self.throttle.wait(address)
        if wait:
            return self._refuse(scope["path"], 429, too_many(wait), {"Retry-After": str(wait)})
        offered = _offered(headers)
        if key_matches(offered, self.api_key):
            return None
        if offered:  # no key at all is no guess
            self.throttle.failed(address)
        return self._refuse(scope["path"], 401, NEEDS_KEY, {"WWW-Authenticate": "Bearer"})

    def _refuse(self, path: str, status: int, detail: str, headers: dict):
        """In the shape of what was asked: OpenAI's under /v1, ours under /api, else the sign-in form."""
        throttled = status == 429
        if path.startswith(OPENAI_PREFIX):
            if throttled:
                return openai_error(429, detail, "requests", code="rate_limit_exceeded", headers=headers)
            return openai_error(401, detail, code="invalid_api_key", headers=headers)
        if path.startswith(KEYED):
            return problem(status, detail, headers=headers)
        if throttled:  # the form says when to come back
            return self.signin_page(f"{detail.capitalize()}.", status=429, headers=headers)
        return self.signin_page(None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            return await refusal(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """A body over ``limit`` bytes (``larger[path]`` for those paths) gets 413 before it is read
    whole, whether its Content-Length says so or it streams in chunks (then the app sees a disconnect)."""

    def __init__(self, app, limit: int, larger: dict[str, int] | None = None):
        self.app, self.default, self.larger = app, limit, larger or {}

    async def _refuse(self, scope, receive, send, limit: int) -> None:
        await refusal_for(scope["path"], 413, over_limit(limit))(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.larger.get(scope["path"], self.default)
        headers = dict(scope["headers"])
        if b"content-length" in headers and b"transfer-encoding" in headers:
            # Two lengths that a proxy and this server may read differently: request smuggling.
            refusal = refusal_for(
                scope["path"], 400, "a request may not carry both Content-Length and Transfer-Encoding"
            )
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
