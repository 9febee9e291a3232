"""Writing and loading a whole index. Layout of the index folder::

    CURRENT                 name of the live generation (replaced atomically; with Milvus, an alias)
    gen-<number>-<time>/    one complete build, numbered in build order
        vectors.faiss       the vector index over the sentences' pooled vectors (FAISS), or
        vectors.milvus.json the Milvus collection that holds them (RAG_VECTOR_STORE=milvus)
        tokens.i8           each sentence's token vectors, for late-interaction scoring (int8, a scale each)
        token_spans.npy     where each sentence's token vectors are in tokens.i8 (first row, rows)
        token_checksums.npy the CRC-32 of each sentence's token vectors, checked as they are read
        background.npz      token vectors of the background sentences (abstention)
        metadata.sqlite3    documents (exact text, identity), sentences (offsets), the documents' words
        manifest.json       what was built, with how, and the checksum of each file
    .build.lock             held while a build runs, so builds never interleave
    .reserve                disk held back for a delete on a full disk (generations.RESERVE)
    uploads/                files added through POST /api/documents (rag/library.py)

A build streams the token vectors to disk as they come and keeps the pooled vectors in a file
until FAISS is filled from it. A server memory-maps the vector index and reads sentences,
documents and token vectors from disk when an answer needs them: its memory grows with the
number of documents (one listing entry each), not with their length. Loading checks each
file's size and sha256 against the manifest, reading in chunks, before handing it to the vector
index, SQLite or NumPy (never with pickle).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import IndexInvalidError, StorageError
from ..ingest.document import Document, Sentence
from .faiss_index import FaissStore
from .generations import live_generation, publish
from .manifest import FIX, MANIFEST, file_checksum, manifest_bytes, read_manifest
from .metadata import Catalog, Documents, Listed, Sentences, Vocabulary, write_metadata
from .pooled import PooledFile
from .tokens import TokenFile, TokenVectors, TokenWriter, row_bytes
from .vector_index import VectorIndex, VectorStore

TOKENS = "tokens.i8"
TOKEN_SPANS = "token_spans.npy"
TOKEN_CHECKSUMS = "token_checksums.npy"
BACKGROUND = "background.npz"
METADATA = "metadata.sqlite3"
POOLED = "pooled.f32"  # written while building, removed before the generation goes live
STORED_FILES = (TOKENS, TOKEN_SPANS, TOKEN_CHECKSUMS, BACKGROUND, METADATA)  # beside the vector store's file


def data_files(store: VectorStore) -> tuple[str, ...]:
    """The files of a generation checked against its manifest."""
    return (store.file, *STORED_FILES)


def files(store: VectorStore) -> tuple[str, ...]:
    """Every file of a generation."""
    return (*data_files(store), MANIFEST)


@dataclass(frozen=True)
class LoadedIndex:
    """Everything one index holds, verified. The vectors are memory-mapped and the documents,
    sentences and token vectors read from disk when asked for (``token_memory_bytes`` aside), so
    memory does not grow with the corpus."""

    manifest: dict
    catalog: Catalog
    sentences: Sequence[Sentence]  # row i of the vectors is sentences[i]; read from the catalog by row
    vectors: VectorIndex
    tokens: TokenFile  # text i is sentences[i]
    background: TokenVectors  # the background sentences the manifest names
    generation: str  # the folder it was loaded from, e.g. gen-000007-20261123T191508Z

    @cached_property
    def documents(self) -> Documents:
        return Documents(self.catalog)

    @cached_property
    def vocabulary(self) -> Vocabulary:
        """Every word of the documents without a digit, case-folded (to tell a name from chit-chat)."""
        return Vocabulary(self.catalog)

    @cached_property
    def listed(self) -> dict[str, Listed]:
        """The documents without their texts, by id (sorted)."""
        return {listed.id: listed for listed in self.catalog.listed()}

    def sentence_text(self, sentence: Sentence) -> str:
        return self.documents[sentence.document].text[sentence.start : sentence.end]

    def sentences_of(self, document: str) -> list[Sentence]:
        listed = self.listed.get(document)
        if listed is None:
            return []
        return list(self.catalog.sentences(listed.first_row, listed.first_row + listed.sentences))

    @cached_property
    def row_order(self) -> tuple[Listed, ...]:
        """The documents without their texts in the order of their rows; one without sentences last."""
        return tuple(sorted(self.listed.values(), key=lambda d: (d.sentences == 0, d.first_row, d.id)))

    @cached_property
    def _with_rows(self) -> tuple[tuple[Listed, ...], np.ndarray]:
        held = tuple(listed for listed in self.row_order if listed.sentences)
        return held, np.array([listed.first_row for listed in held], dtype=np.int64)

    @cached_property
    def _language_rows(self) -> dict[str | None, tuple[np.ndarray, np.ndarray]]:
        """For each document language, its documents' rows and all other rows: worked out once,
        not for every question."""
        held = self._with_rows[0]
        return {
            language: (
                _runs(listed for listed in held if listed.language == language),
                _runs(listed for listed in held if listed.language != language),
            )
            for language in {listed.language for listed in held}
        }

    def rows_by_language(self, language: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the documents in ``language`` and those of all others, as (start, end) ranges."""
        if language in self._language_rows:
            return self._language_rows[language]
        return _runs(()), self._all_rows  # no document in it: every row is another language's

    @cached_property
    def _all_rows(self) -> np.ndarray:
        return _runs(self._with_rows[0])

    def holders(self, rows: Sequence[int]) -> list[Listed]:
        """The document each row is a sentence of, found among the documents' first rows
        (nothing read from disk)."""
        held, first_rows = self._with_rows
        return [held[i] for i in np.searchsorted(first_rows, np.asarray(rows, dtype=np.int64), side="right") - 1]

    @property
    def in_row_order(self) -> list[Document]:
        """The documents with their texts, in the order of their rows (for a build)."""
        return [self.documents[listed.id] for listed in self.row_order]

    @cached_property
    def titles(self) -> tuple[str, ...]:
        return titles(self.listed.values())

    @cached_property
    def main_language(self) -> str | None:
        """The language most of the sentences are in (None when no document's is known)."""
        sentences: Counter[str] = Counter()
        for listed in self.listed.values():
            if listed.language:
                sentences[listed.language] += listed.sentences
        return max(sorted(sentences), key=sentences.__getitem__, default=None)


