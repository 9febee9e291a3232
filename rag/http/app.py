"""The app factory: one FastAPI app over one engine, with the API and page routers, the
middleware, and error bodies that say what is wrong.

Answers run in the thread pool, at most ``max_running`` at once with ``max_waiting`` queued
behind; beyond that, or after ``queue_seconds`` in the queue, the answer is 503 at once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match

from ..engine import Engine
from ..errors import (
    BusyError,
    IndexInvalidError,
    InputError,
    NotFoundError,
    StorageError,
    UnsupportedTypeError,
)
from . import api, mcp_endpoint, metrics, openai_api, page
from .access import Sessions, Throttle
from .admission import Busy
from .middleware import BodyLimit, Guard
from .openai_api import refusal_for
from .runtime import Runtime
from .schemas import METHODS

MAX_BODY_BYTES = 64 * 1024
MULTIPART_OVERHEAD = 16 * 1024


def _describe(exc: RequestValidationError) -> str:
    """One readable line per problem, without echoing the input back."""
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            problems.append("the body is not valid JSON")
            continue
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "the request is not valid"


def _allowed(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at this request's path: each asked of the app's routes,
    which are FastAPI's wrappers of the included routers (their routes are not listed)."""
    return [
        method
        for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in app.router.routes)
    ]


def create_app(engine: Engine, on_fatal: Callable[[], None] | None = None) -> FastAPI:
    """The app for one engine. ``on_fatal`` runs if the engine cannot be made ready;
    ``app.state.runtime.failure`` then says why."""
    runtime = Runtime(engine, on_fatal)
    mcp_app, mcp_sessions = mcp_endpoint.create(runtime, MAX_BODY_BYTES)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with mcp_sessions.run():  # the task group the MCP requests run in
            runtime.start()
            yield
            runtime.stop()

    app = FastAPI(
        title="rag",
        summary="Answers questions about news articles with their own sentences, cited.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI would load its assets from a CDN; /openapi.json stays
        redoc_url=None,
        redirect_slashes=False,  # its redirect builds Location from the Host header a client chose
    )
    app.state.runtime = runtime
    # An upload's multipart body holds the file and a little more.
    upload_bytes = engine.settings.max_upload_mb * 1024 * 1024 + MULTIPART_OVERHEAD
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, larger={"/api/documents": upload_bytes})
    if engine.settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(engine.settings.allowed_hosts))
    key = engine.settings.api_key
    app.state.sessions, app.state.throttle = (Sessions(), Throttle()) if key else (None, None)
    # Added after the others, so outside them: every response carries its headers.
    app.add_middleware(
        Guard, api_key=key, sessions=app.state.sessions, throttle=app.state.throttle, signin_page=page.signin_page
    )
    # Outside the guard, so that its refusals are timed too.
    app.add_middleware(metrics.RequestMetrics, histogram=runtime.metrics.requests)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    app.include_router(page.router)
    app.include_router(api.router)
    app.include_router(openai_api.router)
    # POST only: stateless, /mcp never sends a message unasked, and a GET would open an event
    # stream that stays silent, holding its connection for as long as the client keeps it.
    app.add_route(mcp_endpoint.PATH, mcp_app, methods=["POST"], include_in_schema=False)
    app.include_router(metrics.router)

    def refusal(request: Request, status: int, detail: str, headers: dict | None = None) -> JSONResponse:
        """A refusal in the shape of the route's protocol, without the server's own folders."""
        return refusal_for(request.url.path, status, runtime.public(detail), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route whose path matches; a path served by several
            # (GET and DELETE /api/documents/{id}) allows all of theirs.
            headers["Allow"] = ", ".join(_allowed(app, request))
        cause = exc.__cause__  # FastAPI's body parsing failed for a reason JSON's own errors do not cover
        if exc.status_code == 400 and isinstance(cause, ValueError) and not isinstance(cause, UnicodeDecodeError):
            # e.g. a 4,400-digit number, past Python's limit for converting digits to an int
            return refusal(request, 422, f"the body is not valid JSON: {str(cause).split(';')[0]}")
        if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
            return refusal(request, 400, "the body is not UTF-8 text")
        if exc.status_code == 400 and isinstance(cause, RecursionError):  # json's C parser, about 1,000 deep
            return refusal(request, 422, "the body is not valid JSON: it is nested too deep")
        return refusal(request, exc.status_code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return refusal(request, 422, _describe(exc))

    @app.exception_handler(InputError)
    async def invalid_input(request: Request, exc: InputError) -> JSONResponse:
        status = 415 if isinstance(exc, UnsupportedTypeError) else 404 if isinstance(exc, NotFoundError) else 422
        return refusal(request, status, str(exc))

    @app.exception_handler(StorageError)
    async def no_room(request: Request, exc: StorageError) -> JSONResponse:
        return refusal(request, 507, str(exc))  # Insufficient Storage: the disk is full or read-only

    @app.exception_handler(BusyError)
    async def building(request: Request, exc: BusyError) -> JSONResponse:
        return refusal(request, 409, str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return refusal(request, 503, str(exc), headers={"Retry-After": "1"})

    @app.exception_handler(IndexInvalidError)
    async def unreadable_index(request: Request, exc: IndexInvalidError) -> JSONResponse:
        return refusal(request, 503, runtime.unusable(exc), headers={"Retry-After": "5"})

    return app
