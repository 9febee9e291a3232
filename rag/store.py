"""The index on disk: FAISS vectors, SQLite metadata and a manifest, written atomically.

Layout of the index folder::

    CURRENT                 name of the live generation (replaced atomically)
    gen-<number>-<time>/    one complete build, numbered in build order
        vectors.faiss       FAISS inner-product index over L2-normalised vectors
        tokens.npz          each sentence's token vectors, for late-interaction scoring
        background.npz      token vectors of the background sentences (abstention)
        metadata.sqlite3    documents (exact text, sha256) and sentences (offsets)
        manifest.json       what was built, with how, and the checksum of each file
    .build.lock             held while a build runs, so builds never interleave

A build writes a hidden temporary folder, fsyncs it, renames it to a generation and
only then swaps ``CURRENT``; readers see the old index or the new one, never a mix.
Loading reads each file once, checks its size and sha256 against the manifest and
only then hands the bytes to FAISS, SQLite or NumPy (never with pickle). The only module
that imports faiss.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import sqlite3
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .documents import Document, Sentence
from .errors import IndexInvalidError, IndexMissingError, RagError

FORMAT = "rag-index"
FORMAT_VERSION = 2  # 2: token vectors and background added
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
TOKENS = "tokens.npz"
BACKGROUND = "background.npz"
METADATA = "metadata.sqlite3"
_LOCK = ".build.lock"
_TMP_PREFIX = ".tmp-"
_GEN_PREFIX = "gen-"
KEEP_GENERATIONS = 2  # the live one and the one before, for readers still on it
FIX = "run `rag index` to rebuild it"
INDEX_TYPES = ("auto", "flat", "hnsw")
# Exact search reads every vector; past this many sentences a graph (HNSW) answers faster at
# a small loss of recall (benchmarks/performance.py measures both on 100,000 sentences).
HNSW_FROM = 50_000
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # at least the 64 candidates retrieval asks for


@dataclass(frozen=True)
class TokenVectors:
    """The token vectors of many texts in one matrix: rows ``offsets[i]:offsets[i + 1]`` belong to text i."""

    offsets: np.ndarray  # int64, one more than there are texts
    vectors: np.ndarray  # float32, one unit-length row per token

    @classmethod
    def join(cls, per_text: list[np.ndarray], dimension: int) -> TokenVectors:
        offsets = np.zeros(len(per_text) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(rows) for rows in per_text])
        vectors = np.concatenate(per_text) if per_text else np.zeros((0, dimension))
        return cls(offsets=offsets, vectors=np.ascontiguousarray(vectors, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, text: int) -> np.ndarray:
        return self.vectors[self.offsets[text] : self.offsets[text + 1]]


@dataclass(frozen=True)
class IndexContents:
    """Everything one index holds, loaded and verified."""

    manifest: dict
    documents: dict[str, Document]
    sentences: list[Sentence]  # row i of the vectors is sentences[i]
    vectors: object  # faiss.Index
    tokens: TokenVectors  # text i is sentences[i]
    background: TokenVectors  # the background sentences the manifest names
    generation: str  # the folder it was loaded from, e.g. gen-000007-20261123T191508Z

    def sentence_text(self, sentence: Sentence) -> str:
        return self.documents[sentence.document].text[sentence.start : sentence.end]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / _LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RagError(f"another `rag index` is already building {index_dir}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _metadata_bytes(documents: list[Document], sentences: list[Sentence]) -> bytes:
    db = sqlite3.connect(":memory:")
    db.executescript(
        """
        CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, path TEXT NOT NULL,
                                sha256 TEXT NOT NULL, text TEXT NOT NULL);
        CREATE TABLE sentences (row INTEGER PRIMARY KEY, document TEXT NOT NULL REFERENCES documents(id),
                                idx INTEGER NOT NULL, paragraph INTEGER NOT NULL,
                                start INTEGER NOT NULL, "end" INTEGER NOT NULL);
        """
    )
    db.executemany(
        "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
        [(d.id, d.title, d.path, d.sha256, d.text) for d in documents],
    )
    db.executemany(
        "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?)",
        [(row, s.document, s.index, s.paragraph, s.start, s.end) for row, s in enumerate(sentences)],
    )
    db.commit()
    data = db.serialize()
    db.close()
    return data


def _tokens_bytes(tokens: TokenVectors) -> bytes:
    """float16 halves the size; late-interaction scores move by less than 1e-3."""
    buffer = io.BytesIO()
    np.savez(buffer, offsets=tokens.offsets, vectors=tokens.vectors.astype(np.float16))
    return buffer.getvalue()


def _load_tokens(data: bytes, where: Path, texts: int, dimension: int) -> TokenVectors:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if sorted(archive.files) != ["offsets", "vectors"]:
                raise ValueError
            offsets, vectors = archive["offsets"], archive["vectors"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        raise IndexInvalidError(f"{where} is not a token vector file; {FIX}") from None
    if not (
        offsets.dtype == np.int64
        and vectors.dtype == np.float16
        and offsets.shape == (texts + 1,)
        and vectors.ndim == 2
        and vectors.shape[1] == dimension
        and offsets[0] == 0
        and offsets[-1] == vectors.shape[0]
        and bool(np.all(np.diff(offsets) >= 0))
    ):
        raise IndexInvalidError(f"{where} disagrees with the manifest; {FIX}")
    return TokenVectors(offsets=offsets, vectors=vectors.astype(np.float32))


def _next_number(index_dir: Path) -> int:
    """Generations are numbered in build order, so sorting their names sorts them by age."""
    numbers = [int(p.name.split("-")[1]) for p in index_dir.glob(_GEN_PREFIX + "*") if p.name.split("-")[1].isdigit()]
    return max(numbers, default=0) + 1


def _remove_leftovers(index_dir: Path) -> None:
    """Temporary folders and files of killed builds (only a build holding the lock may call this)."""
    for leftover in index_dir.glob(_TMP_PREFIX + "*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _remove_old_generations(index_dir: Path, live: str) -> None:
    generations = sorted(p for p in index_dir.glob(_GEN_PREFIX + "*") if p.is_dir())
    keep = {live} | {p.name for p in generations[-KEEP_GENERATIONS:]}
    for old in generations:
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


def vector_index(vectors: np.ndarray, index_type: str = "auto") -> tuple[object, dict]:
    """A FAISS inner-product index holding ``vectors`` (unit length), and its description for
    the manifest: exact (flat) or HNSW; "auto" picks HNSW from HNSW_FROM vectors on."""
    import faiss

    if index_type not in INDEX_TYPES:
        raise RagError(f"the index type must be one of {', '.join(INDEX_TYPES)}, not {index_type!r}")
    if index_type == "auto":
        index_type = "hnsw" if len(vectors) >= HNSW_FROM else "flat"
    dimension = vectors.shape[1]
    description = {"metric": "inner_product", "normalized": True}
    if index_type == "flat":
        index = faiss.IndexFlatIP(dimension)
        description["type"] = "IndexFlatIP"
    else:
        index = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        description.update(type="IndexHNSWFlat", neighbours=HNSW_NEIGHBOURS, ef_search=HNSW_EF_SEARCH)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index, description


def write_index(
    index_dir: Path,
    documents: list[Document],
    sentences: list[Sentence],
    vectors: np.ndarray,
    tokens: TokenVectors,
    background: TokenVectors,
    info: dict,
    index_type: str = "auto",
) -> Path:
    """Write a new generation and make it the live one. The caller holds ``build_lock``.

    ``info`` holds the model, segmentation and background recorded in the manifest;
    ``index_type`` is one of INDEX_TYPES (see ``vector_index``)."""
    import faiss

    if not vectors.shape[0] == len(tokens) == len(sentences):
        raise ValueError("one vector and one set of token vectors per sentence are required")
    index, description = vector_index(vectors, index_type)
    per_document = Counter(s.document for s in sentences)  # one pass, not one per document
    files = {
        VECTORS: faiss.serialize_index(index).tobytes(),
        TOKENS: _tokens_bytes(tokens),
        BACKGROUND: _tokens_bytes(background),
        METADATA: _metadata_bytes(documents, sentences),
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **info,
        "faiss": description,
        "counts": {"documents": len(documents), "sentences": len(sentences)},
        "documents": [
            {
                "id": d.id,
                "path": d.path,
                "sha256": d.sha256,
                "characters": len(d.text),
                "sentences": per_document[d.id],
            }
            for d in documents
        ],
        "files": {name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in files.items()},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    _remove_leftovers(index_dir)  # a killed build may have left the very name we are about to use
    name = f"{_GEN_PREFIX}{_next_number(index_dir):06d}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    tmp = index_dir / f"{_TMP_PREFIX}{name}"
    tmp.mkdir(parents=True)
    for file_name, data in files.items():
        _write_file(tmp / file_name, data)
    _fsync_dir(tmp)
    os.rename(tmp, index_dir / name)
    pointer = index_dir / f"{_TMP_PREFIX}{CURRENT}"
    _write_file(pointer, (name + "\n").encode("ascii"))
    os.replace(pointer, index_dir / CURRENT)
    _fsync_dir(index_dir)
    _remove_old_generations(index_dir, live=name)
    return index_dir / name


def live_generation(index_dir: Path) -> Path:
    pointer = index_dir / CURRENT
    try:
        name = pointer.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise IndexMissingError(f"there is no index in {index_dir}; run `rag index` to build it") from None
    except (OSError, UnicodeDecodeError):
        raise IndexInvalidError(f"{pointer} is damaged; {FIX}") from None
    if not name.startswith(_GEN_PREFIX) or "/" in name or not (index_dir / name).is_dir():
        raise IndexInvalidError(f"{pointer} names no build of the index; {FIX}")
    return index_dir / name


def _read_manifest(generation: Path) -> dict:
    try:
        manifest = json.loads((generation / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise IndexInvalidError(f"{generation / MANIFEST} is missing; {FIX}") from None
    except (OSError, ValueError):
        raise IndexInvalidError(f"{generation / MANIFEST} is damaged; {FIX}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexInvalidError(f"{generation / MANIFEST} is not a rag index manifest; {FIX}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexInvalidError(
            f"the index in {generation} has format version {manifest.get('format_version')!r}, "
            f"this rag reads version {FORMAT_VERSION}; {FIX}"
        )
    try:
        for name in (VECTORS, TOKENS, BACKGROUND, METADATA):
            entry = manifest["files"][name]
            if not (isinstance(entry["sha256"], str) and isinstance(entry["bytes"], int)):
                raise TypeError
        int(manifest["counts"]["sentences"]), int(manifest["counts"]["documents"])
        str(manifest["model"]["name"]), int(manifest["model"]["dimension"])
        int(manifest["model"]["token_dimension"]), int(manifest["background"]["sentences"])
        str(manifest["background"]["sha256"]), str(manifest["faiss"]["type"])
    except (KeyError, TypeError, ValueError):
        raise IndexInvalidError(f"{generation / MANIFEST} lacks required fields; {FIX}") from None
    return manifest


def _read_verified(generation: Path, name: str, manifest: dict) -> bytes:
    """The file's bytes, once their size and sha256 match the manifest."""
    expected = manifest["files"][name]
    try:
        data = (generation / name).read_bytes()
    except OSError:
        raise IndexInvalidError(f"{generation / name} is missing or unreadable; {FIX}") from None
    if len(data) != expected["bytes"] or _sha256(data) != expected["sha256"]:
        raise IndexInvalidError(f"{generation / name} is damaged (checksum mismatch); {FIX}")
    return data


