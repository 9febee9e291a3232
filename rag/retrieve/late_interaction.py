"""Scoring the sentences of the index for one question.

Dense search over the pooled vectors (the vector index) proposes candidates; late interaction re-scores
them: each question token takes its best cosine among the sentence's tokens, and the sentence
scores the mean of those (MaxSim, as in ColBERT). On our question sets this finds the right
sentence first for 41 of 45 questions where pooled cosine finds 37 (docs/answer-quality.md, "Earlier findings").

The same score against background sentences on unrelated subjects is the answerability fallback
for a model without fitted thresholds (``answerability.py``): a question the index answers
matches some sentence of it better than any background sentence (``Retrieval.margin`` > 0). It
costs about as much as the rest of the scoring, so it is computed only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..store.tokens import Tokens
from ..store.vector_index import VectorIndex

CANDIDATES = 64  # sentences proposed by dense search for late-interaction scoring
# A follow-up ("and when was that?") is read with the question before it: each sentence scores
# the mean of its best matches for the follow-up's tokens and, counted as CONTEXT_TOKENS more
# tokens, its mean for the earlier question's, so that a fragment leans on the conversation and
# a long question on itself (docs/answer-quality.md, "Follow-up questions").
CONTEXT_TOKENS = 2.0


@dataclass(frozen=True)
class Scored:
    row: int  # the sentence's row in the index
    score: float  # late-interaction score, from -1 to 1
    coverage: np.ndarray  # for each question token, its best similarity within this sentence
    threshold: float = 0.0  # the score that answers, for this sentence's language (0 when not fitted)

    @property
    def clearance(self) -> float:
        """How far the score clears this sentence's answer threshold (for its document's language)."""
        return self.score - self.threshold


@dataclass(frozen=True)
class Retrieval:
    question_tokens: np.ndarray  # the question's token vectors the scores compare
    ranked: list[Scored]  # best first
    background_best: float | None = None  # the best score among the background sentences, if scored

    @property
    def best(self) -> float:
        """The question's best score for any candidate (-1 without candidates)."""
        return max((scored.score for scored in self.ranked), default=-1.0)

    @property
    def clearance(self) -> float:
        """The best clearance of any candidate (-2 without candidates): answerability's input."""
        return max((scored.clearance for scored in self.ranked), default=-2.0)

    @property
    def margin(self) -> float:
        """How much better the best sentence of the index matches than the best background one."""
        if self.background_best is None:
            raise ValueError("the background was not scored for this retrieval")
        return self.best - self.background_best


@dataclass(frozen=True)
class LanguageSplit:
    """The rows of the documents in the question's language (``same``) and the others'
    (``other``), each as (start, end) ranges, and how much lower the same-language rows' dense
    scores count (``handicap``): pooled cosines also run higher in the question's language."""

    same: np.ndarray
    other: np.ndarray
    handicap: float


@dataclass(frozen=True)
class Joined:
    """The token vectors of some texts in one matrix: rows ``offsets[i]:offsets[i + 1]`` are text i's."""

    vectors: np.ndarray
    offsets: np.ndarray

    @classmethod
    def read(cls, tokens: Tokens, texts: Sequence[int] | None = None) -> Joined:
        """``texts`` (all of them when None) read once, to score several questions against."""
        per_text = [tokens.of(text) for text in (range(len(tokens)) if texts is None else texts)]
        offsets = np.zeros(len(per_text) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(rows) for rows in per_text])
        vectors = np.concatenate(per_text) if per_text else np.zeros((0, 0), dtype=np.float32)
        return cls(vectors, offsets)

    def best_matches(self, question: np.ndarray) -> np.ndarray:
        """For each text, each question token's best cosine among the text's tokens: an array of
        shape (texts, question tokens)."""
        lengths = np.diff(self.offsets)
        best = np.full((len(lengths), len(question)), -1.0, dtype=np.float32)
        present = lengths > 0  # reduceat cannot express an empty span
        if present.any() and len(question):
            best[present] = np.maximum.reduceat(self.vectors @ question.T, self.offsets[:-1][present], axis=0)
        return best


def best_matches(question: np.ndarray, tokens: Tokens, texts: Sequence[int] | None = None) -> np.ndarray:
    """For each text (all of them when ``texts`` is None), each question token's best cosine
    among the text's tokens: an array of shape (texts, question tokens)."""
    return Joined.read(tokens, texts).best_matches(question)


def _candidates(vectors: VectorIndex, queries: np.ndarray, count: int, split: LanguageSplit | None) -> list[int]:
    """The rows dense search proposes for any of the queries, sorted."""
    if split is None:
        _, rows = vectors.search(queries, count)
    else:
        same_scores, same_rows = vectors.search(queries, count, split.same)
        other_scores, other_rows = vectors.search(queries, count, split.other)
        scores = np.concatenate([same_scores - split.handicap, other_scores], axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :count]
        rows = np.take_along_axis(np.concatenate([same_rows, other_rows], axis=1), best, axis=1)
    return sorted({int(row) for row in rows.ravel() if row >= 0})


def retrieve(
    question_vector: np.ndarray,
    question_tokens: np.ndarray,
    vectors: VectorIndex,
    tokens: Tokens,
    background: Tokens | None = None,
    context: tuple[np.ndarray, np.ndarray] | None = None,
    thresholds: Callable[[list[int]], np.ndarray] | None = None,
    split: LanguageSplit | None = None,
) -> Retrieval:
    """Rank the sentences for one question (pooled vector and token vectors): candidates from
    ``vectors``, scored against their ``tokens``; if given, the best score among ``background``;
    and, for a follow-up read with the conversation, the ``context`` (the earlier question's
    pooled vector and token vectors), which proposes candidates too and weighs in each score.

    ``thresholds`` gives each candidate row the score that answers for it (by its document's
    language), kept with it for the decision; candidates are ranked by their raw score. Ranked by
    how far they cleared their thresholds, the other-language threshold's 0.06 lifted every
    sentence in another language, the wrong ones too: on eval/own (six documents in six languages
    beside the bundled article) the right sentence came first for 41 of 65 questions, 44 by the
    raw score (45 and 43 with half and three quarters of the lift), and in the 100,000-sentence
    corpus it gained nothing (docs/performance.md, "A 100,000-sentence corpus end to end"). Dense search
    prefers the question's language too; with a ``split``, the candidates are the best by the
    handicapped dense score, from a search of each side, which did gain there."""
    count = min(CANDIDATES, vectors.count())
    queries = question_vector[None] if context is None else np.stack([question_vector, context[0]])
    candidates = _candidates(vectors, queries, count, split)
    read = Joined.read(tokens, candidates)
    coverage = read.best_matches(question_tokens)
    scores = coverage.mean(axis=1)
    if context is not None and candidates:
        earlier = read.best_matches(context[1]).mean(axis=1)
        scores = (coverage.sum(axis=1) + CONTEXT_TOKENS * earlier) / (len(question_tokens) + CONTEXT_TOKENS)
    bars = np.zeros(len(candidates)) if thresholds is None or not candidates else thresholds(candidates)
    ranked = [
        Scored(row=candidates[i], score=float(scores[i]), coverage=coverage[i], threshold=float(bars[i]))
        for i in sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i]))
    ]
    background_best = None
    if background is not None:
        background_best = float(best_matches(question_tokens, background).mean(axis=1).max(initial=-1.0))
    return Retrieval(question_tokens, ranked, background_best)
