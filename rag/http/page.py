"""The chat page: GET / shows it, POST / answers the form without JavaScript and shows the
page with the answer. Templates and static files are package data (``rag/web``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ..answer.citations import in_reading_order
from ..answer.questions import MAX_QUESTION_CHARACTERS
from ..errors import InputError
from .admission import Busy
from .runtime import Runtime, RuntimeDep
from .views import article_view

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_DIR = WEB_DIR / "static"

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=WEB_DIR / "templates")  # autoescapes .html


def _page(
    request: Request,
    runtime: Runtime,
    turns: list[dict],
    marked: set[tuple[str, int]],
    draft: str = "",
    status: int = 200,
):
    index = runtime.engine.index if runtime.ready.is_set() else None
    articles = []
    if index is not None:
        for document in index.documents.values():
            rows = {n for d, n in marked if d == document.id}
            articles.append(article_view(document, index.sentences, rows))
    context = {"turns": turns, "articles": articles, "draft": draft, "max_question": MAX_QUESTION_CHARACTERS}
    return templates.TemplateResponse(request, "page.html", context, status_code=status)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, runtime: RuntimeDep):
    if not runtime.ready.is_set():
        return _page(request, runtime, [{"kind": "error", "text": runtime.not_ready_detail()}], set(), status=503)
    return _page(request, runtime, [], set())


@router.post("/", response_class=HTMLResponse)
async def ask_from_form(request: Request, runtime: RuntimeDep):
    """The chat without JavaScript: the form posts here and gets the page with the answer."""
    body = await request.body()  # at most the body limit (middleware.BodyLimit)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        fields = {}  # answered below as an empty question
    question = (fields.get("question") or [""])[0]
    turns = [{"kind": "question", "text": question}]

    def refused(text: str, status: int):
        return _page(request, runtime, [*turns, {"kind": "error", "text": text}], set(), question, status)

    if not runtime.ready.is_set():
        return refused(runtime.not_ready_detail(), 503)
    try:
        answer = await runtime.admission.run(runtime.engine.answer, question)
    except InputError as exc:
        return refused(f"Cannot ask that: {exc}.", 422)
    except Busy as exc:
        return refused(f"{exc}.", 503)
    marked = set() if answer.abstained else {(c.document, c.sentence) for c in answer.citations}
    turns.append({"kind": "answer", "answer": answer, "reading_order": in_reading_order(answer.citations)})
    return _page(request, runtime, turns, marked)