def _runs(documents: Iterable[Listed]) -> np.ndarray:
    """The rows of ``documents`` (in row order) as (start, end) ranges, adjacent ones merged."""
    merged: list[list[int]] = []
    for listed in documents:
        if merged and merged[-1][1] == listed.first_row:
            merged[-1][1] += listed.sentences
        else:
            merged.append([listed.first_row, listed.first_row + listed.sentences])
    return np.array(merged, dtype=np.int64).reshape(-1, 2)


def titles(documents: Iterable[Listed]) -> tuple[str, ...]:
    """The documents' titles (their ids when untitled), sorted, each once."""
    return tuple(sorted({document.title or document.id for document in documents}))


def write_index(
    index_dir: Path,
    documents: list[Document],
    sentences: list[Sentence],
    rows: Iterable[tuple[int, np.ndarray, np.ndarray]],
    background: TokenVectors,
    info: dict,
    store: VectorStore,
    index_type: str,
) -> Path:
    """Write a new generation and make it the live one. The caller holds ``build_lock``.

    ``rows`` gives each sentence's (row, pooled vector, token vectors) once, in any order; the
    token vectors go to disk as they come. ``info`` holds the model, segmentation and background
    recorded in the manifest."""
    model = info["model"]

    def write(folder: Path, generation: str) -> None:
        pooled = PooledFile(folder / POOLED, len(sentences), model["dimension"])
        with pooled, TokenWriter(folder / TOKENS, model["token_dimension"], len(sentences)) as tokens:
            for row, vector, token_vectors in rows:
                pooled.write(row, vector)
                tokens.write(row, token_vectors)
            np.save(folder / TOKEN_SPANS, tokens.spans, allow_pickle=False)
            np.save(folder / TOKEN_CHECKSUMS, tokens.checksums, allow_pickle=False)
            vectors = store.create(generation, model["dimension"], len(sentences), index_type)
            for chunk in pooled.chunks():
                vectors.add(chunk)
        (folder / POOLED).unlink()
        vectors.save(folder / store.file)
        described = vectors.describe()
        del vectors  # its memory is free again before the metadata is written
        (folder / BACKGROUND).write_bytes(background.to_bytes())
        write_metadata(folder / METADATA, documents, sentences)
        checksums = {name: file_checksum(folder / name) for name in data_files(store)}
        (folder / MANIFEST).write_bytes(manifest_bytes(documents, sentences, info, described, checksums))

    return publish(index_dir, store, write)


