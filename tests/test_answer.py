"""Choosing citations, abstaining, checking questions. Fake vectors, a real index on disk."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.answer import questions
from rag.answer.extractive import ExtractiveAnswerer
from rag.engine import Engine
from rag.errors import InputError
from rag.retrieve.answerability import Thresholds, decide
from rag.retrieve.late_interaction import Retrieval, Scored, best_matches
from rag.settings import Settings
from rag.store.index import load_index
from rag.store.tokens import TokenVectors

from .conftest import SEEDS, FakeEmbedder


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    from .conftest import FakeEmbedder

    settings = Settings(embedding_model="fake", index_dir=tmp_path_factory.mktemp("index"), seeds_dir=SEEDS)
    Engine(settings, embedder=FakeEmbedder()).build_index()
    return load_index(settings.index_dir)


def scored(row, score, coverage):
    return Scored(row=row, score=score, coverage=np.array(coverage, dtype=np.float32))


def retrieval(*ranked, background=0.5):
    question_tokens = np.zeros((len(ranked[0].coverage), 16), dtype=np.float32)
    return Retrieval(question_tokens=question_tokens, ranked=list(ranked), background_best=background)


def compose(found, index, limit=3, fitted=False):
    """The answer, decided by the candidates' thresholds if ``fitted``, else by the fallback
    margin over the background."""
    return ExtractiveAnswerer().answer("q", found, decide(found, fitted), index, limit)


def test_the_best_sentence_comes_first_and_its_text_is_the_documents(index):
    found = retrieval(scored(6, 0.80, [0.8, 0.8]), scored(2, 0.60, [0.6, 0.6]))
    result = compose(found, index, limit=3)
    assert not result.abstained
    assert [c.sentence for c in result.citations] == [6] and result.citations[0].id == 1
    text = index.documents[result.citations[0].document].text
    assert result.citations[0].text == text[result.citations[0].start : result.citations[0].end]
    assert result.answer == f"{result.citations[0].text} [1]"
    assert result.citations[0].score == 0.8


def test_a_close_sentence_covering_another_part_of_the_question_is_cited_too(index):
    found = retrieval(
        scored(15, 0.80, [0.9, 0.9, 0.6]),
        scored(16, 0.79, [0.9, 0.9, 0.6]),  # adds nothing the first does not cover
        scored(18, 0.75, [0.6, 0.6, 0.9]),  # covers the third question token
        scored(3, 0.60, [0.5, 0.5, 0.99]),  # covers it too but scores too far below the best
    )
    result = compose(found, index, limit=3)
    assert [c.sentence for c in result.citations] == [15, 18]
    assert result.answer.index("[2]") > result.answer.index("[1]"), "sentences in reading order"


def test_a_sentence_that_refers_back_brings_the_one_before(index):
    # Sentence 8 opens "Ces deux accords…", about the agreements of sentence 7.
    assert index.sentence_text(index.sentences[8]).startswith("Ces deux accords")
    found = retrieval(scored(8, 0.80, [0.8]), scored(7, 0.60, [0.6]))
    result = compose(found, index, limit=3)
    assert [c.sentence for c in result.citations] == [8, 7]
    assert result.citations[1].score == 0.6
    assert result.answer.index("[2]") < result.answer.index("[1]"), "sentence 7 is read first"
    alone = compose(found, index, limit=1)
    assert [c.sentence for c in alone.citations] == [8], "the limit holds"


def test_no_better_than_the_background_means_abstaining_without_passages(index):
    found = retrieval(scored(6, 0.60, [0.6]), background=0.70)
    result = compose(found, index, limit=3)
    assert result.abstained and result.citations == []
    title = next(iter(index.documents.values())).title
    assert title.endswith("…"), "the article's first sentence, cut: its ellipsis ends the answer"
    assert result.answer == f"The documents do not say. They are about: {title}"


def test_a_near_miss_abstains_but_offers_the_closest_passage(index):
    found = retrieval(scored(6, 0.70, [0.7]), scored(5, 0.69, [0.69]), scored(4, 0.6, [0.6]), background=0.70)
    result = compose(found, index, limit=3)
    assert result.abstained and [c.sentence for c in result.citations] == [6, 5]
    assert result.outcome == "closest"
    assert (
        result.answer
        == f"The documents may not say this directly; the closest passage is: {result.citations[0].text} [1]"
    )


THRESHOLDS = Thresholds(same_language=0.73, other_language=0.67)


@pytest.mark.parametrize(
    ("best", "same", "answered", "closest"),
    [
        (0.75, 1.0, True, True),
        (0.70, 1.0, False, True),  # below 0.73, within 0.05 of it
        (0.70, 0.0, True, True),  # another language: 0.67 is enough
        (0.70, 0.5, True, True),  # half way: 0.70
        (0.69, 0.5, False, True),
        (0.66, 0.0, False, True),
        (0.60, 1.0, False, False),  # far below: no closest passages either
    ],
)
def test_the_threshold_follows_the_chance_that_question_and_sentence_share_a_language(
    index, best, same, answered, closest
):
    bar = THRESHOLDS.threshold(same)
    found = retrieval(
        Scored(6, best, np.array([best], dtype=np.float32), bar),
        Scored(5, best - 0.01, np.array([best - 0.01], dtype=np.float32), bar),
        background=0.0,
    )
    decision = decide(found, fitted=True)
    assert (decision.answer, decision.show_closest) == (answered, closest)
    result = compose(found, index, fitted=True)
    assert result.abstained is not answered and bool(result.citations) is (answered or closest)


def test_the_shipped_thresholds_are_for_the_default_model_only():
    from rag.settings import DEFAULT_MODEL

    shipped = Thresholds.for_model(DEFAULT_MODEL)
    assert shipped is not None and 0 < shipped.other_language < shipped.same_language < 1
    assert Thresholds.for_model("another/model") is None


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "empty"),
        (" \n\t ", "empty"),
        ("x" * 1001, "1001 characters; the limit is 1000"),
        ("Putin \ud800?", "lone surrogate"),
    ],
)
def test_bad_questions_are_refused_saying_why(question, message):
    with pytest.raises(InputError, match=message):
        questions.check_question(question)


def test_questions_are_trimmed_and_the_citation_limit_is_bounded():
    assert questions.check_question("  Qui ?\n") == "Qui ?"
    assert questions.check_question("x" * 1000 + "   ") == "x" * 1000
    assert questions.check_citation_limit(None) == 3
    for bad in (0, -1, 11, 10**9):
        with pytest.raises(InputError, match="top_k must be from 1 to 10"):
            questions.check_citation_limit(bad)


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    question_tokens=st.integers(0, 3),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_best_matches_equal_the_plain_definition(lengths, question_tokens, seed, data):
    rng = np.random.default_rng(seed)
    tokens = TokenVectors.join([rng.normal(size=(n, 5)).astype(np.float32) for n in lengths], 5)
    question = rng.normal(size=(question_tokens, 5)).astype(np.float32)
    texts = data.draw(st.none() | st.lists(st.integers(0, len(lengths) - 1), max_size=6))
    got = best_matches(question, tokens, texts)
    chosen = range(len(lengths)) if texts is None else texts
    assert got.shape == (len(chosen), question_tokens)
    for row, text in enumerate(chosen):
        rows = tokens.of(text)
        expected = (rows @ question.T).max(axis=0) if len(rows) else np.full(question_tokens, -1.0)
        assert np.allclose(got[row], expected, atol=1e-5)


def test_the_abstention_names_each_title_once_and_an_untitled_document_by_its_id():
    from rag.answer.extractive import about
    from rag.store.index import titles
    from rag.store.metadata import Listed

    documents = [
        Listed(id, title, f"{id}.txt", "0" * 64, "0" * 64, "text", "en", row, 1)
        for row, (id, title) in enumerate([("a", "Same"), ("b", "Same"), ("c", ""), ("d", "Another"), ("e", "Zebra")])
    ]
    assert about(titles(documents)) == " They are about: Another; Same; Zebra; and 1 more."


def test_the_background_is_scored_only_when_asked_for(index):
    from rag.retrieve.late_interaction import retrieve

    question = FakeEmbedder().encode_queries(["Qui a rencontré Vladimir Poutine ?"])
    args = (question.vectors[0], question.tokens[0], index.vectors, index.tokens)
    without = retrieve(*args)
    assert without.background_best is None
    with pytest.raises(ValueError, match="background was not scored"):
        _ = without.margin
    scored = retrieve(*args, index.background)
    assert [(s.row, s.score) for s in scored.ranked] == [(s.row, s.score) for s in without.ranked]
    assert -1 <= scored.background_best <= 1 and scored.margin == scored.ranked[0].score - scored.background_best


def test_an_abstention_after_a_cut_title_reads_as_one_sentence():
    """Issue 32: a title cut with "…" then the sentence's period read "Vladimir…. The"."""
    from rag.answer.extractive import about

    cut = "L’envoyé spécial Steve Witkoff a rencontré hier le président russe Vladimir…"
    assert about((cut,)) == f" They are about: {cut}"
    assert about(("Bees", cut)) == f" They are about: Bees; {cut}"
    assert about(("Bees",)) == " They are about: Bees."
