"""The chat page: GET / shows it (the documents listed, one of them shown), POST / answers the
form without JavaScript. The page's script reads /page/documents (the list and the index's
generation, to notice a new index) and /page/documents/{id} (one document as HTML, loaded when
shown). Templates and static files are web/ at the top of the checkout, shipped as ``rag/web``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ..answer.base import Answer, Citation
from ..answer.citations import in_reading_order
from ..answer.questions import MAX_ANSWER_CHARACTERS, MAX_QUESTION_CHARACTERS, MAX_TURNS, Turn, fit_history
from ..errors import IndexInvalidError, InputError
from ..ingest.language import english_name, probabilities, sure_language
from ..store.index import LoadedIndex
from .access import COOKIE, SESSION_SECONDS, client_address, key_matches, too_many
from .admission import Busy
from .runtime import Runtime, RuntimeDep
from .schemas import problem
from .views import document_view

# rag/web in an installed product (pyproject.toml maps web/ there); web/ itself in a checkout.
_PACKAGED = Path(__file__).resolve().parent.parent / "web"
WEB_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "web"
STATIC_DIR = WEB_DIR / "static"
GENERATED_MARKER = re.compile(r"\[(\d+)\]")  # a generated answer's markers, as the answerer wrote them
LISTED = 100  # documents listed on the page; the others are reached through citations

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=WEB_DIR / "templates")  # autoescapes .html


class _ById(dict):
    """Documents by id; one unknown here (removed since the answer was given) shows its id."""

    def __missing__(self, key: str) -> dict:
        return {"id": key, "title": key, "language": None, "format": ""}


def _listing(index: LoadedIndex) -> list[dict]:
    return [
        {"id": d.id, "title": d.title or d.id, "language": d.language, "format": d.format}
        for d in index.listed.values()
    ]


def _history(field: str) -> list[Turn]:
    """The conversation the form carries (JSON turns, oldest first) as the page carries it on:
    its last turns, each within its limit, so that a conversation that grew is answered.
    InputError if it cannot be read or holds a turn that is none (an unknown role, ...)."""
    if not field.strip():
        return []
    try:
        items = json.loads(field)
        turns = [Turn(item["role"], item["content"]) for item in items]
    except (ValueError, TypeError, KeyError, RecursionError):  # RecursionError: JSON nested too deep
        raise InputError("the conversation sent with the question cannot be read") from None
    if not all(isinstance(t.role, str) and isinstance(t.content, str) for t in turns):
        raise InputError("the conversation sent with the question cannot be read")
    return fit_history(turns).turns


def _page(
    request: Request,
    runtime: Runtime,
    turns: list[dict],
    shown: str | None = None,
    marked: set[int] = frozenset(),
    draft: str = "",
    status: int = 200,
    history: list[Turn] = (),
):
    index = runtime.engine.index if runtime.ready.is_set() else None
    context = {
        "turns": turns,
        "draft": draft,
        "max_question": MAX_QUESTION_CHARACTERS,
        "ready": index is not None,
        # Loading, not failed: the page says calmly what it is doing, and turns into the chat.
        "getting_ready": runtime.step if index is None and not (runtime.failure or runtime.damage) else None,
        "answered": any(turn["kind"] in ("answer", "earlier-assistant") for turn in turns),
        "generating": runtime.engine.settings.llm_url is not None,  # RAG_LLM_URL: answers an LLM writes
        # The conversation so far, for the form to send with the next question (the last turns).
        "history": json.dumps(
            [{"role": t.role, "content": t.content} for t in history][-MAX_TURNS:], ensure_ascii=False
        ),
    }
    if index is not None:
        documents = _listing(index)
        shown = shown if shown in index.documents else documents[0]["id"]
        context.update(
            documents=documents[:LISTED],
            unlisted=max(0, len(documents) - LISTED),
            by_id=_ById((d["id"], d) for d in documents),
            generation=index.generation,
            document=document_view(index.documents[shown], index.sentences_of(shown), marked),
        )
    # A page refused for now says when to come back, as the API does.
    headers = {"Retry-After": "5" if index is None else "1"} if status == 503 else None
    return templates.TemplateResponse(request, "page.html", context, status_code=status, headers=headers)


@router.head("/", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request, runtime: RuntimeDep, document: Annotated[str | None, Query(max_length=300)] = None):
    if runtime.failure or runtime.damage:
        return _page(request, runtime, [{"kind": "error", "text": runtime.not_ready_detail()}], status=503)
    if not runtime.ready.is_set():
        return _page(request, runtime, [], status=503)  # getting ready
    return _page(request, runtime, [], shown=document)


@router.post("/", response_class=HTMLResponse)
async def ask_from_form(request: Request, runtime: RuntimeDep):
    """The chat without JavaScript: the form posts here and gets the page with the answer."""
    body = await request.body()  # at most the body limit (middleware.BodyLimit)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        fields = {}  # answered below as an empty question
    question = (fields.get("question") or [""])[0]
    try:
        history = _history((fields.get("history") or [""])[0])
    except InputError as exc:
        history = []
        error = str(exc)
    else:
        error = None
    # Earlier turns as text: the questions, and the answers without their markers' links.
    turns = [{"kind": "earlier-" + t.role, "text": t.content} for t in history]
    turns.append({"kind": "question", "text": question})

    def refused(text: str, status: int):
        turns.append({"kind": "error", "text": text})
        return _page(request, runtime, turns, draft=question, status=status, history=history)

    if error is not None:
        return refused(f"Cannot ask that: {error}.", 422)
    if runtime.failure or runtime.damage:
        return refused(runtime.not_ready_detail(), 503)
    if not runtime.ready.is_set():  # getting ready: the question stays in the box for later
        return _page(request, runtime, turns[:-1], draft=question, status=503, history=history)
    try:
        answer = await runtime.answer(question, None, history)
    except InputError as exc:
        return refused(f"Cannot ask that: {exc}.", 422)
    except Busy as exc:
        return refused(f"{exc}.", 503)
    except IndexInvalidError as exc:
        return refused(runtime.unusable(exc), 503)
    history = [*history, Turn("user", question.strip()), Turn("assistant", answer.answer[:MAX_ANSWER_CHARACTERS])]
    reading_order = in_reading_order(answer.citations)
    generated = generated_parts(answer) if answer.mode == "generated" else []
    shown_first = [c for _, c in generated if c] if generated else reading_order
    numbers = marker_numbers(shown_first if answer.outcome == "answer" else [], answer.citations)
    sources: dict[str, list[int]] = {}  # each cited document once, with its markers' numbers
    for citation in sorted(answer.citations, key=lambda c: numbers[c.id]):
        sources.setdefault(citation.document, []).append(numbers[citation.id])
    cited = answer.citations[0].document if answer.citations else None
    turns.append(
        {
            "kind": "answer",
            "answer": answer,
            "reading_order": reading_order,
            "generated": generated,
            "numbers": numbers,
            "sources": sources,
            "note": language_note(runtime, question, cited) if answer.mode != "generated" else None,
        }
    )
    if answer.abstained or not answer.citations:
        return _page(request, runtime, turns, history=history)
    shown = answer.citations[0].document  # the best citation's document, its cited sentences marked
    marked = {c.sentence for c in answer.citations if c.document == shown}
    return _page(request, runtime, turns, shown, marked, history=history)


def marker_numbers(shown: list[Citation], citations: list[Citation]) -> dict[int, int]:
    """Each citation's marker number on the page, by citation id: from [1] in the order the
    answer shows them (``shown``, repeats allowed), then the others in the answer's order."""
    numbers: dict[int, int] = {}
    for citation in [*shown, *citations]:
        numbers.setdefault(citation.id, len(numbers) + 1)
    return numbers


