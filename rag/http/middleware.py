"""ASGI middleware, plain (FastAPI's @app.middleware("http") costs about a millisecond per
layer and request: a task and a stream each)."""

from __future__ import annotations

import hmac
import json

from starlette.datastructures import Headers

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
KEYED = ("/api/", OPENAI_PREFIX)  # the paths the key guards; the page and the probes stay open


def _has_key(headers: Headers, key: str) -> bool:
    """Compared in constant time, so response times do not tell how much of a guess was right."""
    authorization = headers.get("authorization", "")
    offered = authorization[7:] if authorization[:7].lower() == "bearer " else headers.get("x-api-key", "")
    return hmac.compare_digest(offered.encode(), key.encode())


class Guard:
    """The security headers on every response, and the API key for /api/* and /v1/* when one is set."""

    def __init__(self, app, api_key: str | None):
        self.app, self.api_key = app, api_key
        self.headers = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        path = scope["path"]
        if self.api_key and path.startswith(KEYED) and not _has_key(Headers(scope=scope), self.api_key):
            headers = {"WWW-Authenticate": "Bearer"}
            if path.startswith(OPENAI_PREFIX):
                refusal = openai_error(401, NEEDS_KEY, code="invalid_api_key", headers=headers)
            else:
                refusal = problem(401, NEEDS_KEY, headers=headers)
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

    @staticmethod
    async def _answer(send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _refuse(self, send, limit: int) -> None:
        await self._answer(send, 413, f"the body is over {self._size(limit)}")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.larger.get(scope["path"], self.default)
        headers = dict(scope["headers"])
        if b"content-length" in headers and b"transfer-encoding" in headers:
            # Two lengths that a proxy and this server may read differently: request smuggling.
            return await self._answer(send, 400, "a request may not carry both Content-Length and Transfer-Encoding")
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > limit:
            return await self._refuse(send, limit)
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
                await self._refuse(send, limit)
                return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message):
            if not refused:
                await send(message)

        await self.app(scope, counted_receive, send_unless_refused)
