"""What the chat page shows, as plain data for the templates: a document as its headings,
page breaks and paragraphs of sentences, in the order of its text."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from ..ingest.document import Document, Sentence


@dataclass(frozen=True)
class Segment:
    text: str
    sentence: int | None = None  # the sentence's number in its document; None for the space between
    marked: bool = False


@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "paragraph" or "page" (a PDF's page starts here)
    text: str = ""  # a heading's text
    level: int = 0  # a heading's level, 1 to 6; a page's number
    segments: list[Segment] = field(default_factory=list)  # a paragraph's


@dataclass(frozen=True)
class DocumentView:
    id: str
    title: str
    language: str | None
    blocks: list[Block]
    # False where the text begins with the title (a first heading, or a first sentence the title
    # was cut from): the page then shows it once, in its place.
    separate_title: bool = True


def _paragraph(document: Document, sentences: list[Sentence], marked: set[int]) -> list[Segment]:
    segments: list[Segment] = []
    previous_end = None
    for sentence in sentences:
        if previous_end is not None and sentence.start > previous_end:
            segments.append(Segment(document.text[previous_end : sentence.start]))
        segments.append(Segment(document.text[sentence.start : sentence.end], sentence.index, sentence.index in marked))
        previous_end = sentence.end
    return segments


def document_view(document: Document, sentences: list[Sentence], marked: set[int] = frozenset()) -> DocumentView:
    """The document's headings and paragraphs in text order, with a block where each page after
    the first starts; together they hold its text minus the line breaks between paragraphs.
    ``sentences`` are the index's (only the document's own are used)."""
    placed: list[tuple[int, int, Block]] = [
        (h.start, 0, Block("heading", document.text[h.start : h.end], h.level)) for h in document.headings
    ]
    placed += [
        (start, -1, Block("page", level=number)) for number, start in enumerate(document.pages, start=1) if number > 1
    ]
    own = [s for s in sentences if s.document == document.id]
    for _, group in groupby(own, key=lambda s: s.paragraph):
        run = list(group)
        placed.append((run[0].start, 1, Block("paragraph", segments=_paragraph(document, run, marked))))
    placed.sort(key=lambda item: (item[0], item[1]))
    blocks = [block for _, _, block in placed]
    first = next((b for b in blocks if b.kind != "page"), Block("heading"))
    opening = first.text or "".join(segment.text for segment in first.segments)
    separate = not document.title or not opening.startswith(document.title.removesuffix("…"))
    return DocumentView(document.id, document.title, document.language, blocks, separate)
