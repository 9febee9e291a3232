"""Discovering and loading documents, and sentence segmentation with exact offsets."""

import hashlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.errors import InputError
from rag.ingest.discover import load_documents, read_document
from rag.ingest.document import Document
from rag.ingest.segment import split_sentences

from .conftest import ARTICLE


def make_document(text: str, language: str | None = "fr") -> Document:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Document(
        id="doc",
        title="t",
        path="doc.txt",
        text=text,
        source_sha256=digest,
        text_sha256=digest,
        format="text",
        language=language,
    )


def sentence_texts(text: str, language: str | None = "fr") -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(make_document(text, language))]


def test_article_is_read_exactly_and_split_into_its_26_sentences():
    document = read_document(ARTICLE)
    raw = ARTICLE.read_bytes()
    assert document.text == raw.decode("utf-8")
    assert document.source_sha256 == hashlib.sha256(raw).hexdigest()
    assert document.text_sha256 == hashlib.sha256(document.text.encode("utf-8")).hexdigest()
    assert (document.id, document.format, document.language) == ("000_8cb13a5d0c7818f1", "text", "fr")

    sentences = split_sentences(document)
    texts = [document.text[s.start : s.end] for s in sentences]
    assert len(sentences) == 26
    assert [s.index for s in sentences] == list(range(26))
    # "M." is a title, not the end of a sentence.
    assert texts[2].startswith("M. Witkoff a été filmé") and texts[2].endswith("d’autres questions.")
    # Two sentences on one line are two sentences of the same paragraph.
    assert texts[4].endswith("ne s’est pas engagé à conclure un accord.")
    assert texts[5].startswith("Le dirigeant russe")
    assert sentences[4].paragraph == sentences[5].paragraph == 4
    # A quotation closed by » stays whole.
    assert texts[13].startswith("« Trop de gens MEURENT") and texts[13].endswith("président !!! »")
    assert texts[6].startswith("À cette fin, M. Poutine a demandé")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("M. Dupont est arrivé. Il a 3,5 ans.", ["M. Dupont est arrivé.", "Il a 3,5 ans."]),
        ("Le prix est de 1.000,50 €. Ensuite ?", ["Le prix est de 1.000,50 €.", "Ensuite ?"]),
        ("« Bonjour. » a-t-il dit. Puis il partit !", ["« Bonjour. » a-t-il dit.", "Puis il partit !"]),
        ("Il a dit « Non ! » et est parti. Fin.", ["Il a dit « Non ! » et est parti.", "Fin."]),
        ("Voir p. 12 et cf. art. 3. Fin.", ["Voir p. 12 et cf. art. 3.", "Fin."]),
        ("Le 1er janv. 2024, tout a changé. Bien.", ["Le 1er janv. 2024, tout a changé.", "Bien."]),
        ("Mme Durand et Dr. Martin sont là. Oui.", ["Mme Durand et Dr. Martin sont là.", "Oui."]),
        ("Il a gagné 2,5 % en 2023. C’est peu.", ["Il a gagné 2,5 % en 2023.", "C’est peu."]),
        ("Première ligne\nDeuxième ligne. Encore.", ["Première ligne", "Deuxième ligne.", "Encore."]),
    ],
)
def test_french_sentence_boundaries(text, expected):
    assert sentence_texts(text) == expected


def test_paragraphs_follow_line_breaks_and_skip_blank_lines():
    text = "Un. Deux.\n\n  \nTrois.\r\nQuatre."
    sentences = split_sentences(make_document(text))
    assert [(text[s.start : s.end], s.paragraph) for s in sentences] == [
        ("Un.", 0),
        ("Deux.", 0),
        ("Trois.", 1),
        ("Quatre.", 2),
    ]


# Texts built from pieces that stress a French segmenter: titles, quotes, numbers, odd spaces.
FRENCH_TEXT = st.lists(
    st.sampled_from(
        [
            *"abcdeéèêàçôœïMPLAÉ ’'«»\u00a0.,;:!?…-–()0123456789\n\t🙂ﬁ",
            *["M. ", ". ", " « ", " » ", "\r\n", "Le ", "mot", " p. 3", "janv. ", "3,5", "1.000"],
        ]
    ),
    max_size=120,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FRENCH_TEXT)
def test_offsets_are_exact_for_any_text(text):
    sentences = split_sentences(make_document(text))
    previous_end = 0
    for number, sentence in enumerate(sentences):
        piece = text[sentence.start : sentence.end]
        assert piece, "a sentence is never empty"
        assert piece == piece.strip(), "sentences carry no surrounding white space"
        assert sentence.start >= previous_end, "sentences do not overlap and keep document order"
        assert sentence.index == number
        assert "\n" not in piece, "a sentence never crosses a paragraph break"
        previous_end = sentence.end
    # Nothing but white space is left out.
    covered = set()
    for sentence in sentences:
        covered.update(range(sentence.start, sentence.end))
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        load_documents([tmp_path / "nowhere"])


def test_folder_without_documents_is_an_error(tmp_path):
    (tmp_path / "notes.odt").write_bytes(b"PK")
    with pytest.raises(InputError, match=r"no \.txt, .* or \.docx documents found"):
        load_documents([tmp_path])


def test_other_file_types_are_refused_when_named(tmp_path):
    path = tmp_path / "a.odt"
    path.write_bytes(b"PK")
    with pytest.raises(InputError, match=r"a\.odt is not a \.txt, \.md, .* or \.docx file$"):
        load_documents([path])


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "is empty"), (b" \n\t\n", "is empty"), (b"caf\xe9 cr\xe8me", "is not UTF-8 text")],
)
def test_a_lone_bad_file_is_an_error(tmp_path, content, reason):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason):
        load_documents([path])


def test_a_bad_file_among_good_ones_is_skipped_and_reported(tmp_path):
    (tmp_path / "good.md").write_text("# Titre\n\nUne phrase. Une autre.", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00")
    documents, skipped = load_documents([tmp_path])
    assert [d.id for d in documents] == ["good"]
    assert documents[0].title == "Titre" and documents[0].format == "markdown"
    assert len(skipped) == 1 and skipped[0].path.endswith("bad.txt") and "UTF-8" in skipped[0].reason


def test_two_files_with_one_name_get_distinct_ids_that_hold_across_builds(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "same.txt").write_text("Un.", encoding="utf-8")
    (tmp_path / "b" / "same.md").write_text("Deux.", encoding="utf-8")
    documents, _ = load_documents([tmp_path])
    ids = [d.id for d in documents]
    assert ids[0] == "same" and re.fullmatch(r"same-[0-9a-f]{8}", ids[1]), ids
    assert [d.id for d in load_documents([tmp_path])[0]] == ids
    assert [d.id for d in load_documents([tmp_path / "b"], taken=["same"])[0]] == ids[1:], "added beside the other"


def test_languages_are_told_offline_or_left_unknown():
    from rag.ingest.language import document_language, probabilities, sure_language

    assert document_language(ARTICLE.read_text(encoding="utf-8")) == "fr"
    assert document_language("Die Verteidigung der Panthers gab nur 308 Punkte ab.") == "de"
    assert document_language("1234 5678 ---") is None, "digits say nothing"
    assert sure_language(probabilities("What did Putin demand?")) == "en"
    assert probabilities("a\x00b what did Putin demand?") == probabilities("ab what did Putin demand?")
    assert probabilities(" \n ") == {}
