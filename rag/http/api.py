"""The JSON API: /api/ask, /api/documents/{id}, and the health and readiness probes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParameter

from .runtime import RuntimeDep
from .schemas import BAD_BODY, NOT_READY, AskRequest, AskResponse, DocumentOut, Problem, problem

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "alive"}


@router.get("/readyz", responses=NOT_READY)
def readyz(runtime: RuntimeDep):
    return {"status": "ready"} if runtime.ready.is_set() else runtime.not_ready()


@router.post("/api/ask", response_model=AskResponse, responses={**BAD_BODY, **NOT_READY})
async def ask(request: AskRequest, runtime: RuntimeDep):
    if not runtime.ready.is_set():
        return runtime.not_ready()
    answer = await runtime.admission.run(runtime.engine.answer, request.question, request.top_k)
    return answer.to_dict()


@router.get(
    "/api/documents/{document_id}",
    response_model=DocumentOut,
    responses={404: {"model": Problem}, **NOT_READY},
)
def document(document_id: Annotated[str, PathParameter(examples=["000_8cb13a5d0c7818f1"])], runtime: RuntimeDep):
    if not runtime.ready.is_set():
        return runtime.not_ready()
    found = runtime.engine.index.documents.get(document_id)
    if found is None:
        return problem(404, f"there is no document {document_id!r}")
    return {"id": found.id, "title": found.title, "text": found.text}