def language_note(runtime: Runtime, question: str, document: str | None) -> str | None:
    """Where quoted sentences are in another language than the question, a line that says why
    (they are quoted as written) and how to get answers in the question's language; else None."""
    index = runtime.engine.index
    quoted = index.documents[document].language if document in index.documents else None
    asked = sure_language(probabilities(question))
    if runtime.engine.settings.llm_url is not None or not quoted or not asked or quoted == asked:
        return None
    name = english_name(quoted) or quoted
    return (
        f"Quoted from the documents as written, in {name}. With an LLM server configured (RAG_LLM_URL), "
        "answers come in your question's language: see docs/generation.md."
    )


def generated_parts(answer: Answer) -> list[tuple[str, Citation | None]]:
    """A generated answer's text cut at its markers: (text, None) and ("", the citation marked)."""
    by_id = {citation.id: citation for citation in answer.citations}
    parts: list[tuple[str, Citation | None]] = []
    for number, piece in enumerate(GENERATED_MARKER.split(answer.answer)):
        if number % 2 == 0:
            parts.append((piece, None))
        elif int(piece) in by_id:  # always, after the answerer's checks
            parts.append(("", by_id[int(piece)]))
    return parts


@router.post("/page/note")
def note(
    runtime: RuntimeDep,
    question: Annotated[str, Body(max_length=MAX_QUESTION_CHARACTERS)],
    document: Annotated[str, Body(max_length=300)],
):
    """The page's script asks here for the language note under an answer (language_note)."""
    if not runtime.ready.is_set():
        return runtime.not_ready()
    return {"note": language_note(runtime, question, document)}


