"""Documents, sentences and the documents' words in a SQLite database file.

A server reads them from the file when an answer needs them (``Catalog``): memory holds neither
the texts nor a row per sentence, whatever the size of the corpus."""

from __future__ import annotations

import hashlib
import json
import operator
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import IndexDamagedError
from ..ingest.document import Document, Sentence
from ..ingest.layout import Heading
from ..ingest.words import iter_words, word_has_digit
from .manifest import FIX

_SCHEMA = """
CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, path TEXT NOT NULL, text TEXT NOT NULL,
                        source_sha256 TEXT NOT NULL, text_sha256 TEXT NOT NULL,
                        format TEXT NOT NULL, language TEXT,
                        headings TEXT NOT NULL, pages TEXT NOT NULL,  -- JSON: [[start, end, level]], [start]
                        characters INTEGER NOT NULL,  -- len(text): SQLite's length() stops at a NUL
                        first_row INTEGER NOT NULL, sentences INTEGER NOT NULL);  -- its rows, consecutive
CREATE TABLE sentences (row INTEGER PRIMARY KEY, document TEXT NOT NULL REFERENCES documents(id),
                        idx INTEGER NOT NULL, paragraph INTEGER NOT NULL,
                        start INTEGER NOT NULL, "end" INTEGER NOT NULL);
CREATE TABLE words (word TEXT PRIMARY KEY) WITHOUT ROWID;  -- the documents' words without a digit, case-folded
"""
_READ_DOCUMENT = (
    "SELECT id, title, path, text, source_sha256, text_sha256, format, language, headings, pages"
    " FROM documents WHERE id = ?"
)
_LIST_DOCUMENTS = (
    "SELECT id, title, path, source_sha256, text_sha256, format, language, first_row, sentences"
    " FROM documents ORDER BY id"
)
_READ_SENTENCE = 'SELECT document, idx, paragraph, start, "end" FROM sentences WHERE row = ?'
_READ_SENTENCES = 'SELECT document, idx, paragraph, start, "end" FROM sentences WHERE row >= ? AND row < ? ORDER BY row'
ROWS_AT_ONCE = 4096  # sentences read per query when all of them are walked
DOCUMENTS_KEPT = 8  # documents whose text a catalog keeps after reading it (an answer cites a few)


@dataclass(frozen=True)
class Listed:
    """A document as listed, without its text."""

    id: str
    title: str
    path: str
    source_sha256: str
    text_sha256: str
    format: str
    language: str | None
    first_row: int  # its sentences are rows first_row to first_row + sentences - 1
    sentences: int


def write_metadata(path: Path, documents: Iterable[Document], sentences: Sequence[Sentence]) -> None:
    """Write a new database at ``path`` (which must not exist). A document's sentences are
    consecutive in ``sentences``."""
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    for row, sentence in enumerate(sentences):
        first.setdefault(sentence.document, row)
        count[sentence.document] = count.get(sentence.document, 0) + 1
    db = sqlite3.connect(path)
    try:
        db.executescript(_SCHEMA)
        for d in documents:  # one at a time: a document's words are gathered alone
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    d.id,
                    d.title,
                    d.path,
                    d.text,
                    d.source_sha256,
                    d.text_sha256,
                    d.format,
                    d.language,
                    json.dumps([[h.start, h.end, h.level] for h in d.headings]),
                    json.dumps(list(d.pages)),
                    len(d.text),
                    first.get(d.id, len(sentences)),
                    count.get(d.id, 0),
                ),
            )
            vocabulary = {word for word in iter_words(d.text) if not word_has_digit(word)}
            db.executemany("INSERT OR IGNORE INTO words VALUES (?)", ((word,) for word in vocabulary))
        db.executemany(
            "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?)",
            ((row, s.document, s.index, s.paragraph, s.start, s.end) for row, s in enumerate(sentences)),
        )
        db.commit()
    finally:
        db.close()


