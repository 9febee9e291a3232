"""The article as the page shows it: paragraphs of sentences, nothing lost. No model."""

from rag.answer.base import Citation
from rag.answer.citations import in_reading_order
from rag.http.views import article_view
from rag.ingest.discover import read_document
from rag.ingest.segment import split_sentences

from .conftest import ARTICLE


def test_the_article_view_holds_every_character_but_the_paragraph_breaks():
    document = read_document(ARTICLE)
    sentences = split_sentences(document)
    view = article_view(document, sentences, marked={6, 7})
    shown = "\\n".join("".join(segment.text for segment in paragraph) for paragraph in view.paragraphs)
    assert shown == "\\n".join(line.strip() for line in document.text.splitlines() if line.strip())
    assert len(view.paragraphs) == len({s.paragraph for s in sentences})
    numbered = [segment for paragraph in view.paragraphs for segment in paragraph if segment.sentence is not None]
    assert [segment.sentence for segment in numbered] == [s.index for s in sentences]
    assert [segment.sentence for segment in numbered if segment.marked] == [6, 7]


def test_citations_are_read_in_the_documents_order():
    def cite(number, start):
        return Citation(id=number, document="d", sentence=number, start=start, end=start + 1, text="x", score=0.5)

    assert [c.id for c in in_reading_order([cite(1, 50), cite(2, 10), cite(3, 30)])] == [2, 3, 1]
