"""Words of a text, for lexical checks in any script: runs of letters, digits and underscores,
case-folded."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())
