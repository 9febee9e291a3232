"""What the API reads and writes, as pydantic models, and the error body every refusal has."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field, StrictBool

from ..answer.questions import (
    MAX_ANSWER_CHARACTERS,
    MAX_CITATIONS,
    MAX_HISTORY_CHARACTERS,
    MAX_QUESTION_CHARACTERS,
    MAX_TURNS,
)

# Turns a request may hold: the engine reads the last MAX_TURNS and cuts the rest (history_cut),
# so a conversation that grew is answered; this bound (and the body's 64 KiB) only caps the work.
MOST_TURNS_SENT = 1000
# The standard HTTP methods, sorted as Allow names them (and /metrics labels any other "other").
METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _whole_number(value: object) -> int:
    """JSON's 3 and 3.0 are the same number; "3", true and 2.5 are not whole numbers. An int is
    never made a float: one of 310 digits or more would overflow it."""
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        raise ValueError("must be a whole number")
    return int(value)


class UserTurn(BaseModel):
    role: Literal["user"]
    content: str = Field(
        min_length=1,
        pattern=r"\S",
        description=f"an earlier question; one over {MAX_QUESTION_CHARACTERS} characters is shortened (history_cut)",
    )


class AssistantTurn(BaseModel):
    role: Literal["assistant"]
    content: str = Field(
        description=f"an earlier answer; one over {MAX_ANSWER_CHARACTERS} characters is shortened (history_cut)"
    )


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARACTERS, description="in any language")
    top_k: Annotated[int, Field(ge=1, le=MAX_CITATIONS), BeforeValidator(_whole_number)] | None = Field(
        default=None, description="most citations (default 3)"
    )
    history: list[Annotated[UserTurn | AssistantTurn, Field(discriminator="role")]] = Field(
        default_factory=list,
        max_length=MOST_TURNS_SENT,
        description=f"the conversation's earlier turns, oldest first, so that a follow-up resolves; the last "
        f"{MAX_TURNS} are read, older ones cut (history_cut)",
    )
    stream: StrictBool = Field(
        default=False,
        description="answer as server-sent events: 'delta' events with text as an LLM server writes it "
        "(RAG_LLM_URL), then one 'answer' event with the whole answer",
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
    mode: Literal["extractive", "generated"] = Field(
        description="generated: written by the configured LLM server (RAG_LLM_URL) from the cited sentences"
    )
    reason: str | None = Field(
        description="extractive: why the LLM server's answer was not used (llm-timeout, llm-error, refusal, "
        "empty, too-long, echo or no-valid-citation); generated: why it stopped before the server's reply ended "
        "(llm-timeout, llm-error, refusal, too-long or echo), its checked text kept; null otherwise"
    )
    confidence: float | None = Field(
        description="the calibrated probability (0-1) that the first citation answers the question; calibrated by "
        "training/confidence.py on public QA sets in seven languages (SQuAD 2.0, XQuAD-R, PIAF, MLQA, CMRC 2018, "
        "DRCD, ARCD) with answerable, answer-sentence-removed and out-of-corpus questions (docs/answer-quality.md); "
        "null when the model has no calibration or the message was not searched (chit-chat, no letter or digit)",
    )
    resolved_question: str = Field(
        description="the question as it was searched: a follow-up as it was read with the conversation; the "
        "question itself when it was read alone"
    )
    history_cut: int = Field(
        ge=0,
        description=f"earlier turns of the history left out (the oldest, beyond the last {MAX_TURNS} or "
        f"{MAX_HISTORY_CHARACTERS} characters in all) or shortened; also sent as the header X-History-Cut when "
        "not 0",
    )
    outcome: Literal["answer", "closest", "none"] = Field(
        description="answer: the citations answer the question (abstained false); closest: the documents may not "
        "say this directly, and the closest passage is offered as such (abstained true, the nearest sentences "
        "cited); none: the documents do not say (abstained true, nothing cited)"
    )


class DocumentOut(BaseModel):
    id: str
    title: str
    text: str


class DocumentInfo(BaseModel):
    id: str
    title: str
    language: str | None = Field(description="ISO 639 code; null when it could not be told")
    format: str = Field(description="text, markdown, html, pdf or docx")
    sentences: int
    sha256: str = Field(description="of the source file")


class DocumentList(BaseModel):
    documents: list[DocumentInfo] = Field(description="in index order")


class Problem(BaseModel):
    detail: str


NOT_READY = {503: {"model": Problem, "description": "still loading, or too busy to answer now"}}
BAD_BODY = {
    400: {"model": Problem, "description": "the body cannot be read as text"},
    413: {"model": Problem, "description": "the body is over 64 KiB"},
    422: {"model": Problem, "description": "the request says what is wrong in detail"},
}


UPLOAD_REFUSED = {
    409: {"model": Problem, "description": "another build is changing the index; try again"},
    413: {"model": Problem, "description": "the file is over RAG_MAX_UPLOAD_MB"},
    415: {"model": Problem, "description": "not a .txt, .md, .html, .pdf or .docx file"},
    422: {"model": Problem, "description": "the file holds no usable text, its name is refused, or the form is wrong"},
    507: {"model": Problem, "description": "the disk of the index is full or read-only; nothing was changed"},
}
DELETE_REFUSED = {
    404: {"model": Problem, "description": "there is no such document"},
    409: UPLOAD_REFUSED[409],
    422: {"model": Problem, "description": "it is the last document of the index"},
    507: UPLOAD_REFUSED[507],
}


CUT_HEADER = {  # as OpenAPI documents a response header
    "X-History-Cut": {
        "description": "earlier turns of the conversation left out or shortened to fit (history_cut); absent when 0",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def cut_header(cut: int) -> dict[str, str]:
    """X-History-Cut: how many earlier turns were left out or shortened, when any were."""
    return {"X-History-Cut": str(cut)} if cut else {}


def over_limit(limit: int) -> str:
    """What a 413 says of a body (or an uploaded file) over ``limit`` bytes."""
    size = f"{limit // 1024 // 1024} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
    return f"the body is over {size}"


def problem(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    """A refusal: the status and a ``detail`` saying what is wrong."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