def bytes_needed(sentences: int, tokens: int, text_bytes: int, dimension: int, token_dimension: int) -> int:
    """About how much disk a generation of ``sentences`` sentences holding ``tokens`` token vectors
    and ``text_bytes`` of document text takes (a little more than it will: graph links included)."""
    # The pooled vector twice (the file it waits in, the index) with graph links, a span, a metadata row.
    per_sentence = 3 * dimension * 4 + 2 * 8 + 64
    return tokens * row_bytes(token_dimension) + sentences * per_sentence + 2 * text_bytes + 4_000_000


def check_room(index_dir: Path, needed: int) -> None:
    """Refuse, before anything is written, a generation the index folder's disk cannot hold."""
    index_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(index_dir).free
    if needed > free:
        raise StorageError(
            f"the new index needs about {_size(needed)} but the disk of the index folder has {_size(free)} "
            "free; free some space on it or set RAG_INDEX_DIR to a folder on a larger disk"
        )


def _size(count: int) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"


def _verified(generation: Path, name: str, manifest: dict) -> Path:
    """The file's path, once its size and sha256 match the manifest."""
    path = generation / name
    if name not in manifest["files"]:
        raise IndexInvalidError(f"{generation / MANIFEST} does not list {name}; {FIX}")
    try:
        found = file_checksum(path)
    except OSError:
        raise IndexInvalidError(f"{path} is missing or unreadable; {FIX}") from None
    if found != manifest["files"][name]:
        raise IndexInvalidError(f"{path} is damaged (checksum mismatch); {FIX}")
    return path


def _parse(generation: Path, name: str, parse):
    """``parse()``, with its ValueError turned into a one-line error naming the file and the fix."""
    try:
        return parse()
    except ValueError as exc:
        raise IndexInvalidError(f"{generation / name} {exc}; {FIX}") from None


def _array(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)  # read from the page cache, not held
    except (OSError, ValueError, EOFError):
        raise ValueError(f"is not a {what} file") from None


def load_index(index_dir: Path, token_memory_bytes: int = 0, store: VectorStore | None = None) -> LoadedIndex:
    """Load the live generation of ``store`` (FAISS when None), verifying every file; raise
    IndexInvalidError naming the fix. Token vectors that take at most ``token_memory_bytes`` as
    float32 are held in memory."""
    store = FaissStore() if store is None else store
    generation = live_generation(index_dir, store)
    manifest = read_manifest(generation, STORED_FILES)
    described = manifest["vector_index"]
    if described["backend"] != store.name:
        raise IndexInvalidError(
            f"the index was built for the {described['backend']} vector store, but RAG_VECTOR_STORE is "
            f"{store.name}; {FIX}"
        )
    paths = {name: _verified(generation, name, manifest) for name in data_files(store)}
    vectors = _parse(generation, store.file, lambda: store.open(paths[store.file], described))
    catalog = _parse(generation, METADATA, lambda: Catalog.open(paths[METADATA]))
    sentences = catalog.sentence_count()
    token_dimension = manifest["model"]["token_dimension"]
    spans = _parse(generation, TOKEN_SPANS, lambda: _array(paths[TOKEN_SPANS], "token span"))
    checksums = _parse(generation, TOKEN_CHECKSUMS, lambda: _array(paths[TOKEN_CHECKSUMS], "token checksum"))
    tokens = _parse(
        generation,
        TOKENS,
        lambda: TokenFile.open(paths[TOKENS], spans, checksums, sentences, token_dimension, token_memory_bytes),
    )
    background = _parse(
        generation,
        BACKGROUND,
        lambda: TokenVectors.from_bytes(
            paths[BACKGROUND].read_bytes(), manifest["background"]["sentences"], token_dimension
        ),
    )
    counts = manifest["counts"]
    if not (
        vectors.count() == sentences == counts["sentences"]
        and catalog.document_count() == counts["documents"]
        and vectors.dimension() == manifest["model"]["dimension"]
    ):
        raise IndexInvalidError(f"the files in {generation} disagree with its manifest; {FIX}")
    return LoadedIndex(
        manifest=manifest,
        catalog=catalog,
        sentences=Sentences(catalog),
        vectors=vectors,
        tokens=tokens,
        background=background,
        generation=generation.name,
    )