@router.head("/page/documents")
@router.get("/page/documents")
def listing(runtime: RuntimeDep):
    """The documents and the generation they belong to, for the page's script."""
    if not runtime.ready.is_set():
        return runtime.not_ready()
    index = runtime.engine.index
    return {"generation": index.generation, "documents": _listing(index)}


@router.head("/page/documents/{document_id}", response_class=HTMLResponse)
@router.get("/page/documents/{document_id}", response_class=HTMLResponse)
def fragment(request: Request, document_id: str, runtime: RuntimeDep):
    """One document as the page shows it, for the page's script to put in place."""
    if not runtime.ready.is_set():
        return runtime.not_ready()
    index = runtime.engine.index
    found = index.documents.get(document_id)
    if found is None:
        return problem(404, f"there is no document {document_id!r}")
    view = document_view(found, index.sentences_of(document_id))
    return templates.TemplateResponse(request, "_document.html", {"document": view, "generation": index.generation})


def signin_page(error: str | None, status: int = 401, headers: dict | None = None) -> HTMLResponse:
    """The sign-in form, and nothing of the documents."""
    page = templates.get_template("signin.html").render(error=error)
    return HTMLResponse(page, status_code=status, headers=headers)


async def _form_field(request: Request, name: str) -> str:
    try:
        fields = parse_qs((await request.body()).decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return ""
    return (fields.get(name) or [""])[0]


@router.head("/signin", response_class=HTMLResponse)
@router.get("/signin", response_class=HTMLResponse)
def signin_form(runtime: RuntimeDep):
    if not runtime.engine.settings.api_key:
        return problem(404, "this server needs no key")
    return signin_page(None, status=200)


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request, runtime: RuntimeDep):
    """The key typed in the form: right, a session cookie and on to the page; wrong, the form
    again, with no hint of how close it was; after too many wrong ones from this address, 429
    for a while (access.Throttle)."""
    key = runtime.engine.settings.api_key
    if not key:
        return problem(404, "this server needs no key")
    throttle, address = request.app.state.throttle, client_address(request.scope)
    wait = throttle.wait(address)
    if wait:
        return signin_page(f"{too_many(wait).capitalize()}.", status=429, headers={"Retry-After": str(wait)})
    if not key_matches(await _form_field(request, "key"), key):
        throttle.failed(address)
        return signin_page("That key is not right.")
    response = RedirectResponse("/", status_code=303)  # a path: nothing taken from the Host header
    response.set_cookie(
        COOKIE,
        request.app.state.sessions.issue(),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/signout")
async def signout(request: Request):
    """Ends the session on the server too, so that a copy of the cookie opens nothing. Async:
    the sessions are used on the event loop's thread only."""
    if request.app.state.sessions is not None:
        request.app.state.sessions.end(request.cookies.get(COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response
