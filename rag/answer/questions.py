"""Checking what a user asks before anything is computed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError

MAX_QUESTION_CHARACTERS = 1000
DEFAULT_CITATIONS = 3
MAX_CITATIONS = 10
MAX_TURNS = 20  # earlier turns of a conversation a question is read with; older ones are cut
MAX_HISTORY_CHARACTERS = 64 * 1024  # all of their contents together; older turns are cut
MAX_ANSWER_CHARACTERS = 4000  # an earlier answer sent back as history is shortened to this
ROLES = ("user", "assistant")


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


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


@dataclass(frozen=True)
class FittedHistory:
    turns: list[Turn]  # oldest first, within the limits
    cut: int  # earlier turns dropped (oldest first) or shortened to fit the limits


def fit_history(history: Sequence[Turn]) -> FittedHistory:
    """The conversation within the limits: a conversation that merely grew goes on, cut from its
    oldest turns (at most MAX_TURNS, MAX_HISTORY_CHARACTERS in all) with each over-long turn
    shortened, and the cut counted so that it is reported, never silent. A turn that is not a
    turn at all (an unknown role, an empty or invalid question) is InputError."""
    for number, turn in enumerate(history):
        if turn.role not in ROLES:
            raise InputError(f"history turn {number}: role must be user or assistant, not {turn.role!r}")
        if turn.role == "user":
            try:
                check_question(turn.content.strip()[:MAX_QUESTION_CHARACTERS])
            except InputError as exc:
                raise InputError(f"history turn {number}: {str(exc).replace('the question', 'the turn')}") from None
    kept = list(history[-MAX_TURNS:])
    cut = len(history) - len(kept)
    fitted = []
    for turn in kept:
        limit = MAX_QUESTION_CHARACTERS if turn.role == "user" else MAX_ANSWER_CHARACTERS
        content = turn.content.strip() if turn.role == "user" else turn.content
        cut += len(content) > limit
        fitted.append(Turn(turn.role, content[:limit]))
    while sum(len(turn.content) for turn in fitted) > MAX_HISTORY_CHARACTERS:
        fitted.pop(0)
        cut += 1
    return FittedHistory(fitted, cut)


def earlier_questions(history: Sequence[Turn]) -> list[str]:
    """The user's questions before this one, most recent first."""
    return [turn.content.strip() for turn in reversed(history) if turn.role == "user"]
