"""The answer seam: the Answer every way of use shows, and the Answerer protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from ..retrieve.answerability import Decision
from ..retrieve.late_interaction import Retrieval
from ..store.index import LoadedIndex
from .questions import Turn


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
    mode: str = "extractive"  # "generated": written by an LLM server from the cited sentences
    reason: str | None = None  # why an answer meant to be generated is extractive ("llm-timeout", ...)
    # The calibrated probability that the first citation answers the question (None: no
    # calibration for the model, or the message was not searched, as chit-chat is not).
    confidence: float | None = None
    # The question as it was searched: a follow-up read with the conversation ("where did they
    # meet? and when?"), or rewritten as a standalone question by the LLM server; else the question.
    resolved_question: str | None = None
    history_cut: int = 0  # earlier turns dropped (oldest first) or shortened to fit the limits

    @property
    def outcome(self) -> str:
        """ "answer", "closest" (the closest passage, not a sure answer) or "none" (not in the documents)."""
        if not self.abstained:
            return "answer"
        return "closest" if self.citations else "none"

    @property
    def read_as(self) -> str | None:
        """The question as it was searched where it reads otherwise than the question (case and
        spacing aside), for a person to see how a follow-up was understood; else None."""
        resolved = self.resolved_question
        if resolved is None or " ".join(resolved.split()).casefold() == " ".join(self.question.split()).casefold():
            return None
        return resolved

    def to_dict(self) -> dict:
        """The answer as POST /api/ask and `rag ask --json` send it: its fields, then its outcome."""
        return {**asdict(self), "outcome": self.outcome}


class Answerer(Protocol):
    def answer(
        self,
        question: str,
        retrieval: Retrieval,
        decision: Decision,
        index: LoadedIndex,
        limit: int,
        history: Sequence[Turn] = (),
    ) -> Answer:
        """The Answer to a checked question from its retrieval over ``index`` and the decision
        whether the index answers it, citing at most ``limit`` sentences: cited sentences, or an
        abstention. ``history`` holds the conversation's earlier turns, oldest first."""
        ...