def _load_metadata(data: bytes, where: Path) -> tuple[dict[str, Document], list[Sentence]]:
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(data)
        documents = {
            row[0]: Document(id=row[0], title=row[1], path=row[2], sha256=row[3], text=row[4])
            for row in db.execute("SELECT id, title, path, sha256, text FROM documents ORDER BY id")
        }
        sentences = [
            Sentence(document=row[0], index=row[1], paragraph=row[2], start=row[3], end=row[4])
            for row in db.execute('SELECT document, idx, paragraph, start, "end" FROM sentences ORDER BY row')
        ]
    except sqlite3.Error:
        raise IndexInvalidError(f"{where} is not a readable metadata database; {FIX}") from None
    finally:
        db.close()
    for document in documents.values():
        if _sha256(document.text.encode("utf-8")) != document.sha256:
            raise IndexInvalidError(f"the text of {document.id} in {where} does not match its sha256; {FIX}")
    for sentence in sentences:
        document = documents.get(sentence.document)
        if document is None or not 0 <= sentence.start < sentence.end <= len(document.text):
            raise IndexInvalidError(f"{where} holds a sentence outside its document; {FIX}")
    return documents, sentences


def load_index(index_dir: Path) -> IndexContents:
    """Load the live generation, verifying every file; raise IndexInvalidError naming the fix."""
    import faiss

    generation = live_generation(index_dir)
    manifest = _read_manifest(generation)
    vector_bytes = _read_verified(generation, VECTORS, manifest)
    metadata_bytes = _read_verified(generation, METADATA, manifest)
    try:
        vectors = faiss.deserialize_index(np.frombuffer(vector_bytes, dtype=np.uint8))
    except RuntimeError:
        raise IndexInvalidError(f"{generation / VECTORS} is not a FAISS index; {FIX}") from None
    documents, sentences = _load_metadata(metadata_bytes, generation / METADATA)
    token_dimension = manifest["model"]["token_dimension"]
    tokens = _load_tokens(
        _read_verified(generation, TOKENS, manifest), generation / TOKENS, len(sentences), token_dimension
    )
    background = _load_tokens(
        _read_verified(generation, BACKGROUND, manifest),
        generation / BACKGROUND,
        manifest["background"]["sentences"],
        token_dimension,
    )
    counts = manifest["counts"]
    if not (
        type(vectors).__name__ == manifest["faiss"]["type"]
        and vectors.metric_type == faiss.METRIC_INNER_PRODUCT
        and vectors.ntotal == len(sentences) == counts["sentences"]
        and len(documents) == counts["documents"]
        and vectors.d == manifest["model"]["dimension"]
    ):
        raise IndexInvalidError(f"the files in {generation} disagree with its manifest; {FIX}")
    return IndexContents(
        manifest=manifest,
        documents=documents,
        sentences=sentences,
        vectors=vectors,
        tokens=tokens,
        background=background,
        generation=generation.name,
    )
