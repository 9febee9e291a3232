"""Choosing the sentences to cite, deciding to abstain, and building the Answer."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from .errors import InputError
from .retrieval import Retrieval, best_matches
from .store import IndexContents

MAX_QUESTION_CHARACTERS = 1000
DEFAULT_CITATIONS = 3
MAX_CITATIONS = 10

# Thresholds in late-interaction score units (retrieval.py), set on our own question sets.
ANSWER_MARGIN = 0.01  # answer only if the best sentence beats the best background sentence by this
CLOSEST_MARGIN = -0.04  # when abstaining, still show the nearest sentences if the margin is above this
NEAR_BEST = 0.08  # a further citation scores within this of the best one...
MIN_GAIN = 0.01  # ...and raises the question's coverage (mean best match per token) by this

NOT_IN_ARTICLE = "The article does not say."
CLOSEST_NOTE = " The closest passages are cited for you to judge."

# A sentence opening with one of these leans on the one before ("Ces deux accords se sont
# toutefois effondrés…"), so the one before is cited with it. French, the articles' language,
# and English.
REFERS_BACK = frozenset(
    "ce cet cette ces cela ça ceci il elle ils elles celui celle ceux celles "
    "this these that those he she it they".split()
)
_FIRST_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Citation:
    id: int
    document: str
    sentence: int
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Answer:
    question: str
    abstained: bool
    answer: str
    citations: list[Citation]

    def to_dict(self) -> dict:
        return asdict(self)


def check_question(question: str) -> str:
    """The question without surrounding white space, or InputError saying what is wrong."""
    text = question.strip()
    if not text:
        raise InputError("the question is empty")
    if len(text) > MAX_QUESTION_CHARACTERS:
        raise InputError(f"the question has {len(text)} characters; the limit is {MAX_QUESTION_CHARACTERS}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the question is not valid Unicode text (it holds a lone surrogate)") from None
    return text


def check_citation_limit(top_k: int | None) -> int:
    if top_k is None:
        return DEFAULT_CITATIONS
    if not 1 <= top_k <= MAX_CITATIONS:
        raise InputError(f"top_k must be from 1 to {MAX_CITATIONS}, not {top_k}")
    return top_k


def _refers_back(text: str) -> bool:
    first = _FIRST_WORD.search(text)
    return first is not None and first.start() < 3 and first.group().lower() in REFERS_BACK


def _choose(retrieval: Retrieval, index: IndexContents, limit: int) -> list[int]:
    """Rows to cite, best first: the best sentence, then others close to it that answer
    parts of the question it leaves uncovered; each with the sentence it refers back to."""
    chosen: list[int] = []

    def cite(row: int) -> None:
        chosen.append(row)
        sentence = index.sentences[row]
        before = row - 1
        if (
            len(chosen) < limit
            and before >= 0
            and before not in chosen
            and index.sentences[before].document == sentence.document
            and _refers_back(index.sentence_text(sentence))
        ):
            chosen.append(before)

    best = retrieval.ranked[0]
    cite(best.row)
    covered = best.coverage
    for candidate in retrieval.ranked[1:]:
        if len(chosen) >= limit or candidate.score < best.score - NEAR_BEST:
            break
        gain = float(np.maximum(covered, candidate.coverage).mean() - covered.mean())
        if candidate.row not in chosen and gain >= MIN_GAIN:
            cite(candidate.row)
            covered = np.maximum(covered, candidate.coverage)
    return chosen[:limit]


def in_reading_order(citations: list[Citation]) -> list[Citation]:
    """The cited sentences as the answer text reads them: in document order, each followed by its marker."""
    return sorted(citations, key=lambda c: (c.document, c.start))


def compose(
    question: str, question_tokens: np.ndarray, retrieval: Retrieval, index: IndexContents, limit: int
) -> Answer:
    """The Answer for a checked question: cited sentences, or an abstention."""
    abstained = not retrieval.ranked or retrieval.margin < ANSWER_MARGIN
    if abstained:
        nearby = retrieval.ranked and retrieval.margin >= CLOSEST_MARGIN
        rows = [scored.row for scored in retrieval.ranked[: min(limit, 2)]] if nearby else []
    else:
        rows = _choose(retrieval, index, limit)
    scores = {scored.row: scored.score for scored in retrieval.ranked}
    missing = [row for row in rows if row not in scores]  # a cited sentence before a candidate
    for row, coverage in zip(missing, best_matches(question_tokens, index.tokens, missing), strict=True):
        scores[row] = float(coverage.mean())
    citations = []
    for number, row in enumerate(rows, start=1):
        sentence = index.sentences[row]
        citations.append(
            Citation(
                id=number,
                document=sentence.document,
                sentence=sentence.index,
                start=sentence.start,
                end=sentence.end,
                text=index.sentence_text(sentence),
                score=round(scores[row], 4),
            )
        )
    if abstained:
        text = NOT_IN_ARTICLE + (CLOSEST_NOTE if citations else "")
    else:
        text = " ".join(f"{c.text} [{c.id}]" for c in in_reading_order(citations))
    return Answer(question=question, abstained=abstained, answer=text, citations=citations)
