"""Which sentences of a new generation need embedding: a document whose stored text and sentences
are those of a document of the previous generation (embedded with the same model) keeps that
document's vectors, so adding or removing one document embeds only what is new. The token vectors
are copied as stored (written again, a decoded int8 row gives the same bytes), so reuse changes
no score."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from ..ingest.document import Document, Sentence
from ..ingest.segment import SEGMENTER, split_sentences
from .index import LoadedIndex


@dataclass(frozen=True)
class Plan:
    sentences: list[Sentence]  # of the new generation, in row order
    texts: list[str]  # their text
    previous_rows: list[int | None]  # each sentence's row in the previous generation, None: to embed

    @property
    def to_embed(self) -> list[str]:
        return [text for text, row in zip(self.texts, self.previous_rows, strict=True) if row is None]


def _same_segmentation(document: Document, old: Document, previous: LoadedIndex) -> bool:
    """Whether ``document`` would be split as ``old`` was: same text, language, headings, rules."""
    return previous.manifest["segmentation"]["segmenter"] == SEGMENTER and (
        document.text_sha256,
        document.language,
        document.headings,
    ) == (old.text_sha256, old.language, old.headings)


def plan(documents: list[Document], previous: LoadedIndex | None) -> Plan:
    """Segment ``documents``; a document reuses the rows of a previous one with the same text
    (by sha256) and the same sentences (taken as they are when the segmentation cannot differ)."""
    by_text = {} if previous is None else {d.text_sha256: d for d in previous.listed.values()}
    sentences: list[Sentence] = []
    texts: list[str] = []
    previous_rows: list[int | None] = []
    for document in documents:
        old = by_text.get(document.text_sha256)
        old_rows = range(0) if old is None else range(old.first_row, old.first_row + old.sentences)
        old_sentences = [] if old is None else list(previous.catalog.sentences(old_rows.start, old_rows.stop))
        if old is not None and _same_segmentation(document, previous.documents[old.id], previous):
            found = [replace(sentence, document=document.id) for sentence in old_sentences]
        else:
            found = split_sentences(document)
        same = [(s.start, s.end) for s in old_sentences] == [(s.start, s.end) for s in found]
        previous_rows += list(old_rows) if old is not None and same else [None] * len(found)
        sentences += found
        texts += [document.text[s.start : s.end] for s in found]
    return Plan(sentences, texts, previous_rows)


REUSE_CHUNK = 4096  # previous vectors read per call: bounded memory, few calls


def reused_rows(plan: Plan, previous: LoadedIndex | None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(row, pooled vector, token vectors as stored) of each sentence of ``plan`` that keeps the
    previous generation's, read a chunk at a time."""
    pairs = [(row, old) for row, old in enumerate(plan.previous_rows) if old is not None]
    for start in range(0, len(pairs), REUSE_CHUNK):
        chunk = pairs[start : start + REUSE_CHUNK]
        pooled = previous.vectors.reconstruct(np.array([old for _, old in chunk], dtype=np.int64))
        for (row, old), vector in zip(chunk, pooled, strict=True):
            yield row, vector, previous.tokens.stored(old)


def reused_token_count(plan: Plan, previous: LoadedIndex | None) -> int:
    """How many token vectors the reused sentences hold."""
    reused = [old for old in plan.previous_rows if old is not None]
    return previous.tokens.counts(reused) if reused else 0
