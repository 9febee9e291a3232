"""The HTTP API and the chat page (FastAPI). The only module that imports fastapi.

The model and the index load in a background thread at start-up, so /healthz answers at
once and /readyz says 503 until answers can be given. The same thread then watches the index
folder and switches to a new build within a second or so; a build that fails to load is
logged and the one in use stays. Answers run in the thread pool, at most ``max_running`` at
once with ``max_waiting`` queued behind; beyond that, or after ``queue_seconds`` in the
queue, the answer is 503 at once rather than an ever longer queue.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, BeforeValidator, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from .answer import MAX_CITATIONS, MAX_QUESTION_CHARACTERS, in_reading_order
from .engine import Engine
from .errors import IndexMissingError, InputError, RagError
from .page import article_view

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
MAX_BODY_BYTES = 64 * 1024
RELOAD_SECONDS = 1.0  # how often the index folder is checked for a new build
SECURITY_HEADERS = {
    # Scripts, styles and everything else come from this server only; no inline script.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

log = logging.getLogger("rag.server")


def _whole_number(value: object) -> int:
    """JSON's 3 and 3.0 are the same number; "3", true and 2.5 are not whole numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise ValueError("must be a whole number")
    return int(value)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARACTERS, description="in any language")
    top_k: Annotated[int, Field(ge=1, le=MAX_CITATIONS), BeforeValidator(_whole_number)] | None = Field(
        default=None, description="most citations (default 3)"
    )


class CitationOut(BaseModel):
    id: int
    document: str
    sentence: int = Field(description="the sentence's number within its document, from 0")
    start: int = Field(description="character offset into the document's text")
    end: int
    text: str = Field(description="exactly the document's text[start:end]")
    score: float


class AskResponse(BaseModel):
    question: str
    abstained: bool
    answer: str
    citations: list[CitationOut] = Field(description="best first")


class DocumentOut(BaseModel):
    id: str
    title: str
    text: str


class Problem(BaseModel):
    detail: str


NOT_READY = {503: {"model": Problem, "description": "still loading, or too busy to answer now"}}
BAD_BODY = {
    400: {"model": Problem, "description": "the body cannot be read as text"},
    413: {"model": Problem, "description": "the body is over 64 KiB"},
    422: {"model": Problem, "description": "the request says what is wrong in detail"},
}


def _error(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


NEEDS_KEY = "this API needs a key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"


def _has_key(headers: Headers, key: str) -> bool:
    """Compared in constant time, so response times do not tell how much of a guess was right."""
    authorization = headers.get("authorization", "")
    offered = authorization[7:] if authorization[:7].lower() == "bearer " else headers.get("x-api-key", "")
    return hmac.compare_digest(offered.encode(), key.encode())


class Guard:
    """ASGI middleware: the security headers on every response, and the API key for /api/*
    when one is set. Plain ASGI: FastAPI's @app.middleware("http") costs about a millisecond
    per layer and request (a task and a stream each)."""

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

        if self.api_key and scope["path"].startswith("/api/") and not _has_key(Headers(scope=scope), self.api_key):
            refusal = _error(401, NEEDS_KEY, headers={"WWW-Authenticate": "Bearer"})
            return await refusal(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)


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


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes gets 413 before it is read whole, whether
    its Content-Length says so or it streams in chunks (then the app sees a disconnect)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"the body is over {self.limit // 1024} KiB"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await self._refuse(send)
        received = 0
        refused = False

        async def counted_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message):
            if not refused:
                await send(message)

        await self.app(scope, counted_receive, send_unless_refused)


class Busy(Exception):
    pass


class Admission:
    """At most ``running`` answers at once and ``waiting`` in line; the rest are refused."""

    def __init__(self, running: int, waiting: int, timeout: float):
        self._running = asyncio.Semaphore(running)
        self._capacity = running + waiting
        self._inside = 0  # changed only on the event loop, so no lock
        self._timeout = timeout

    async def run(self, work: Callable, *args):
        if self._inside >= self._capacity:
            raise Busy("too many questions at once; try again in a moment")
        self._inside += 1
        try:
            try:
                await asyncio.wait_for(self._running.acquire(), self._timeout)
            except TimeoutError:
                raise Busy("the server is busy; try again in a moment") from None
            try:
                return await run_in_threadpool(work, *args)
            finally:
                self._running.release()
        finally:
            self._inside -= 1


