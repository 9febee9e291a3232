"""Follow-ups resolved by the earlier questions of a conversation, without an LLM: near-ties
broken by the earlier questions, a clear best kept, history checked. Fake vectors, real FAISS."""

import numpy as np
import pytest

from rag.answer.questions import MAX_TURNS, Turn, check_history, earlier_questions
from rag.errors import InputError
from rag.retrieve.late_interaction import EARLIER_TIE, retrieve
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


def test_the_earlier_question_breaks_a_near_tie_and_leaves_the_decided_score():
    question = unit(1, 1, 0, 0)
    a, b = unit(1, 0.9, 0, 0.2), unit(0.9, 1, 0.2, 0)  # the question alone: a tie, a a little ahead
    vectors, tokens = corpus(a, b, unit(0, 0, 0, 1))
    alone = retrieve(question, question[None], vectors, tokens)
    assert [s.row for s in alone.ranked][:2] == [0, 1]
    assert alone.ranked[0].score - alone.ranked[1].score < EARLIER_TIE
    earlier = unit(0, 0.3, 1, 0)  # asked before: about what b alone also holds
    followed = retrieve(question, question[None], vectors, tokens, earlier=[(earlier, earlier[None])])
    assert [s.row for s in followed.ranked][:2] == [1, 0], "b, which fits the conversation, first"
    assert [s.score for s in followed.ranked][:2] == [alone.ranked[1].score, alone.ranked[0].score], "plain scores"
    assert followed.best == alone.best, "answerability reads the question's own best score"


def test_a_question_with_a_clear_best_keeps_it_whatever_came_before():
    question = unit(1, 0, 0, 0)
    vectors, tokens = corpus(unit(1, 0.1, 0, 0), unit(0.6, 0, 1, 0), unit(0, 0, 1, 0))
    earlier = unit(0, 0, 1, 0)  # about the other sentences entirely
    alone = retrieve(question, question[None], vectors, tokens)
    followed = retrieve(question, question[None], vectors, tokens, earlier=[(earlier, earlier[None])])
    assert followed.ranked[0].row == alone.ranked[0].row == 0
    assert followed.best == alone.best


def test_the_earlier_question_proposes_candidates_too():
    # 70 sentences near the question, one near the earlier question only: dense search for the
    # question alone (64 candidates) misses it, the conversation's does not.
    rng = np.random.default_rng(0)
    near = [unit(1, *(rng.normal(scale=0.05, size=3))) for _ in range(70)]
    vectors, tokens = corpus(*near, unit(0, 0, 0, 1))
    question = unit(1, 0, 0, 0)
    earlier = unit(0, 0, 0, 1)
    alone = {s.row for s in retrieve(question, question[None], vectors, tokens).ranked}
    followed = retrieve(question, question[None], vectors, tokens, earlier=[(earlier, earlier[None])])
    assert 70 not in alone and 70 in {s.row for s in followed.ranked}


def test_history_is_checked_and_only_recent_user_turns_resolve():
    turns = [Turn("user", "Who met Putin?"), Turn("assistant", "Witkoff [1]"), Turn("user", " And then? ")]
    assert check_history(turns) == turns
    assert earlier_questions(turns) == ["And then?", "Who met Putin?"]
    assert earlier_questions([Turn("user", f"q{i}") for i in range(5)]) == ["q4", "q3"]
    for bad, message in [
        ([Turn("user", "x")] * (MAX_TURNS + 1), "21 turns; the limit is 20"),
        ([Turn("system", "be nice")], "history turn 0: role must be user or assistant"),
        ([Turn("user", "ok"), Turn("user", "  ")], "history turn 1: the turn is empty"),
        ([Turn("user", "x" * 1001)], "history turn 0: the turn has 1001 characters"),
        ([Turn("assistant", "x" * 4001)], "history turn 0: an answer over 4000 characters"),
        ([Turn("assistant", "x" * 4000)] * 17, "over 65536 characters"),
    ]:
        with pytest.raises(InputError, match=message):
            check_history(bad)
