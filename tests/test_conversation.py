"""Follow-ups read with the earlier question of a conversation, without an LLM: a fragment leans
on it, a long question with a clear best keeps it, a long history fitted. Fake vectors, real FAISS."""

import numpy as np
import pytest

from rag.answer.questions import MAX_HISTORY_CHARACTERS, MAX_TURNS, Turn, fit_history
from rag.errors import InputError
from rag.retrieve.late_interaction import CONTEXT_TOKENS, retrieve
from rag.store.faiss_index import FaissIndex
from rag.store.tokens import TokenVectors

DIMENSION = 4


def unit(*values):
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def corpus(*sentences):
    """Each sentence one token vector, its pooled vector the same."""
    pooled = np.stack(sentences)
    vectors = FaissIndex.create(DIMENSION, len(pooled), "flat")
    vectors.add(pooled)
    return vectors, TokenVectors.join([s[None] for s in sentences], DIMENSION)


def test_a_fragment_leans_on_the_earlier_question():
    # The follow-up alone matches a and b about alike; the earlier question holds what b holds.
    question = unit(1, 1, 0, 0)
    a, b = unit(1, 0.9, 0, 0.2), unit(0.9, 1, 0.2, 0)
    vectors, tokens = corpus(a, b, unit(0, 0, 0, 1))
    alone = retrieve(question, question[None], vectors, tokens)
    assert [s.row for s in alone.ranked][:2] == [0, 1]
    earlier = unit(0, 0.3, 1, 0)
    followed = retrieve(question, question[None], vectors, tokens, context=(earlier, earlier[None]))
    assert [s.row for s in followed.ranked][:2] == [1, 0], "b, which fits the conversation, first"
    share = CONTEXT_TOKENS / (1 + CONTEXT_TOKENS)  # the question has one token here
    expected = (1 - share) * float(question @ b) + share * float(earlier @ b)
    assert followed.ranked[0].score == pytest.approx(expected, abs=1e-6)
    assert np.allclose(followed.ranked[0].coverage, [question @ b]), "coverage stays the question's own"


def test_a_long_question_with_a_clear_best_keeps_it_whatever_came_before():
    # Five tokens of the question against the earlier question's weight of CONTEXT_TOKENS.
    question_tokens = np.stack([unit(1, 0, 0, 0)] * 5)
    question = unit(1, 0, 0, 0)
    vectors, tokens = corpus(unit(1, 0.1, 0, 0), unit(0.6, 0, 1, 0), unit(0, 0, 1, 0))
    earlier = unit(0, 0, 1, 0)  # about the other sentences entirely
    alone = retrieve(question, question_tokens, vectors, tokens)
    followed = retrieve(question, question_tokens, vectors, tokens, context=(earlier, earlier[None]))
    assert followed.ranked[0].row == alone.ranked[0].row == 0


def test_the_earlier_question_proposes_candidates_too():
    # 70 sentences near the question, one near the earlier question only: dense search for the
    # question alone (64 candidates) misses it, the conversation's does not.
    rng = np.random.default_rng(0)
    near = [unit(1, *(rng.normal(scale=0.05, size=3))) for _ in range(70)]
    vectors, tokens = corpus(*near, unit(0, 0, 0, 1))
    question = unit(1, 0, 0, 0)
    earlier = unit(0, 0, 0, 1)
    alone = {s.row for s in retrieve(question, question[None], vectors, tokens).ranked}
    followed = retrieve(question, question[None], vectors, tokens, context=(earlier, earlier[None]))
    assert 70 not in alone and 70 in {s.row for s in followed.ranked}


def test_a_history_that_grew_is_fitted_and_the_cut_counted():
    turns = [Turn("user", "Who met Putin?"), Turn("assistant", "Witkoff [1]"), Turn("user", " And then? ")]
    fitted = fit_history(turns)
    assert fitted.turns[:2] == turns[:2] and fitted.turns[2] == Turn("user", "And then?") and fitted.cut == 0

    many = [Turn("user", f"q{i}") for i in range(MAX_TURNS + 1)]
    fitted = fit_history(many)
    assert (fitted.turns, fitted.cut) == (many[1:], 1), "21 turns: the oldest is dropped"
    fitted = fit_history([Turn("user", "x" * 1001)])
    assert (fitted.turns, fitted.cut) == ([Turn("user", "x" * 1000)], 1), "a long question is shortened"
    fitted = fit_history([Turn("assistant", "x" * 4001)])
    assert (fitted.turns, fitted.cut) == ([Turn("assistant", "x" * 4000)], 1), "a long answer is shortened"
    answers = [Turn("assistant", str(i) * 4000) for i in range(10)] + [Turn("assistant", "y" * 4000)] * 7
    fitted = fit_history(answers)
    assert fitted.turns == answers[1:] and fitted.cut == 1, "17 x 4,000 characters: the oldest dropped"
    assert sum(len(t.content) for t in fitted.turns) <= MAX_HISTORY_CHARACTERS
    for bad, message in [
        ([Turn("system", "be nice")], "history turn 0: role must be user or assistant"),
        ([Turn("user", "ok"), Turn("user", "  ")], "history turn 1: the turn is empty"),
        ([Turn("user", "x" * 25)] * 25 + [Turn("user", "\ud800")], "history turn 25: the turn is not valid Unicode"),
    ]:
        with pytest.raises(InputError, match=message):
            fit_history(bad)
