"""The JSON API: /api/ask, /api/documents (list, upload, read, delete), and the health and
readiness probes."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi import Path as PathParameter

from ..answer.base import Answer
from ..answer.questions import Turn
from . import sse
from .runtime import RuntimeDep
from .schemas import (
    BAD_BODY,
    CUT_HEADER,
    DELETE_REFUSED,
    NOT_READY,
    UPLOAD_REFUSED,
    AskRequest,
    AskResponse,
    DocumentInfo,
    DocumentList,
    DocumentOut,
    Problem,
    cut_header,
    over_limit,
    problem,
)

DocumentId = Annotated[str, PathParameter(examples=["000_8cb13a5d0c7818f1"])]

router = APIRouter()


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz")
def healthz() -> dict:
    return {"status": "alive"}


@router.head("/readyz", include_in_schema=False)
@router.get("/readyz", responses=NOT_READY)
def readyz(runtime: RuntimeDep):
    return {"status": "ready"} if runtime.ready.is_set() else runtime.not_ready()


STREAMED = {
    200: {
        "description": "the answer; with stream: true, server-sent events: 'delta' {\"text\": ...} as an LLM "
        "server writes, then 'answer' with the answer's JSON (or, if it failed after it started, 'error' "
        '{"detail": ...})',
        "content": {"text/event-stream": {"schema": sse.schema(["delta", "answer", "error"])}},
        "headers": CUT_HEADER,
    }
}


@router.post("/api/ask", response_model=AskResponse, responses={**STREAMED, **BAD_BODY, **NOT_READY})
async def ask(request: AskRequest, runtime: RuntimeDep, response: Response):
    if not runtime.ready.is_set():
        return runtime.not_ready()
    history = [Turn(turn.role, turn.content) for turn in request.history]
    if not request.stream:
        answer = await runtime.answer(request.question, request.top_k, history)
        response.headers.update(cut_header(answer.history_cut))
        return answer.to_dict()
    # Refused questions are refused before the stream starts, with their status.
    extractive = await runtime.extract(request.question, request.top_k, history)
    return sse.response(
        _events(runtime.written(extractive, history)),
        lambda detail: sse.event({"detail": detail}, "error"),
        cut_header(extractive.history_cut),
    )


async def _events(items: AsyncGenerator[str | Answer, None]) -> AsyncGenerator[str, None]:
    async with aclosing(items):
        async for item in items:
            yield (
                sse.event(item.to_dict(), "answer") if isinstance(item, Answer) else sse.event({"text": item}, "delta")
            )


@router.head("/api/documents/{document_id}", include_in_schema=False)
@router.get(
    "/api/documents/{document_id}",
    response_model=DocumentOut,
    responses={404: {"model": Problem}, **NOT_READY},
)
def document(document_id: DocumentId, runtime: RuntimeDep):
    if not runtime.ready.is_set():
        return runtime.not_ready()
    return runtime.engine.document(document_id)  # NotFoundError: 404


@router.head("/api/documents", include_in_schema=False)
@router.get("/api/documents", response_model=DocumentList, responses=NOT_READY)
def documents(runtime: RuntimeDep):
    if not runtime.ready.is_set():
        return runtime.not_ready()
    return {"documents": runtime.engine.documents()}


@router.post("/api/documents", status_code=201, response_model=DocumentInfo, responses={**UPLOAD_REFUSED, **NOT_READY})
def upload(
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="a .txt, .md, .html, .pdf or .docx file")],
    language: Annotated[str | None, Form(description="ISO 639 code, instead of detecting it")] = None,
):
    """Add a document (only it is embedded); answers use it as soon as this returns."""
    if not runtime.ready.is_set():
        return runtime.not_ready()
    engine = runtime.engine
    limit = engine.settings.max_upload_mb * 1024 * 1024
    data = file.file.read(limit + 1)  # the body limit leaves room for the form around the file
    if len(data) > limit:
        return problem(413, over_limit(limit))
    with runtime.metrics.build("upload"):
        report = engine.add_upload(file.filename or "", data, language or None)
    engine.refresh()
    return report.listed[0]  # as added, even if a delete took it out since


@router.delete("/api/documents/{document_id}", status_code=204, responses={**DELETE_REFUSED, **NOT_READY})
def delete(document_id: DocumentId, runtime: RuntimeDep):
    """Remove a document; answers stop citing it as soon as this returns."""
    if not runtime.ready.is_set():
        return runtime.not_ready()
    engine = runtime.engine
    if document_id not in engine.index.documents:  # else NotFoundError: a build took it out since
        return problem(404, f"there is no document {document_id!r}")
    with runtime.metrics.build("delete"):
        engine.remove_documents([document_id])
    engine.refresh()
    return Response(status_code=204)
