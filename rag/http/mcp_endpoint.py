"""/mcp: the MCP tools (rag/mcp_server.py) over streamable HTTP, in `rag serve`. Stateless, with
JSON replies: every request stands alone, so the middleware (the key, body limits, hosts) sees
each one whole, and no session outlives a request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from ..answer.base import Answer
from ..errors import IndexInvalidError, RagError
from ..mcp_server import Gate, create_server
from .admission import Busy
from .runtime import Runtime

PATH = "/mcp"
T = TypeVar("T")


class ServerGate(Gate):
    """The tools through the server's readiness check and admission line, as /api/ask goes."""

    def __init__(self, runtime: Runtime):
        super().__init__(runtime.engine)
        self.runtime = runtime

    def _ready(self) -> None:
        if not self.runtime.ready.is_set():
            raise RagError(self.runtime.not_ready_detail())

    async def answer(self, question: str, top_k: int | None) -> Answer:
        self._ready()
        try:
            return await self.runtime.answer(question, top_k, ())
        except Busy as exc:
            raise RagError(str(exc)) from None

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        self._ready()
        try:
            return await self.runtime.admission.run(work, *args)
        except Busy as exc:
            raise RagError(str(exc)) from None

    def describe(self, exc: RagError) -> str:
        """Without the server's own folders; an index found damaged stops answers until a new build loads."""
        return self.runtime.unusable(exc) if isinstance(exc, IndexInvalidError) else self.runtime.public(str(exc))


def create(runtime: Runtime, body_limit: int) -> tuple[ASGIApp, StreamableHTTPSessionManager]:
    """The ASGI app that serves PATH, and the SDK's session manager, whose ``run()`` must hold the
    app's lifespan. The SDK's own Host check is off: the app's (RAG_ALLOWED_HOSTS) covers /mcp as
    it covers every other path, so that both agree."""
    server = create_server(ServerGate(runtime))
    app = server.streamable_http_app(
        streamable_http_path=PATH,
        json_response=True,
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=body_limit,
    )
    return app, server.session_manager
