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

    def to_dict(self) -> dict:
        return asdict(self)


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
