"""Each candidate's answer threshold depends on whether the question shares its document's
language; candidates keep their raw order. Fake vectors, real FAISS, a real index on disk."""

import numpy as np

from rag.engine import Engine
from rag.retrieve.answerability import Thresholds, decide
from rag.retrieve.late_interaction import LanguageSplit, retrieve
from rag.settings import Settings
from rag.store.index import load_index

from .conftest import FakeEmbedder
from .test_conversation import corpus, unit

THRESHOLDS = Thresholds(same_language=0.73, other_language=0.67)


def test_candidates_keep_their_raw_order_and_each_its_own_threshold():
    """Ranked by how far they cleared their thresholds, other-language sentences were lifted by
    the lower threshold, the wrong ones too (eval/own: 41 of 65 first right, 44 by raw score)."""
    question = unit(1, 0.8, 0, 0)
    same_language, other_language = unit(1, 0, 0, 0.45), unit(0.25, 1, 0, 0.55)  # 0.712, 0.702
    vectors, tokens = corpus(same_language, other_language, unit(0, 0, 1, 0))
    plain = retrieve(question, question[None], vectors, tokens)
    assert [s.row for s in plain.ranked][:2] == [0, 1]
    assert 0.67 < plain.ranked[1].score < plain.ranked[0].score < 0.73

    def bars(rows):
        return THRESHOLDS.for_languages({"fr": 1.0}, ["fr" if row == 0 else "en" for row in rows])

    ranked = retrieve(question, question[None], vectors, tokens, thresholds=bars)
    assert [s.row for s in ranked.ranked][:2] == [0, 1], "the raw order"
    assert [s.threshold for s in ranked.ranked][:2] == [0.73, 0.67], "each with its language's threshold"
    assert {s.row: s.score for s in ranked.ranked} == {s.row: s.score for s in plain.ranked}, "raw scores kept"
    # Without a calibration, the documents answer when any candidate clears its threshold.
    assert decide(ranked, fitted=True).answer and ranked.clearance == ranked.ranked[1].score - 0.67


def test_each_sentence_gets_the_threshold_of_its_documents_language():
    question = {"fr": 0.9, "en": 0.1}
    got = THRESHOLDS.for_languages(question, ["fr", "en", None, "de"])
    assert np.allclose(got, [0.67 + 0.9 * 0.06, 0.67 + 0.1 * 0.06, 0.70, 0.67])
    assert np.allclose(THRESHOLDS.for_languages({}, ["fr", None]), [0.70, 0.70]), "question language unknown"


def indexed(tmp_path, texts):
    """The index of ``texts`` (file name: text), built with the fake embedder."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in texts.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = Settings(embedding_model="fake", backend="fake", index_dir=tmp_path / "index", seeds_dir=docs)
    Engine(settings, embedder=FakeEmbedder()).build_index()
    return load_index(settings.index_dir)


def test_rows_are_attributed_to_their_documents(tmp_path):
    texts = {
        "a.txt": "Le chat dort sur le tapis. Il fait beau aujourd'hui.",
        "b.txt": "The dog barks at night. Nobody sleeps. The neighbours complain.",
        "c.txt": "Der Zug kommt spät an.",
    }
    index = indexed(tmp_path, texts)
    rows = list(range(len(index.sentences)))[::-1]
    expected = [index.sentences[row].document for row in rows]
    assert [held.id for held in index.holders(rows)] == expected
    assert len(set(expected)) == 3


def test_a_search_within_ranges_returns_only_their_rows_and_two_sides_make_the_whole():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index, _ = corpus(*vectors)
    question = vectors[7:8]
    inside = np.array([[0, 5], [20, 30]])
    outside = np.array([[5, 20], [30, 50]])
    _, rows = index.search(question, 10, inside)
    assert all(0 <= r < 5 or 20 <= r < 30 for r in rows[0])
    _, whole = index.search(question, 10)
    inside_scores, inside_rows = index.search(question, 10, inside)
    outside_scores, outside_rows = index.search(question, 10, outside)
    scores = np.concatenate([inside_scores[0], outside_scores[0]])
    rows = np.concatenate([inside_rows[0], outside_rows[0]])
    assert list(rows[np.argsort(-scores)][:10]) == list(whole[0]), "the two sides together give the whole search"


def test_dense_candidates_in_the_question_language_are_handicapped():
    # 70 same-language rows just ahead of one other-language row: without the split the
    # 64 candidates are all same-language; with it, the other-language row is among them.
    rng = np.random.default_rng(0)
    same = [unit(1, *(rng.normal(scale=0.05, size=3))) for _ in range(70)]
    other = unit(1, 0.3, 0, 0)
    vectors, tokens = corpus(*same, other)
    question = unit(1, 0, 0, 0)
    assert question @ other < min(question @ s for s in same)
    plain = {s.row for s in retrieve(question, question[None], vectors, tokens).ranked}
    split = LanguageSplit(np.array([[0, 70]]), np.array([[70, 71]]), handicap=0.1)
    handicapped = {s.row for s in retrieve(question, question[None], vectors, tokens, split=split).ranked}
    assert 70 not in plain and 70 in handicapped and len(handicapped) == 64


def test_rows_by_language_splits_the_index_into_ranges(tmp_path):
    texts = {
        "a.txt": "Le chat dort sur le tapis pendant que la pluie tombe sur la ville. Il fait froid.",
        "b.txt": "The dog barks at night while the whole street tries to sleep. Nobody sleeps.",
        "c.txt": "Le train arrive en retard à la gare centrale de la ville ce matin. Personne ne sait pourquoi.",
    }
    index = indexed(tmp_path, texts)
    french, others = index.rows_by_language("fr")
    a, b, c = (list(range(held.first_row, held.first_row + held.sentences)) for held in index.row_order)
    assert [held.language for held in index.row_order] == ["fr", "en", "fr"]
    assert [list(range(start, end)) for start, end in french] == [a, c]
    assert [list(range(start, end)) for start, end in others] == [b]
    assert len(index.rows_by_language("de")[0]) == 0
    assert [list(range(start, end)) for start, end in index.rows_by_language("de")[1]] == [a + b + c]
