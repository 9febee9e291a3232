"""Loading documents and splitting them into sentences with exact character offsets.

A document's text is kept exactly as decoded from its file; every offset refers to
that string, so ``text[start:end]`` is the sentence, always.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

from .errors import InputError

DOCUMENT_SUFFIXES = (".txt", ".md")
SEGMENTER = "pysbd-fr-0.3.4+merge-v1"  # recorded in the manifest; bump when the rules change

# A paragraph ends at a line break: news articles put one paragraph per line; blank ones are skipped.
_PARAGRAPH_BREAK = re.compile(r"\n")
# Abbreviations after which pysbd still splits in French text ("p. 12", "janv. 2024").
_ABBREVIATIONS = frozenset(
    "p pp cf art env éd vol chap fig no n° mme mlle mm dr pr me st ste "
    "janv févr fév avr juil sept oct nov déc h min av apr j.-c".split()
)
_LAST_WORD = re.compile(r"([\w°.-]+)\.\s*$")


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    path: str
    text: str
    sha256: str


@dataclass(frozen=True)
class Sentence:
    document: str
    index: int  # position of the sentence in its document, from 0
    paragraph: int  # position of its paragraph in the document, from 0
    start: int
    end: int


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def discover(paths: Iterable[Path]) -> list[Path]:
    """The document files named by ``paths`` (files, or folders searched recursively), sorted."""
    found: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
        elif path.suffix.lower() in DOCUMENT_SUFFIXES:
            found.add(path)
        else:
            raise InputError(f"{path} is not a .txt or .md file")
    if not found:
        names = ", ".join(str(p) for p in paths)
        raise InputError(f"no .txt or .md documents found in {names}")
    return sorted(found)


def read_document(path: Path) -> Document:
    """Read one document; the text is the file's bytes decoded as UTF-8, nothing stripped."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded)") from exc
    if not text.strip():
        raise InputError(f"{path} is empty")
    title = next(line for line in text.splitlines() if line.strip()).strip().lstrip("#").strip()
    return Document(
        id=path.stem,
        title=title[:120],
        path=str(path),
        text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def load_documents(paths: Iterable[Path]) -> tuple[list[Document], list[Skipped]]:
    """Read every document under ``paths``. Unreadable ones are skipped and reported;
    if none can be read, the first reason is raised."""
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for path in discover(list(paths)):
        try:
            document = read_document(path)
        except InputError as exc:
            skipped.append(Skipped(str(path), str(exc)))
            continue
        if document.id in seen:
            raise InputError(f"two documents share the id {document.id!r}: {seen[document.id]} and {path}")
        seen[document.id] = str(path)
        documents.append(document)
    if not documents:
        raise InputError(skipped[0].reason if len(skipped) == 1 else f"no readable document: {skipped[0].reason}")
    return documents, skipped


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="fr", clean=False)


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph with visible text."""
    spans = []
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _continues_previous(previous: str, following: str) -> bool:
    """Whether pysbd split where a sentence does not end: after a known abbreviation,
    or before a word in lower case."""
    first = following.lstrip()[:1]
    if first.islower():
        return True
    match = _LAST_WORD.search(previous)
    return bool(match) and match.group(1).lower() in _ABBREVIATIONS


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _boundaries(text: str, start: int, end: int) -> list[int]:
    """Where pysbd ends sentences inside text[start:end], as offsets into ``text``.

    pysbd's pieces are only a guide: it may drop or rewrite characters ("a.!!" comes
    back as "a."), so each piece is located in the original text and only its end is
    kept. Spans are then cut from the original text, which nothing can lose."""
    cuts = [start]
    for piece in _segmenter().segment(text[start:end]):
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


def _split_paragraph(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans inside text[start:end], trimmed of surrounding white space."""
    spans: list[tuple[int, int]] = []
    cuts = _boundaries(text, start, end)
    for cut_start, cut_end in pairwise(cuts):
        span_start, span_end = _strip(text, cut_start, cut_end)
        if span_start == span_end:
            continue
        piece = text[span_start:span_end]
        if spans and (
            not any(char.isalnum() for char in piece) or _continues_previous(text[spans[-1][0] : spans[-1][1]], piece)
        ):
            spans[-1] = (spans[-1][0], span_end)
        else:
            spans.append((span_start, span_end))
    return spans


def split_sentences(document: Document) -> list[Sentence]:
    sentences: list[Sentence] = []
    for paragraph, (p_start, p_end) in enumerate(_paragraphs(document.text)):
        for start, end in _split_paragraph(document.text, p_start, p_end):
            sentences.append(Sentence(document.id, len(sentences), paragraph, start, end))
    return sentences
