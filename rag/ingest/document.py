"""What ingestion produces: documents (stored text and where it came from) and their sentences."""

from __future__ import annotations

from dataclasses import dataclass

from .layout import Heading


@dataclass(frozen=True)
class Document:
    """One document as stored. Every offset refers to ``text``, which may differ from the source
    file's bytes (text extracted from a format); ``source_sha256`` identifies the file,
    ``text_sha256`` the stored text."""

    id: str
    title: str
    path: str
    text: str
    source_sha256: str
    text_sha256: str
    format: str  # the loader that read it: "text", "markdown", ...
    language: str | None = None  # ISO 639 code, detected (ingest/language.py) or given; None when not sure
    headings: tuple[Heading, ...] = ()  # section titles, in order; not sentences
    pages: tuple[int, ...] = ()  # where each page starts (PDF)


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
