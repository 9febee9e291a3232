"""The HTTP API (FastAPI). The only module that imports fastapi.

The model and the index load in a background thread at start-up, so /healthz answers at
once and /readyz says 503 until answers can be given. Handlers are plain functions: FastAPI
runs them in its thread pool, and the engine is safe to share between threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, StrictInt

from .answer import MAX_CITATIONS, MAX_QUESTION_CHARACTERS
from .engine import Engine
from .errors import IndexMissingError, InputError, RagError

log = logging.getLogger("rag.server")


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARACTERS, description="in any language")
    top_k: StrictInt | None = Field(default=None, ge=1, le=MAX_CITATIONS, description="most citations (default 3)")


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


NOT_READY = {503: {"model": Problem, "description": "the model and index are still loading"}}


def _error(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


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


def create_app(engine: Engine, on_fatal: Callable[[], None] | None = None) -> FastAPI:
    """The app for one engine. ``on_fatal`` runs if the engine cannot be made ready."""
    ready = threading.Event()
    state = {"failure": None}

    def prepare() -> None:
        try:
            try:
                engine.load_index()
            except IndexMissingError:
                log.info("no index yet; building it from %s", engine.settings.seeds_dir)
                engine.build_index()
            engine.answer("warm-up")  # loads model and index, and pays first-call costs now
            ready.set()
            log.info("ready")
        except RagError as exc:
            state["failure"] = exc
            log.error("cannot start: %s", exc)
            if on_fatal:
                on_fatal()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=prepare, name="rag-prepare", daemon=True).start()
        yield

    app = FastAPI(
        title="rag",
        summary="Answers questions about news articles with their own sentences, cited.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI would load its assets from a CDN; /openapi.json stays
        redoc_url=None,
    )
    app.state.failure = lambda: state["failure"]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _describe(exc))

    @app.exception_handler(InputError)
    async def invalid_input(request: Request, exc: InputError) -> JSONResponse:
        return _error(422, str(exc))

    def not_ready() -> JSONResponse:
        detail = f"not ready: {state['failure']}" if state["failure"] else "the model and index are still loading"
        return _error(503, detail, headers={"Retry-After": "5"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return (
            '<!doctype html><html lang="en"><meta charset="utf-8"><title>rag</title>'
            "<p>rag is running. Ask with <code>POST /api/ask</code>; the chat page comes next.</p></html>"
        )

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/readyz", responses=NOT_READY)
    def readyz():
        return {"status": "ready"} if ready.is_set() else not_ready()

    @app.post("/api/ask", response_model=AskResponse, responses={422: {"model": Problem}, **NOT_READY})
    def ask(request: AskRequest):
        if not ready.is_set():
            return not_ready()
        return engine.answer(request.question, request.top_k).to_dict()

    @app.get(
        "/api/documents/{document_id}",
        response_model=DocumentOut,
        responses={404: {"model": Problem}, **NOT_READY},
    )
    def document(document_id: str):
        if not ready.is_set():
            return not_ready()
        found = engine.index.documents.get(document_id)
        if found is None:
            return _error(404, f"there is no document {document_id!r}")
        return {"id": found.id, "title": found.title, "text": found.text}

    return app
