"""``RAG_ANSWERER=extractive``: the answer is the cited sentences themselves, in reading order,
each followed by its marker; or, short of confidence, the closest passage offered as such; or a
plain "not in the documents" that says what the documents are about."""

from __future__ import annotations

from collections.abc import Sequence

from ..retrieve.answerability import Decision
from ..retrieve.late_interaction import Retrieval
from ..store.index import LoadedIndex
from .base import Answer
from .citations import citations, in_reading_order, nearest_rows, supporting_rows
from .questions import Turn

NOT_IN_DOCUMENTS = "The documents do not say."
MAY_NOT_SAY = "The documents may not say this directly; the closest passage is: "
TITLES_SHOWN = 3


def about(titles: tuple[str, ...]) -> str:
    """What the documents are about, from their titles (``LoadedIndex.titles``)."""
    more = len(titles) - TITLES_SHOWN
    listed = "; ".join(titles[:TITLES_SHOWN])
    # A title cut with "…" ends the sentence itself: "Vladimir…", not "Vladimir…."
    end = f"; and {more} more." if more > 0 else "" if listed.endswith(("…", ".", "!", "?")) else "."
    return " They are about: " + listed + end


class ExtractiveAnswerer:
    def answer(
        self,
        question: str,
        retrieval: Retrieval,
        decision: Decision,
        index: LoadedIndex,
        limit: int,
        history: Sequence[Turn] = (),
    ) -> Answer:
        confidence = None if decision.confidence is None else round(decision.confidence, 4)
        if decision.answer:
            cited = citations(supporting_rows(retrieval, index, limit), retrieval, index)
            text = " ".join(f"{c.text} [{c.id}]" for c in in_reading_order(cited))
            return Answer(question=question, abstained=False, answer=text, citations=cited, confidence=confidence)
        if decision.show_closest:
            cited = citations(nearest_rows(retrieval, limit), retrieval, index)
            text = f"{MAY_NOT_SAY}{cited[0].text} [{cited[0].id}]"
            return Answer(question=question, abstained=True, answer=text, citations=cited, confidence=confidence)
        text = NOT_IN_DOCUMENTS + about(index.titles)
        return Answer(question=question, abstained=True, answer=text, citations=[], confidence=confidence)
