"""Checking what a user asks before anything is computed."""

from __future__ import annotations

from ..errors import InputError

MAX_QUESTION_CHARACTERS = 1000
DEFAULT_CITATIONS = 3
MAX_CITATIONS = 10


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
