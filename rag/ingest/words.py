"""Words of a text, for lexical checks in any script: runs of letters, digits and underscores,
case-folded."""

from __future__ import annotations

import re
from collections.abc import Iterator

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def iter_words(text: str) -> Iterator[str]:
    """``words(text)`` one at a time, for a text too long to hold its list of words."""
    return (match.group() for match in _WORD.finditer(text.casefold()))


def word_has_digit(word: str) -> bool:
    return any(char.isdigit() for char in word)
