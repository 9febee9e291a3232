"""Choosing the sentences to cite: the best one, others close to it that answer what it
leaves uncovered, each with the sentence it refers back to."""

from __future__ import annotations

import re

import numpy as np

from ..retrieve.late_interaction import Retrieval, best_matches
from ..store.index import LoadedIndex
from .base import Citation

NEAR_BEST = 0.08  # a further citation scores within this of the best one...
MIN_GAIN = 0.01  # ...and raises the question's coverage (mean best match per token) by this
NEAREST_WHEN_ABSTAINING = 2

# A sentence opening with one of these leans on the one before ("Ces deux accords se sont
# toutefois effondrés…"), so the one before is cited with it. French, the articles' language,
# and English.
REFERS_BACK = frozenset(
    "ce cet cette ces cela ça ceci il elle ils elles celui celle ceux celles "
    "this these that those he she it they".split()
)
_FIRST_WORD = re.compile(r"[^\W\d_]+")


def _refers_back(text: str) -> bool:
    first = _FIRST_WORD.search(text)
    return first is not None and first.start() < 3 and first.group().lower() in REFERS_BACK


def supporting_rows(retrieval: Retrieval, index: LoadedIndex, limit: int) -> list[int]:
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
        if len(chosen) >= limit or candidate.clearance < best.clearance - NEAR_BEST:
            break
        gain = float(np.maximum(covered, candidate.coverage).mean() - covered.mean())
        if candidate.row not in chosen and gain >= MIN_GAIN:
            cite(candidate.row)
            covered = np.maximum(covered, candidate.coverage)
    return chosen[:limit]


def nearest_rows(retrieval: Retrieval, limit: int) -> list[int]:
    """The closest sentences, for a reader to judge when the index does not answer."""
    return [scored.row for scored in retrieval.ranked[: min(limit, NEAREST_WHEN_ABSTAINING)]]


def citations(rows: list[int], retrieval: Retrieval, index: LoadedIndex) -> list[Citation]:
    """The rows as citations numbered from 1, each with its late-interaction score."""
    scores = {scored.row: scored.score for scored in retrieval.ranked}
    missing = [row for row in rows if row not in scores]  # a cited sentence before a candidate
    for row, coverage in zip(missing, best_matches(retrieval.question_tokens, index.tokens, missing), strict=True):
        scores[row] = float(coverage.mean())
    cited = []
    for number, row in enumerate(rows, start=1):
        sentence = index.sentences[row]
        cited.append(
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
    return cited


def in_reading_order(cited: list[Citation]) -> list[Citation]:
    """The cited sentences as the answer text reads them: in document order, each followed by its marker."""
    return sorted(cited, key=lambda c: (c.document, c.start))
