"""Checking what a user asks before anything is computed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError

MAX_QUESTION_CHARACTERS = 1000
DEFAULT_CITATIONS = 3
MAX_CITATIONS = 10
MAX_TURNS = 20  # earlier turns of a conversation sent with a question
MAX_HISTORY_CHARACTERS = 64 * 1024  # all of their contents together
MAX_ANSWER_CHARACTERS = 4000  # an earlier answer; only the user's turns resolve a follow-up
EARLIER_QUESTIONS = 2  # the most recent user turns a follow-up is resolved with
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


def check_history(history: Sequence[Turn]) -> list[Turn]:
    """Earlier turns, oldest first, or InputError saying what is wrong."""
    if len(history) > MAX_TURNS:
        raise InputError(f"the history has {len(history)} turns; the limit is {MAX_TURNS}")
    if sum(len(turn.content) for turn in history) > MAX_HISTORY_CHARACTERS:
        raise InputError(f"the history holds over {MAX_HISTORY_CHARACTERS} characters")
    for number, turn in enumerate(history):
        if turn.role not in ROLES:
            raise InputError(f"history turn {number}: role must be user or assistant, not {turn.role!r}")
        if turn.role == "assistant" and len(turn.content) > MAX_ANSWER_CHARACTERS:
            raise InputError(f"history turn {number}: an answer over {MAX_ANSWER_CHARACTERS} characters")
        if turn.role == "user":
            try:
                check_question(turn.content)
            except InputError as exc:
                raise InputError(f"history turn {number}: {str(exc).replace('the question', 'the turn')}") from None
    return list(history)


def earlier_questions(history: Sequence[Turn]) -> list[str]:
    """The user's most recent questions before this one, most recent first."""
    asked = [turn.content.strip() for turn in history if turn.role == "user"]
    return asked[::-1][:EARLIER_QUESTIONS]
