"""Splitting a document's stored text into sentences with exact character offsets:
``text[start:end]`` is the sentence, always, and nothing but white space and headings is left
out. pysbd's rules for the document's language (English's for a language it has none for).
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import pairwise

from .document import Document, Sentence

SEGMENTER = "pysbd-0.3.4-by-language+merge-v2+windows-2000"  # recorded in the manifest; bump when the rules change
DEFAULT_LANGUAGE = "en"
# A sentence longer than this is cut after a word into pieces no longer: about what the embedder
# reads anyway (512 tokens of English or French prose are some 2,000 characters), and it bounds
# what one line without a sentence end costs.
MAX_SENTENCE = 2000
# pysbd reads a paragraph this many characters at a time: its cost grows with the square of what
# it reads at once (200 KB of words without a full stop: 29 s at once, 0.6 s in windows).
PYSBD_WINDOW = 2000

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
_TAIL = 40  # characters of a sentence's end that _LAST_WORD reads: longer than any abbreviation


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


def _word_cut(text: str, start: int, limit: int) -> int:
    """The last white space in text[start:limit + 1] after ``start``, so that text[start:cut]
    ends with a whole word; ``limit`` itself when there is none (one word that long)."""
    cut = limit
    while cut > start and not text[cut].isspace():
        cut -= 1
    return cut if cut > start else limit


def _sentence_ends(text: str, start: int, end: int, language: str) -> list[int]:
    """Where pysbd ends sentences inside text[start:end], as offsets into ``text``, ``end`` last.

    pysbd's pieces are only a guide: it may drop or rewrite characters ("a.!!" comes
    back as "a."), so each piece is located in the original text and only its end is
    kept. Spans are then cut from the original text, which nothing can lose. (pysbd's
    ``segment`` would locate them too, in time that grows with the square of their number.)"""
    cuts = [start]
    for piece in _segmenter(language).processor(text[start:end]).process():
        core = piece.strip()
        found = text.find(core, cuts[-1], end) if core else -1
        if found < 0:  # blank, or rewritten by pysbd: keep its text, drop its boundary
            continue
        cut = found + len(core)
        while cut < end and not text[cut].isspace() and not text[cut].isalnum():
            cut += 1  # closing marks pysbd left for the next piece ("?!!", "»")
        if cut > cuts[-1]:
            cuts.append(cut)
    return [*cuts[1:], end] if cuts[-1] < end else cuts[1:]


def _boundaries(text: str, start: int, end: int, language: str) -> list[int]:
    """``start``, then where sentences end inside text[start:end], read a window at a time."""
    cuts = [start]
    while cuts[-1] < end:
        window_end = min(end, cuts[-1] + PYSBD_WINDOW)
        ends = _sentence_ends(text, cuts[-1], window_end, language)
        if window_end < end:  # the last piece may go on past the window: read it again with what follows
            ends = ends[:-1] or [_word_cut(text, cuts[-1], window_end)]
        cuts += ends
    return cuts


def _windows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """text[start:end] (no white space around it) in pieces of at most MAX_SENTENCE characters,
    each cut after a word, the white space between them left out."""
    pieces = []
    while end - start > MAX_SENTENCE:
        cut = _word_cut(text, start, start + MAX_SENTENCE)
        pieces.append(_strip(text, start, cut))
        start = _strip(text, cut, end)[0]
    return [*pieces, (start, end)]


def _split_paragraph(text: str, start: int, end: int, language: str) -> list[tuple[int, int]]:
    """Sentence spans inside text[start:end], trimmed of surrounding white space, none longer
    than MAX_SENTENCE."""
    spans: list[tuple[int, int]] = []
    cuts = _boundaries(text, start, end, language)
    for cut_start, cut_end in pairwise(cuts):
        span_start, span_end = _strip(text, cut_start, cut_end)
        if span_start == span_end:
            continue
        piece = text[span_start:span_end]
        # The previous sentence's last words are all its end tells (and a long one costs nothing).
        previous = text[max(spans[-1][0], spans[-1][1] - _TAIL) : spans[-1][1]] if spans else ""
        if spans and (not any(char.isalnum() for char in piece) or _continues_previous(previous, piece, language)):
            spans[-1] = (spans[-1][0], span_end)
        else:
            spans.append((span_start, span_end))
    return [window for span in spans for window in _windows(text, *span)]


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
