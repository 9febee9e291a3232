"""The answers for assistants (Claude Desktop, Cursor, Cline, ...) over the Model Context Protocol,
with the official SDK's MCPServer: the tools ask, search, list_documents and read_passage, and
each document as the resource ``rag://documents/{id}``. `rag mcp` serves them over stdio; `rag
serve` at /mcp over streamable HTTP, through its readiness check and admission line
(rag/http/mcp_endpoint.py). docs/mcp.md says how to connect an assistant."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp_types import Resource, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from . import __version__
from .answer.base import Answer, Citation
from .answer.questions import MAX_CITATIONS, MAX_QUESTION_CHARACTERS
from .engine import Engine
from .errors import InputError, NotFoundError, RagError
from .store.index import LoadedIndex

DEFAULT_CONTEXT = 300  # characters of read_passage's context on each side, unless asked otherwise
MAX_CONTEXT = 2000
MAX_SPAN = 4000  # characters read_passage returns between start and end; the context comes on top
URI = "rag://documents/{document}"

log = logging.getLogger("rag.mcp")
T = TypeVar("T")

Question = Annotated[
    str, Field(min_length=1, max_length=MAX_QUESTION_CHARACTERS, description="in any language, as a person asks it")
]
TopK = Annotated[int, Field(ge=1, le=MAX_CITATIONS, description="most sentences returned (default 3)")] | None
DocumentId = Annotated[str, Field(min_length=1, max_length=300, description="a document's id, from list_documents")]
Offset = Annotated[int, Field(ge=0, description="character offset into the document's text")]


class CitationOut(BaseModel):
    id: int = Field(description="the marker [id] in the answer; in search, the rank")
    document: str = Field(description="the document's id (read_passage, rag://documents/{id})")
    title: str | None = Field(description="the document's title")
    sentence: int = Field(description="the sentence's number within its document, from 0")
    start: int = Field(description="character offset into the document's text")
    end: int
    text: str = Field(description="exactly the document's text[start:end]")
    score: float


class AskOut(BaseModel):
    question: str
    answer: str = Field(description="the documents' own sentences, each followed by its [id]; or why there is none")
    abstained: bool = Field(description="true: the documents may not say this (outcome closest or none)")
    outcome: str = Field(
        description="answer: the citations answer the question; closest: the documents may not say this directly "
        "and the closest passage is offered as such; none: the documents do not say"
    )
    confidence: float | None = Field(description="the calibrated probability (0-1) that the first citation answers")
    mode: str = Field(description="extractive, or generated: written by the configured LLM server from the citations")
    reason: str | None = Field(description="why an LLM server's answer was not used or stopped early; else null")
    citations: list[CitationOut] = Field(description="best first")


class SearchOut(BaseModel):
    query: str
    results: list[CitationOut] = Field(description="the closest sentences, best first; they need not answer")


class DocumentOut(BaseModel):
    id: str
    uri: str = Field(description="the document as a resource: its whole text")
    title: str
    language: str | None = Field(description="ISO 639 code; null when it could not be told")
    format: str
    sentences: int


class DocumentsOut(BaseModel):
    documents: list[DocumentOut] = Field(description="in index order")


class PassageOut(BaseModel):
    document: str
    title: str
    start: int = Field(description="where the returned text starts in the document's text")
    end: int = Field(description="where it ends: text is exactly the document's text[start:end]")
    text: str


class Gate:
    """How the tools reach the engine. This one, `rag mcp`'s, calls the engine in a worker thread,
    switching first to a build made since (`rag add` in another terminal). The server's
    (rag/http/mcp_endpoint.py) goes through its readiness check and admission line instead."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._refreshing = threading.Lock()

    async def answer(self, question: str, top_k: int | None) -> Answer:
        return await self.run(self.engine.answer, question, top_k)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(self._fresh, work, *args)

    def _fresh(self, work: Callable[..., T], *args: Any) -> T:
        with self._refreshing:
            try:
                self.engine.refresh()
            except RagError as exc:  # the index in use stays, as the server's does
                log.error("still serving %s; the new index cannot be used: %s", self.engine.index.generation, exc)
        return work(*args)

    def describe(self, exc: RagError) -> str:
        """What a tool error says of ``exc``: one line."""
        return str(exc)


class _Server(MCPServer):
    def __init__(self, gate: Gate, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._gate = gate

    async def list_resources(self) -> list[Resource]:
        """Every document as a resource, for clients that offer only listed ones (Claude Desktop)."""
        listed = await self._gate.run(self._gate.engine.documents)
        return [
            Resource(uri=document_uri(d["id"]), name=d["id"], title=d["title"], mime_type="text/plain") for d in listed
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """Arguments the schema refuses get one line per problem, not pydantic's report that
        echoes the input back across several lines."""
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError):
                raise
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
                for error in cause.errors()
            )
            raise ToolError(f"Error executing tool {name}: {problems}") from cause


