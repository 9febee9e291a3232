"""What the chat page shows, as plain data for the templates: the article split into its
paragraphs and sentences."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from ..ingest.document import Document, Sentence


@dataclass(frozen=True)
class Segment:
    text: str
    sentence: int | None = None  # the sentence's number in its document; None for the space between
    marked: bool = False


@dataclass(frozen=True)
class ArticleView:
    id: str
    title: str
    paragraphs: list[list[Segment]]


def article_view(document: Document, sentences: list[Sentence], marked: set[int] = frozenset()) -> ArticleView:
    """The document's paragraphs as runs of sentences and the text between them; together they
    are the document's text minus the line breaks between paragraphs."""
    paragraphs = []
    own = (s for s in sentences if s.document == document.id)
    for _, group in groupby(own, key=lambda s: s.paragraph):
        segments: list[Segment] = []
        previous_end = None
        for sentence in group:
            if previous_end is not None and sentence.start > previous_end:
                segments.append(Segment(document.text[previous_end : sentence.start]))
            text = document.text[sentence.start : sentence.end]
            segments.append(Segment(text, sentence.index, sentence.index in marked))
            previous_end = sentence.end
        paragraphs.append(segments)
    return ArticleView(id=document.id, title=document.title, paragraphs=paragraphs)