class Catalog:
    """One database ``write_metadata`` wrote, read when asked. Safe to share between threads."""

    def __init__(self, path: Path):
        # Read-only and immutable: loading never writes beside the file (no journal, no lock).
        self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._path = path
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, Document] = OrderedDict()

    @classmethod
    def open(cls, path: Path) -> Catalog:
        """The catalog, once every row is consistent; ValueError naming what is wrong."""
        catalog = cls(path)
        try:
            catalog._check()
        except (sqlite3.Error, IndexDamagedError, json.JSONDecodeError, TypeError):
            catalog.close()
            raise ValueError("is not a readable metadata database") from None
        except ValueError:
            catalog.close()
            raise
        return catalog

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, *parameters) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, parameters).fetchall()
            except sqlite3.DatabaseError as exc:  # e.g. "database disk image is malformed"
                name = f"{self._path.parent.name}/{self._path.name}"
                raise IndexDamagedError(
                    f"the index in use is damaged: {name} cannot be read ({exc}); {FIX}", self._path.parent.name
                ) from None

    def _check(self) -> None:
        """Each text matches its sha256, and every heading, page and sentence lies within its
        document; read a document at a time."""
        self._query("SELECT word FROM words LIMIT 1")  # the table a server reads later exists
        for (document_id,) in self._query("SELECT id FROM documents"):
            document = self._read(document_id)
            if hashlib.sha256(document.text.encode("utf-8")).hexdigest() != document.text_sha256:
                raise ValueError(f"holds a text of {document.id} that does not match its sha256")
            size = len(document.text)
            if self._query("SELECT characters FROM documents WHERE id = ?", document_id)[0][0] != size:
                raise ValueError(f"holds a wrong length for {document.id}")
            if not all(0 <= h.start < h.end <= size for h in document.headings) or not all(
                0 <= start <= size for start in document.pages
            ):
                raise ValueError(f"holds a heading or page of {document.id} outside its text")
        ((count, low, high, outside),) = self._query(
            'SELECT count(*), min(row), max(row), sum(d.id IS NULL OR NOT (0 <= s.start AND s.start < s."end"'
            ' AND s."end" <= d.characters)) FROM sentences s LEFT JOIN documents d ON d.id = s.document'
        )
        if outside:
            raise ValueError("holds a sentence outside its document")
        if count and (low, high) != (0, count - 1):
            raise ValueError("holds sentence rows that are not numbered from 0")
        (misplaced,) = self._query(
            "SELECT count(*) FROM documents d LEFT JOIN (SELECT document, min(row) AS first, count(*) AS n"
            " FROM sentences GROUP BY document) s ON s.document = d.id"
            " WHERE coalesce(s.n, 0) != d.sentences OR (s.n AND (s.first != d.first_row"
            " OR s.first + s.n - 1 != (SELECT max(row) FROM sentences WHERE document = d.id)))"
        )[0]
        if misplaced:
            raise ValueError("holds a document whose sentences are not its consecutive rows")

    def _read(self, document_id: str) -> Document | None:
        found = self._query(_READ_DOCUMENT, document_id)
        if not found:
            return None
        row = found[0]
        return Document(
            *row[:8],
            headings=tuple(Heading(int(s), int(e), int(level)) for s, e, level in json.loads(row[8])),
            pages=tuple(int(start) for start in json.loads(row[9])),
        )

    def document(self, document_id: str) -> Document | None:
        """The document with its text; the last few read are kept."""
        with self._lock:
            kept = self._kept.get(document_id)
            if kept is not None:
                self._kept.move_to_end(document_id)
                return kept
        document = self._read(document_id)
        if document is not None:
            with self._lock:
                self._kept[document_id] = document
                while len(self._kept) > DOCUMENTS_KEPT:
                    self._kept.popitem(last=False)
        return document

    def listed(self) -> list[Listed]:
        """Every document without its text, by id."""
        return [Listed(*row) for row in self._query(_LIST_DOCUMENTS)]

    def has_document(self, document_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM documents WHERE id = ?", document_id))

    def document_count(self) -> int:
        return self._query("SELECT count(*) FROM documents")[0][0]

    def sentence_count(self) -> int:
        return self._query("SELECT count(*) FROM sentences")[0][0]

    def sentence(self, row: int) -> Sentence:
        found = self._query(_READ_SENTENCE, row)
        if not found:
            raise IndexError(f"no sentence at row {row}")
        return Sentence(*found[0])

    def sentences(self, first: int = 0, end: int | None = None) -> Iterator[Sentence]:
        """The sentences of rows ``first`` to ``end`` (the last when None), a chunk at a time."""
        end = self.sentence_count() if end is None else end
        for start in range(first, end, ROWS_AT_ONCE):
            stop = min(start + ROWS_AT_ONCE, end)
            yield from (Sentence(*row) for row in self._query(_READ_SENTENCES, start, stop))

    def has_word(self, word: str) -> bool:
        return bool(self._query("SELECT 1 FROM words WHERE word = ?", word))


class Documents(Mapping):
    """A catalog's documents by id, each read with its text when asked for."""

    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def __getitem__(self, document_id: str) -> Document:
        document = self._catalog.document(document_id) if isinstance(document_id, str) else None
        if document is None:
            raise KeyError(document_id)
        return document

    def __contains__(self, document_id: object) -> bool:
        return isinstance(document_id, str) and self._catalog.has_document(document_id)

    def __iter__(self) -> Iterator[str]:
        return iter([listed.id for listed in self._catalog.listed()])

    def __len__(self) -> int:
        return self._catalog.document_count()


class Sentences(Sequence):
    """A catalog's sentences in row order, each read when asked for."""

    def __init__(self, catalog: Catalog):
        self._catalog = catalog
        self._count = catalog.sentence_count()

    def __getitem__(self, row: int) -> Sentence:
        row = operator.index(row)  # a NumPy integer too (SQLite would bind it as bytes)
        if not -self._count <= row < self._count:
            raise IndexError(row)
        return self._catalog.sentence(row % self._count)

    def __iter__(self) -> Iterator[Sentence]:
        return self._catalog.sentences(0, self._count)

    def __len__(self) -> int:
        return self._count

    def __eq__(self, other: object) -> bool:  # as a list compares: element by element
        if not isinstance(other, Sequence) or len(self) != len(other):
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None


class Vocabulary:
    """Whether a word (case-folded) is one of the documents'."""

    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._catalog.has_word(word)