def _citations(cited: list[Citation], index: LoadedIndex) -> list[dict]:
    """The citations as the API sends them, each with its document's title."""
    listed = index.listed
    return [{**asdict(c), "title": listed[c.document].title if c.document in listed else None} for c in cited]


def create_server(gate: Gate) -> MCPServer:
    engine = gate.engine
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    server = _Server(
        gate,
        "rag",
        title="rag: cited answers from your documents",
        instructions="Answers questions from the user's indexed documents with their own sentences, each cited "
        "with its document and character offsets, or says that the documents do not say. Use ask for a question, "
        "search for the closest sentences without a decision, read_passage for the text around a citation.",
        version=__version__,
    )
    # Its logging.basicConfig would print every library's INFO messages, and ours twice.
    root.handlers[:] = handlers
    root.setLevel(level)

    async def guarded(call: Awaitable[T]) -> T:
        try:
            return await call
        except RagError as exc:  # bad input, an index that cannot be read: one line for the assistant
            raise ToolError(gate.describe(exc)) from None

    async def ask(question: Question, top_k: TopK = None) -> AskOut:
        """Answer a question from the indexed documents with their own sentences, each cited (document id,
        character offsets, text, score), or abstain: outcome "closest" offers the nearest passage as such,
        "none" says the documents do not say. An abstention is a result, not an error. top_k: most citations
        (1-10, default 3)."""
        answer = await guarded(gate.answer(question, top_k))
        reply = answer.to_dict()
        reply["citations"] = _citations(answer.citations, engine.index)
        return reply

    async def search(query: Question, top_k: TopK = None) -> SearchOut:
        """The sentences of the indexed documents closest to a query, best first, with their scores and
        offsets, whether or not they answer it. top_k: how many (1-10, default 3)."""
        found = await guarded(gate.run(engine.search, query, top_k))
        return {"query": query, "results": _citations(found, engine.index)}

    async def list_documents() -> DocumentsOut:
        """The indexed documents: id, title, language, format and number of sentences."""
        listed = await guarded(gate.run(engine.documents))
        return {"documents": [{**d, "uri": document_uri(d["id"])} for d in listed]}

    async def read_passage(
        document: DocumentId,
        start: Offset,
        end: Offset,
        context: Annotated[int, Field(ge=0, le=MAX_CONTEXT)] = DEFAULT_CONTEXT,
    ) -> PassageOut:
        return await guarded(gate.run(_passage, engine, document, start, end, context))

    read_passage.__doc__ = (
        f"The text of a document from start to end (a citation's offsets, at most {MAX_SPAN} characters apart) "
        f"with up to `context` characters (default {DEFAULT_CONTEXT}, at most {MAX_CONTEXT}) on each side, and "
        "the offsets of what is returned: text is exactly the document's text[start:end]."
    )
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    for tool in (ask, search, list_documents, read_passage):  # each description on one line
        server.add_tool(tool, description=" ".join(tool.__doc__.split()), annotations=read_only)

    @server.resource(URI, name="document", title="A document's text", mime_type="text/plain")
    async def document(document: str) -> str:
        """The whole text of an indexed document; citations' offsets index into it."""
        try:
            return (await gate.run(_document, engine, document))["text"]
        except NotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        except RagError as exc:
            raise ResourceError(gate.describe(exc)) from None

    return server


def document_uri(document: str) -> str:
    """The resource of a document: ids are file names, which may hold "?", "#" or spaces."""
    return URI.format(document=quote(document, safe=""))


def _document(engine: Engine, document: str) -> dict:
    try:
        return engine.document(document)
    except NotFoundError as exc:
        raise NotFoundError(f"{exc}; list_documents gives the ids") from None


def _passage(engine: Engine, document: str, start: int, end: int, context: int) -> dict:
    found = _document(engine, document)
    text = found["text"]
    if not start <= end <= len(text):
        raise InputError(f"start and end must satisfy 0 <= start <= end <= {len(text)} (the document's length)")
    if end - start > MAX_SPAN:
        raise InputError(f"end - start is {end - start}; read at most {MAX_SPAN} characters at a time")
    first, last = max(0, start - context), min(len(text), end + context)
    return {"document": found["id"], "title": found["title"], "start": first, "end": last, "text": text[first:last]}


def serve_stdio(engine: Engine) -> None:
    """Serve over stdin and stdout until the client closes them. The model and the index load
    first, so that the first question is answered at once and an unusable index is one line on
    stderr and exit status 1 (`rag`'s), before any client waits on it."""
    engine.warm_up()
    log.info("serving MCP on stdio for %s", engine.index.generation)
    anyio.run(create_server(Gate(engine)).run_stdio_async)