def create_app(engine: Engine, on_fatal: Callable[[], None] | None = None) -> FastAPI:
    """The app for one engine. ``on_fatal`` runs if the engine cannot be made ready."""
    ready = threading.Event()
    stopping = threading.Event()
    state = {"failure": None}
    settings = engine.settings
    admission = Admission(settings.max_running, settings.max_waiting, settings.queue_seconds)

    def prepare_then_watch() -> None:
        try:
            try:
                engine.load_index()
            except IndexMissingError:
                log.info("no index yet; building it from %s", settings.seeds_dir)
                engine.build_index()
            engine.answer("warm-up")  # loads model and index, and pays first-call costs now
            ready.set()
            log.info("ready")
        except RagError as exc:
            state["failure"] = exc
            log.error("cannot start: %s", exc)
            if on_fatal:
                on_fatal()
            return
        refused = None
        while not stopping.wait(RELOAD_SECONDS):
            try:
                if engine.refresh():
                    log.info("now serving %s", engine.index.generation)
                refused = None
            except RagError as exc:
                if str(exc) != refused:  # say it once, not every second
                    log.error("still serving %s; the new index cannot be used: %s", engine.index.generation, exc)
                refused = str(exc)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=prepare_then_watch, name="rag-index", daemon=True).start()
        yield
        stopping.set()

    app = FastAPI(
        title="rag",
        summary="Answers questions about news articles with their own sentences, cited.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI would load its assets from a CDN; /openapi.json stays
        redoc_url=None,
    )
    app.state.failure = lambda: state["failure"]
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(Guard, api_key=settings.api_key)  # added last, so outermost: every response
    templates = Jinja2Templates(directory=WEB_DIR / "templates")  # autoescapes .html
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")

    def page(request: Request, turns: list[dict], marked: set[tuple[str, int]], draft: str = "", status: int = 200):
        index = engine.index if ready.is_set() else None
        articles = []
        if index is not None:
            for document in index.documents.values():
                rows = {n for d, n in marked if d == document.id}
                articles.append(article_view(document, index.sentences, rows))
        context = {"turns": turns, "articles": articles, "draft": draft, "max_question": MAX_QUESTION_CHARACTERS}
        return templates.TemplateResponse(request, "page.html", context, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _describe(exc))

    @app.exception_handler(InputError)
    async def invalid_input(request: Request, exc: InputError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return _error(503, str(exc), headers={"Retry-After": "1"})

    def not_ready_detail() -> str:
        return f"not ready: {state['failure']}" if state["failure"] else "the model and index are still loading"

    def not_ready() -> JSONResponse:
        return _error(503, not_ready_detail(), headers={"Retry-After": "5"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request):
        if not ready.is_set():
            return page(request, [{"kind": "error", "text": not_ready_detail()}], set(), status=503)
        return page(request, [], set())

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    async def ask_from_form(request: Request):
        """The chat without JavaScript: the form posts here and gets the page with the answer."""
        body = await request.body()  # at most MAX_BODY_BYTES (BodyLimit)
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            fields = {}  # answered below as an empty question
        question = (fields.get("question") or [""])[0]
        turns = [{"kind": "question", "text": question}]
        if not ready.is_set():
            return page(request, [*turns, {"kind": "error", "text": not_ready_detail()}], set(), question, 503)
        try:
            answer = await admission.run(engine.answer, question)
        except InputError as exc:
            return page(request, [*turns, {"kind": "error", "text": f"Cannot ask that: {exc}."}], set(), question, 422)
        except Busy as exc:
            return page(request, [*turns, {"kind": "error", "text": f"{exc}."}], set(), question, 503)
        marked = set() if answer.abstained else {(c.document, c.sentence) for c in answer.citations}
        turns.append({"kind": "answer", "answer": answer, "reading_order": in_reading_order(answer.citations)})
        return page(request, turns, marked)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/readyz", responses=NOT_READY)
    def readyz():
        return {"status": "ready"} if ready.is_set() else not_ready()

    @app.post("/api/ask", response_model=AskResponse, responses={**BAD_BODY, **NOT_READY})
    async def ask(request: AskRequest):
        if not ready.is_set():
            return not_ready()
        answer = await admission.run(engine.answer, request.question, request.top_k)
        return answer.to_dict()

    @app.get(
        "/api/documents/{document_id}",
        response_model=DocumentOut,
        responses={404: {"model": Problem}, **NOT_READY},
    )
    def document(document_id: Annotated[str, PathParameter(examples=["000_8cb13a5d0c7818f1"])]):
        if not ready.is_set():
            return not_ready()
        found = engine.index.documents.get(document_id)
        if found is None:
            return _error(404, f"there is no document {document_id!r}")
        return {"id": found.id, "title": found.title, "text": found.text}

    return app
