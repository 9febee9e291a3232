"""Writing and loading a whole index. Layout of the index folder::

    CURRENT                 name of the live generation (replaced atomically)
    gen-<number>-<time>/    one complete build, numbered in build order
        vectors.faiss       the vector index (FAISS) over the sentences' pooled vectors
        tokens.npz          each sentence's token vectors, for late-interaction scoring
        background.npz      token vectors of the background sentences (abstention)
        metadata.sqlite3    documents (exact text, identity) and sentences (offsets)
        manifest.json       what was built, with how, and the checksum of each file
    .build.lock             held while a build runs, so builds never interleave

Loading reads each file once, checks its size and sha256 against the manifest and only then
hands the bytes to the vector index, SQLite or NumPy (never with pickle).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..errors import IndexInvalidError, RagError
from ..ingest.document import Document, Sentence
from ..ingest.words import word_has_digit, words
from .factory import vector_index_class
from .generations import live_generation, publish
from .manifest import FIX, MANIFEST, manifest_bytes, read_manifest
from .metadata import load_metadata, metadata_bytes
from .tokens import TokenVectors
from .vector_index import VectorIndex

VECTORS = "vectors.faiss"
TOKENS = "tokens.npz"
BACKGROUND = "background.npz"
METADATA = "metadata.sqlite3"
DATA_FILES = (VECTORS, TOKENS, BACKGROUND, METADATA)  # each checked against the manifest
FILES = (*DATA_FILES, MANIFEST)  # every file of a generation


@dataclass(frozen=True)
class LoadedIndex:
    """Everything one index holds, loaded and verified."""

    manifest: dict
    documents: dict[str, Document]
    sentences: list[Sentence]  # row i of the vectors is sentences[i]
    vectors: VectorIndex
    tokens: TokenVectors  # text i is sentences[i]
    background: TokenVectors  # the background sentences the manifest names
    generation: str  # the folder it was loaded from, e.g. gen-000007-20261123T191508Z

    def sentence_text(self, sentence: Sentence) -> str:
        return self.documents[sentence.document].text[sentence.start : sentence.end]

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        """Every word of the documents without a digit, case-folded (to tell a name from chit-chat)."""
        return frozenset(
            word for document in self.documents.values() for word in words(document.text) if not word_has_digit(word)
        )

    @cached_property
    def sentence_counts(self) -> dict[str, int]:
        """Each document's number of sentences, in the order its rows start (index order)."""
        counts: dict[str, int] = {}
        for sentence in self.sentences:
            counts[sentence.document] = counts.get(sentence.document, 0) + 1
        return counts

    @cached_property
    def _row_spans(self) -> dict[str, tuple[int, int]]:
        """Each document's rows: its sentences are consecutive."""
        spans, start = {}, 0
        for document, count in self.sentence_counts.items():
            spans[document] = (start, start + count)
            start += count
        return spans

    def sentences_of(self, document: str) -> list[Sentence]:
        start, end = self._row_spans.get(document, (0, 0))
        return self.sentences[start:end]

    @cached_property
    def in_row_order(self) -> tuple[Document, ...]:
        """The documents in the order of their rows; one without sentences last."""
        counts = self.sentence_counts
        return tuple([self.documents[i] for i in counts] + [d for d in self.documents.values() if d.id not in counts])

    @cached_property
    def titles(self) -> tuple[str, ...]:
        """The documents' titles (their ids when untitled), sorted, each once."""
        return tuple(sorted({document.title or document.id for document in self.documents.values()}))


def write_index(
    index_dir: Path,
    documents: list[Document],
    sentences: list[Sentence],
    vectors: VectorIndex,
    tokens: TokenVectors,
    background: TokenVectors,
    info: dict,
) -> Path:
    """Write a new generation and make it the live one. The caller holds ``build_lock``.

    ``vectors`` holds one pooled vector per sentence; ``info`` the model, segmentation and
    background recorded in the manifest."""
    if not vectors.count() == len(tokens) == len(sentences):
        raise ValueError("one vector and one set of token vectors per sentence are required")
    files = {
        VECTORS: vectors.save(),
        TOKENS: tokens.to_bytes(),
        BACKGROUND: background.to_bytes(),
        METADATA: metadata_bytes(documents, sentences),
    }
    files[MANIFEST] = manifest_bytes(documents, sentences, info, vectors.describe(), files)
    return publish(index_dir, files)


def _read_verified(generation: Path, name: str, manifest: dict) -> bytes:
    """The file's bytes, once their size and sha256 match the manifest."""
    expected = manifest["files"][name]
    try:
        data = (generation / name).read_bytes()
    except OSError:
        raise IndexInvalidError(f"{generation / name} is missing or unreadable; {FIX}") from None
    if len(data) != expected["bytes"] or hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise IndexInvalidError(f"{generation / name} is damaged (checksum mismatch); {FIX}")
    return data


def _parse(generation: Path, name: str, parse):
    """``parse()``, with its ValueError turned into a one-line error naming the file and the fix."""
    try:
        return parse()
    except ValueError as exc:
        raise IndexInvalidError(f"{generation / name} {exc}; {FIX}") from None


def load_index(index_dir: Path) -> LoadedIndex:
    """Load the live generation, verifying every file; raise IndexInvalidError naming the fix."""
    generation = live_generation(index_dir)
    manifest = read_manifest(generation, DATA_FILES)
    data = {name: _read_verified(generation, name, manifest) for name in DATA_FILES}
    described = manifest["vector_index"]
    index_class = _parse(generation, MANIFEST, lambda: _known_backend(described["backend"]))
    vectors = _parse(generation, VECTORS, lambda: index_class.load(data[VECTORS], described))
    documents, sentences = _parse(generation, METADATA, lambda: load_metadata(data[METADATA]))
    token_dimension = manifest["model"]["token_dimension"]
    tokens = _parse(generation, TOKENS, lambda: TokenVectors.from_bytes(data[TOKENS], len(sentences), token_dimension))
    background = _parse(
        generation,
        BACKGROUND,
        lambda: TokenVectors.from_bytes(data[BACKGROUND], manifest["background"]["sentences"], token_dimension),
    )
    counts = manifest["counts"]
    if not (
        vectors.count() == len(sentences) == counts["sentences"]
        and len(documents) == counts["documents"]
        and vectors.dimension() == manifest["model"]["dimension"]
    ):
        raise IndexInvalidError(f"the files in {generation} disagree with its manifest; {FIX}")
    return LoadedIndex(
        manifest=manifest,
        documents=documents,
        sentences=sentences,
        vectors=vectors,
        tokens=tokens,
        background=background,
        generation=generation.name,
    )


def _known_backend(name: str) -> type[VectorIndex]:
    try:
        return vector_index_class(name)
    except RagError:
        raise ValueError(f"names a vector store this rag does not have ({name!r})") from None
