"""``RAG_ANSWERER=extractive``: the answer is the cited sentences themselves, in reading order,
each followed by its marker; or a plain abstention."""

from __future__ import annotations

from ..retrieve.answerability import answerable, worth_showing
from ..retrieve.late_interaction import Retrieval
from ..store.index import LoadedIndex
from .base import Answer
from .citations import citations, in_reading_order, nearest_rows, supporting_rows

NOT_IN_ARTICLE = "The article does not say."
CLOSEST_NOTE = " The closest passages are cited for you to judge."


class ExtractiveAnswerer:
    def answer(self, question: str, retrieval: Retrieval, index: LoadedIndex, limit: int) -> Answer:
        if answerable(retrieval):
            cited = citations(supporting_rows(retrieval, index, limit), retrieval, index)
            text = " ".join(f"{c.text} [{c.id}]" for c in in_reading_order(cited))
            return Answer(question=question, abstained=False, answer=text, citations=cited)
        cited = citations(nearest_rows(retrieval, limit), retrieval, index) if worth_showing(retrieval) else []
        text = NOT_IN_ARTICLE + (CLOSEST_NOTE if cited else "")
        return Answer(question=question, abstained=True, answer=text, citations=cited)
