"""Documents and sentences in a SQLite database, serialised to bytes and back."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import astuple

from ..ingest.document import Document, Sentence

_SCHEMA = """
CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, path TEXT NOT NULL, text TEXT NOT NULL,
                        source_sha256 TEXT NOT NULL, text_sha256 TEXT NOT NULL,
                        format TEXT NOT NULL, language TEXT);
CREATE TABLE sentences (row INTEGER PRIMARY KEY, document TEXT NOT NULL REFERENCES documents(id),
                        idx INTEGER NOT NULL, paragraph INTEGER NOT NULL,
                        start INTEGER NOT NULL, "end" INTEGER NOT NULL);
"""


def metadata_bytes(documents: list[Document], sentences: list[Sentence]) -> bytes:
    db = sqlite3.connect(":memory:")
    db.executescript(_SCHEMA)
    db.executemany(
        "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # Document's fields, in order
        [astuple(document) for document in documents],
    )
    db.executemany(
        "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?)",
        [(row, s.document, s.index, s.paragraph, s.start, s.end) for row, s in enumerate(sentences)],
    )
    db.commit()
    data = db.serialize()
    db.close()
    return data


def load_metadata(data: bytes) -> tuple[dict[str, Document], list[Sentence]]:
    """Documents by id and sentences in row order; ValueError naming what is wrong."""
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(data)
        documents = {
            row[0]: Document(*row)
            for row in db.execute(
                "SELECT id, title, path, text, source_sha256, text_sha256, format, language FROM documents ORDER BY id"
            )
        }
        sentences = [
            Sentence(document=row[0], index=row[1], paragraph=row[2], start=row[3], end=row[4])
            for row in db.execute('SELECT document, idx, paragraph, start, "end" FROM sentences ORDER BY row')
        ]
    except sqlite3.Error:
        raise ValueError("is not a readable metadata database") from None
    finally:
        db.close()
    for document in documents.values():
        if hashlib.sha256(document.text.encode("utf-8")).hexdigest() != document.text_sha256:
            raise ValueError(f"holds a text of {document.id} that does not match its sha256")
    for sentence in sentences:
        document = documents.get(sentence.document)
        if document is None or not 0 <= sentence.start < sentence.end <= len(document.text):
            raise ValueError("holds a sentence outside its document")
    return documents, sentences
