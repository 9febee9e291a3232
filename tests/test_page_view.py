"""A document as the page shows it: headings, page breaks and paragraphs of sentences, nothing
lost. No model."""

from rag.answer.base import Citation
from rag.answer.citations import in_reading_order
from rag.http.views import document_view
from rag.ingest.discover import read_document
from rag.ingest.segment import split_sentences

from .conftest import ARTICLE


def shown_text(view):
    """What the blocks show, one line per heading or paragraph."""
    lines = []
    for block in view.blocks:
        if block.kind == "heading":
            lines.append(block.text)
        elif block.kind == "paragraph":
            lines.append("".join(segment.text for segment in block.segments))
    return "\n".join(lines)


def test_the_document_view_holds_every_character_but_the_paragraph_breaks():
    document = read_document(ARTICLE)
    sentences = split_sentences(document)
    view = document_view(document, sentences, marked={6, 7})
    assert (view.id, view.language) == (document.id, "fr")
    assert shown_text(view) == "\n".join(line.strip() for line in document.text.splitlines() if line.strip())
    paragraphs = [block.segments for block in view.blocks if block.kind == "paragraph"]
    assert len(paragraphs) == len(view.blocks) == len({s.paragraph for s in sentences})
    numbered = [segment for paragraph in paragraphs for segment in paragraph if segment.sentence is not None]
    assert [segment.sentence for segment in numbered] == [s.index for s in sentences]
    assert [segment.sentence for segment in numbered if segment.marked] == [6, 7]


def test_citations_are_read_in_the_documents_order():
    def cite(number, start):
        return Citation(id=number, document="d", sentence=number, start=start, end=start + 1, text="x", score=0.5)

    assert [c.id for c in in_reading_order([cite(1, 50), cite(2, 10), cite(3, 30)])] == [2, 3, 1]


def test_headings_and_pages_take_their_place_in_the_text(tmp_path):
    from .test_formats import MARKDOWN, write_pdf

    (tmp_path / "bees.md").write_text(MARKDOWN, encoding="utf-8")
    for path in (tmp_path / "bees.md", write_pdf(tmp_path / "glaciers.pdf")):
        document = read_document(path)
        view = document_view(document, split_sentences(document))
        assert shown_text(view) == document.text, "every line of the stored text, in order"
        headings = [(b.text, b.level) for b in view.blocks if b.kind == "heading"]
        assert headings == [(document.text[h.start : h.end], h.level) for h in document.headings]
        pages = [b.level for b in view.blocks if b.kind == "page"]
        assert pages == list(range(2, len(document.pages) + 1))
