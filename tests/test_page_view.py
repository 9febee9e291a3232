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


def test_the_title_is_shown_once_where_the_text_begins_with_it(tmp_path):
    """Issue 32: the pane showed the title, then the same words as the first heading or sentence."""
    from rag.http.page import templates

    from .test_formats import MARKDOWN

    article = read_document(ARTICLE)  # titled by its first sentence, cut with "…"
    assert article.title.endswith("…")
    (tmp_path / "hives.md").write_text("# Winter hives\n\nHives lost a third of their bees.\n", encoding="utf-8")
    hives = read_document(tmp_path / "hives.md")  # titled by its first heading
    (tmp_path / "bees.md").write_text(MARKDOWN, encoding="utf-8")
    bees = read_document(tmp_path / "bees.md")  # its title in front matter, not in the text
    for document, separate in ((article, False), (hives, False), (bees, True)):
        view = document_view(document, split_sentences(document))
        assert view.separate_title is separate, document.id
        html = templates.get_template("_document.html").render(document=view, generation="g")
        words = document.title.removesuffix("…")
        assert html.count(words) == 2, "in the text once (and in the article's label)"
        assert html.count('class="document-title"') == (1 if separate or document is hives else 0)


def test_marker_numbers_follow_the_order_shown():
    """Issue 32: the first marker shown was [2] (citations numbered by score, shown in reading order)."""
    from rag.http.page import marker_numbers

    def cite(number, start):
        return Citation(id=number, document="d", sentence=number, start=start, end=start + 1, text="x", score=0.5)

    best, second, third = cite(1, 50), cite(2, 10), cite(3, 30)
    shown = in_reading_order([best, second, third])
    assert marker_numbers(shown, [best, second, third]) == {2: 1, 3: 2, 1: 3}
    assert marker_numbers([third, third], [best, second, third]) == {3: 1, 1: 2, 2: 3}, "uncited ones after"
