"""Documents built to lose text or to cost without bound: blocks nested deep (Markdown, HTML, and
HTML through the Markdown trafilatura makes of it), one long line without a sentence end, a wide
table. Their text is kept whole and cut into bounded sentences with exact offsets, or the file is
refused in one line (422 through an upload), never accepted with text lost. No model."""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.errors import InputError
from rag.ingest import segment
from rag.ingest.discover import read_document
from rag.ingest.segment import MAX_SENTENCE, split_sentences

from .conftest import fake_engine, ready_client
from .test_ingest import make_document

WORDS = "the river city council budget report water station north market school".split()


def words(count: int) -> str:
    """``count`` words and no sentence end."""
    return " ".join(itertools.islice(itertools.cycle(WORDS), count))


def deep_list(levels: int) -> str:
    return "".join("  " * level + f"- item {level}\n" for level in range(levels)) + "\nThe end of the document.\n"


def deep_quote(levels: int) -> str:
    return ">" * levels + " The deepest quote.\n\nThe end of the document.\n"


def deep_html(opening: str, closing: str, levels: int) -> str:
    return (
        "<html><body><article><p>The start of the page, with a few words in it.</p>"
        f"{opening * levels}The deepest text.{closing * levels}"
        "<p>The end of the page, with a few more words in it.</p></article></body></html>"
    )


def stored_text(path, content: str) -> str:
    path.write_text(content, encoding="utf-8")
    return read_document(path).text


@pytest.mark.parametrize(
    ("content", "deepest"),
    [(deep_list(30), "item 29"), (deep_quote(30), "The deepest quote."), (deep_quote(150), "The deepest quote.")],
    ids=["list-30", "quote-30", "quote-150"],
)
def test_markdown_nested_deep_is_kept_whole(tmp_path, content, deepest):
    text = stored_text(tmp_path / "deep.md", content)
    assert deepest in text
    assert text.endswith("The end of the document.")


@pytest.mark.parametrize(
    ("opening", "closing", "levels"),
    [
        ("<ul><li>item ", "</li></ul>", 30),
        ("<ul><li>", "</li></ul>", 30),  # trafilatura indents the one item with text 58 spaces
        ("<blockquote>", "</blockquote>", 30),
        ("<div>", "</div>", 200),
    ],
    ids=["list-30", "empty-items-30", "quote-30", "div-200"],
)
def test_html_nested_deep_is_kept_whole(tmp_path, opening, closing, levels):
    text = stored_text(tmp_path / "deep.html", deep_html(opening, closing, levels))
    assert "The deepest text." in text
    assert text.endswith("The end of the page, with a few more words in it.")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("deep.md", "- " * 10_000 + "item\n\nThe end.\n", "nested 100 levels deep or more"),
        ("deep.md", ">" * 10_000 + " quote\n\nThe end.\n", "nested 100 levels deep or more"),
        ("deep.md", deep_list(100), "nested 100 levels deep or more"),
        ("deep.html", deep_html("<ul><li>item ", "</li></ul>", 120), "nested 100 levels deep or more"),
        ("deep.html", deep_html("<div>", "</div>", 300), "elements nested 256 deep"),
    ],
    ids=["md-list-line", "md-quote", "md-list-100", "html-list-120", "html-div-300"],
)
def test_documents_nested_past_the_limit_are_refused(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=reason) as refused:
        read_document(path)
    assert "\n" not in str(refused.value)


def test_uploads_nested_deep_are_kept_whole_or_refused_with_422(tmp_path):
    with ready_client(fake_engine(tmp_path / "index")) as client:
        kept = client.post("/api/documents", files={"file": ("deep.md", deep_list(30).encode(), "text/markdown")})
        assert kept.status_code == 201, kept.text
        assert client.get("/api/documents/deep").json()["text"].endswith("item 29\nThe end of the document.")
        deeper = [
            ("deeper.md", ">" * 10_000 + " quote\n\nThe end.\n"),
            ("page.html", deep_html("<div>", "</div>", 300)),
        ]
        for name, content in deeper:
            refused = client.post("/api/documents", files={"file": (name, content.encode(), "text/plain")})
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"].startswith(name + " ") and "nested" in refused.json()["detail"]


def assert_exact_and_bounded(text: str, sentences, longest: int) -> None:
    """Each sentence is text[start:end], no longer than ``longest``, in order, and only white
    space is left out between them."""
    end = 0
    for sentence in sentences:
        piece = text[sentence.start : sentence.end]
        assert piece and piece == piece.strip() and len(piece) <= longest
        assert not text[end : sentence.start].strip(), "nothing but white space is left out"
        end = sentence.end
    assert not text[end:].strip()


def test_a_line_without_a_sentence_end_is_cut_after_words_into_bounded_sentences():
    text = words(6_000)  # about 38,000 characters
    sentences = split_sentences(make_document(text, "en"))
    assert_exact_and_bounded(text, sentences, MAX_SENTENCE)
    pieces = [text[s.start : s.end] for s in sentences]
    assert " ".join(pieces) == text, "cut between words, never inside one"
    assert all(len(piece) > MAX_SENTENCE - 10 for piece in pieces[:-1]), "as long as a sentence may be"


def test_a_word_longer_than_a_sentence_is_cut_inside_it():
    text = "x" * (2 * MAX_SENTENCE + 10)
    sentences = split_sentences(make_document(text, "en"))
    assert [(s.start, s.end) for s in sentences] == [
        (0, MAX_SENTENCE),
        (MAX_SENTENCE, 2 * MAX_SENTENCE),
        (2 * MAX_SENTENCE, len(text)),
    ]


def test_a_paragraph_longer_than_pysbds_window_is_split_at_its_sentence_ends():
    expected = [f"The council met on day {number} by the {WORDS[number % len(WORDS)]}." for number in range(400)]
    text = " ".join(expected)
    assert len(text) > 4 * segment.PYSBD_WINDOW
    assert [text[s.start : s.end] for s in split_sentences(make_document(text, "en"))] == expected


TEXT = st.lists(st.sampled_from([*"ab é.!? \n", "Mr. ", "word ", "«", "»", "x" * 15]), max_size=80).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_offsets_are_exact_with_small_windows(text):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segment, "MAX_SENTENCE", 12)
        patch.setattr(segment, "PYSBD_WINDOW", 20)
        sentences = split_sentences(make_document(text, "en"))
    assert_exact_and_bounded(text, sentences, 12)
    assert all("\n" not in text[s.start : s.end] for s in sentences)


def test_a_wide_table_is_read_whole_and_segmented_in_bounded_pieces(tmp_path):
    columns = 1_500
    cells = [f"{WORDS[number % len(WORDS)]}{number}" for number in range(columns)]
    header = " | ".join(f"c{number}" for number in range(columns))
    path = tmp_path / "wide.md"
    path.write_text(f"| {header} |\n|{'---|' * columns}\n| {' | '.join(cells)} |\n", encoding="utf-8")
    document = read_document(path)
    row = "; ".join(cells)
    assert document.text.split("\n")[1] == row
    sentences = split_sentences(document)
    assert_exact_and_bounded(document.text, sentences, MAX_SENTENCE)
    assert len(sentences) > len(row) // MAX_SENTENCE
