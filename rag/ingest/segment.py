"""Splitting a document's stored text into sentences with exact character offsets:
``text[start:end]`` is the sentence, always, and nothing but white space and headings is left
out. pysbd's rules for the document's language (English's for a language it has none for).
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import pairwise

from .document import Document, Sentence

SEGMENTER = "pysbd-0.3.4-by-language+merge-v2"  # recorded in the manifest; bump when the rules change
DEFAULT_LANGUAGE = "en"

# A paragraph ends at a line break: news articles and our loaders put one paragraph per line;
# blank ones are skipped.
_PARAGRAPH_BREAK = re.compile(r"\n")
# Abbreviations after which pysbd still splits, by language ("p. 12", "janv. 2024").
_ABBREVIATIONS = {
    "fr": frozenset(
        "p pp cf art env éd vol chap fig no n° mme mlle mm dr pr me st ste "
        "janv févr fév avr juil sept oct nov déc h min av apr j.-c".split()
    )
}
_LAST_WORD = re.compile(r"([\w°.-]+)\.\s*$")


def pysbd_language(language: str | None) -> str:
    from pysbd.languages import LANGUAGE_CODES

    return language if language in LANGUAGE_CODES else DEFAULT_LANGUAGE


@lru_cache(maxsize=8)
def _segmenter(language: str):
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph with visible text."""
    spans = []
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _continues_previous(previous: str, following: str, language: str) -> bool:
    """Whether pysbd split where a sentence does not end: after a known abbreviation,
    or before a word in lower case."""
    first = following.lstrip()[:1]
    if first.islower():
        return True
    match = _LAST_WORD.search(previous)
    return bool(match) and match.group(1).lower() in _ABBREVIATIONS.get(language, frozenset())


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _boundaries(text: str, start: int, end: int, language: str) -> list[int]:
    """Where pysbd ends sentences inside text[start:end], as offsets into ``text``.

    pysbd's pieces are only a guide: it may drop or rewrite characters ("a.!!" comes
    back as "a."), so each piece is located in the original text and only its end is
    kept. Spans are then cut from the original text, which nothing can lose."""
    cuts = [start]
    for piece in _segmenter(language).segment(text[start:end]):
        core = piece.strip()
        found = text.find(core, cuts[-1], end) if core else -1
        if found < 0:  # blank, or rewritten by pysbd: keep its text, drop its boundary
            continue
        cut = found + len(core)
        while cut < end and not text[cut].isspace() and not text[cut].isalnum():
            cut += 1  # closing marks pysbd left for the next piece ("?!!", "»")
        if cut > cuts[-1]:
            cuts.append(cut)
    return [*cuts, end] if cuts[-1] < end else cuts


def _split_paragraph(text: str, start: int, end: int, language: str) -> list[tuple[int, int]]:
    """Sentence spans inside text[start:end], trimmed of surrounding white space."""
    spans: list[tuple[int, int]] = []
    cuts = _boundaries(text, start, end, language)
    for cut_start, cut_end in pairwise(cuts):
        span_start, span_end = _strip(text, cut_start, cut_end)
        if span_start == span_end:
            continue
        piece = text[span_start:span_end]
        if spans and (
            not any(char.isalnum() for char in piece)
            or _continues_previous(text[spans[-1][0] : spans[-1][1]], piece, language)
        ):
            spans[-1] = (spans[-1][0], span_end)
        else:
            spans.append((span_start, span_end))
    return spans


def split_sentences(document: Document) -> list[Sentence]:
    language = pysbd_language(document.language)
    headings = {(heading.start, heading.end) for heading in document.headings}
    sentences: list[Sentence] = []
    for paragraph, (p_start, p_end) in enumerate(_paragraphs(document.text)):
        if _strip(document.text, p_start, p_end) in headings:
            continue
        for start, end in _split_paragraph(document.text, p_start, p_end, language):
            sentences.append(Sentence(document.id, len(sentences), paragraph, start, end))
    return sentences
