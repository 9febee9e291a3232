"""The OpenAI Chat Completions protocol over the engine: POST /v1/chat/completions (plain or
streamed as server-sent events) and GET /v1/models, so that any OpenAI client or chat front end
can ask the documents. The last user message is the question, the earlier user and assistant
messages its history; the answer is the same as POST /api/ask gives, its citations, mode,
reason, confidence, outcome, resolved question and history cut in extra fields of the message (of
the last chunk, streamed), a cut history also in the header X-History-Cut.
Streamed, an answer an LLM server writes (RAG_LLM_URL) arrives as it is written and checked.
Errors on these routes have OpenAI's shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from fastapi import Path as PathParameter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from ..answer.base import Answer
from ..answer.questions import Turn
from . import sse
from .runtime import RuntimeDep
from .schemas import CUT_HEADER, cut_header, problem

MODEL = "rag"
CREATED = 1764000000  # when the model was first served, for /v1/models (a fixed time, as OpenAI lists)
PREFIX = "/v1/"
WORDS_PER_CHUNK = 8  # a streamed answer arrives a few words at a time
# What the message carries beside its text, as extra fields; the last chunk of a streamed answer
# carries the same but "abstained".
EXTRA = ("citations", "abstained", "mode", "reason", "confidence", "outcome", "resolved_question", "history_cut")
LAST_CHUNK = tuple(key for key in EXTRA if key != "abstained")

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: ErrorDetail


def _errors(*statuses: int) -> dict:
    return {status: {"model": OpenAIError} for status in statuses}


def _error_body(message: str, kind: str, param=None, code=None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def openai_error(status: int, message: str, kind: str = "invalid_request_error", param=None, code=None, headers=None):
    """An error in OpenAI's shape."""
    return JSONResponse(_error_body(message, kind, param, code), status_code=status, headers=headers)


def refusal_for(path: str, status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    """A refusal in the shape of the path's protocol: OpenAI's under /v1/, ours elsewhere.
    OpenAI answers a request it cannot take with 400, where ours says 422."""
    if path.startswith(PREFIX):
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return openai_error(400 if status == 422 else status, detail, kind, headers=headers)
    return problem(status, detail, headers)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, tool_calls, ... are not used
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(part.text for part in self.content)
        return self.content or ""


class ChatRequest(BaseModel):
    # Sampling and the like (temperature, top_p, max_tokens, stop, seed, user, tools, ...) do not
    # apply to answers made of the documents' sentences: accepted and ignored, as OpenAI ignores
    # what a model does not use.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"model": MODEL, "messages": [{"role": "user", "content": "Who met Putin?"}]}]},
    )
    model: str = Field(examples=[MODEL])
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: StrictBool = False
    n: StrictInt = Field(default=1, description="only 1")


def _chunk(base: dict, delta: dict, finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return sse.event({**base, "object": "chat.completion.chunk", "choices": [choice]})


def _in_words(text: str) -> Iterator[str]:
    """An answer not written as it came (extractive) a few words at a time."""
    words = text.split(" ")
    for start in range(0, len(words), WORDS_PER_CHUNK):
        piece = " ".join(words[start : start + WORDS_PER_CHUNK])
        yield piece if start == 0 else " " + piece


async def _stream(base: dict, items: AsyncGenerator[str | Answer, None]) -> AsyncGenerator[str, None]:
    """The text as the LLM server writes it, or the extractive answer's; then the citations,
    mode, reason, confidence, outcome, resolved question and history cut with the last chunk."""
    yield _chunk(base, {"role": "assistant", "content": ""})
    written = False
    async with aclosing(items):
        async for item in items:
            if isinstance(item, str):
                written = True
                yield _chunk(base, {"content": item})
                continue
            if not written:  # what was written is the answer's text; otherwise none was
                for piece in _in_words(item.answer):
                    yield _chunk(base, {"content": piece})
            body = item.to_dict()
            yield _chunk(base, {key: body[key] for key in LAST_CHUNK}, finish=_finish(item))
    yield sse.event("[DONE]")


def _finish(answer: Answer) -> str:
    """A generated answer that stopped early (it has a reason) is cut, as one cut at max_tokens is."""
    return "length" if answer.mode == "generated" and answer.reason else "stop"


def _stream_error(message: str) -> str:
    """An error in a stream that started, as OpenAI sends one (its clients raise APIError)."""
    return sse.event(_error_body(message, "server_error"))


@router.head("/models", include_in_schema=False)
@router.get("/models", responses=_errors(401))
def models():
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "rag"}]}


@router.head("/models/{model}", include_in_schema=False)
@router.get("/models/{model}", responses=_errors(404))
def model(model: Annotated[str, PathParameter(examples=[MODEL])]):
    if model != MODEL:
        return openai_error(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")
    return {"id": MODEL, "object": "model", "created": CREATED, "owned_by": "rag"}


STREAMED = {
    200: {
        "description": "a chat.completion, or with stream: true chat.completion.chunk events ending with [DONE]",
        "content": {
            "application/json": {},
            "text/event-stream": {"schema": sse.schema(["message"])},  # unnamed events are "message"
        },
        "headers": CUT_HEADER,
    }
}


@router.post("/chat/completions", responses={**STREAMED, **_errors(400, 401, 404, 413, 503)})
async def chat_completions(request: ChatRequest, runtime: RuntimeDep, response: Response):
    if request.model != MODEL:
        return openai_error(404, f"The model `{request.model}` does not exist.", param="model", code="model_not_found")
    if request.n != 1:
        return openai_error(400, "n must be 1: there is one answer per question", param="n")
    *earlier, last = request.messages
    if last.role != "user":
        return openai_error(400, "the last message must be the user's question", param="messages")
    if not runtime.ready.is_set():
        return openai_error(503, runtime.not_ready_detail(), "server_error", headers={"Retry-After": "5"})
    # The whole conversation: the engine reads its last turns and says how many it cut, so a long
    # conversation goes on, as with OpenAI, instead of being refused.
    history = [Turn(m.role, m.text()) for m in earlier if m.role in ("user", "assistant") and m.text().strip()]
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": MODEL}
    if request.stream:
        extractive = await runtime.extract(last.text(), None, history)  # refused before the stream starts
        return sse.response(
            _stream(base, runtime.written(extractive, history)), _stream_error, cut_header(extractive.history_cut)
        )
    answer = await runtime.answer(last.text(), None, history)
    response.headers.update(cut_header(answer.history_cut))
    body = answer.to_dict()
    message = {"role": "assistant", "content": body["answer"], "refusal": None, **{key: body[key] for key in EXTRA}}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(answer)}
    return {**base, "object": "chat.completion", "choices": [choice]}
