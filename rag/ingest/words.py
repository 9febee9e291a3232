"""Words of a text, for lexical checks in any script: runs of letters, digits and underscores,
case-folded."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def word_has_digit(word: str) -> bool:
    return any(char.isdigit() for char in word)
