"""Documents and sentences in a SQLite database file."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from ..ingest.document import Document, Sentence
from ..ingest.layout import Heading

_SCHEMA = """
CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, path TEXT NOT NULL, text TEXT NOT NULL,
                        source_sha256 TEXT NOT NULL, text_sha256 TEXT NOT NULL,
                        format TEXT NOT NULL, language TEXT,
                        headings TEXT NOT NULL, pages TEXT NOT NULL);  -- JSON: [[start, end, level]], [start]
CREATE TABLE sentences (row INTEGER PRIMARY KEY, document TEXT NOT NULL REFERENCES documents(id),
                        idx INTEGER NOT NULL, paragraph INTEGER NOT NULL,
                        start INTEGER NOT NULL, "end" INTEGER NOT NULL);
"""


def write_metadata(path: Path, documents: list[Document], sentences: list[Sentence]) -> None:
    """Write a new database at ``path`` (which must not exist)."""
    db = sqlite3.connect(path)
    try:
        db.executescript(_SCHEMA)
        db.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
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
                )
                for d in documents
            ],
        )
        db.executemany(
            "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?)",
            ((row, s.document, s.index, s.paragraph, s.start, s.end) for row, s in enumerate(sentences)),
        )
        db.commit()
    finally:
        db.close()


def load_metadata(path: Path) -> tuple[dict[str, Document], list[Sentence]]:
    """Documents by id and sentences in row order; ValueError naming what is wrong."""
    # Read-only and immutable: loading never writes beside the file (no journal, no lock).
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        documents = {
            row[0]: Document(
                *row[:8],
                headings=tuple(Heading(int(s), int(e), int(level)) for s, e, level in json.loads(row[8])),
                pages=tuple(int(start) for start in json.loads(row[9])),
            )
            for row in db.execute(
                "SELECT id, title, path, text, source_sha256, text_sha256, format, language, headings, pages"
                " FROM documents ORDER BY id"
            )
        }
        sentences = [
            Sentence(document=row[0], index=row[1], paragraph=row[2], start=row[3], end=row[4])
            for row in db.execute('SELECT document, idx, paragraph, start, "end" FROM sentences ORDER BY row')
        ]
    except (sqlite3.Error, ValueError, TypeError):  # JSON columns included
        raise ValueError("is not a readable metadata database") from None
    finally:
        db.close()
    for document in documents.values():
        if hashlib.sha256(document.text.encode("utf-8")).hexdigest() != document.text_sha256:
            raise ValueError(f"holds a text of {document.id} that does not match its sha256")
        size = len(document.text)
        if not all(0 <= h.start < h.end <= size for h in document.headings) or not all(
            0 <= start <= size for start in document.pages
        ):
            raise ValueError(f"holds a heading or page of {document.id} outside its text")
    for sentence in sentences:
        document = documents.get(sentence.document)
        if document is None or not 0 <= sentence.start < sentence.end <= len(document.text):
            raise ValueError("holds a sentence outside its document")
    return documents, sentences
