"""The vector index seam: nearest pooled vectors by inner product. A ``VectorStore`` (the engine
behind ``RAG_VECTOR_STORE``, listed in ``factory.VECTOR_STORES``) makes and opens the
``VectorIndex`` of each generation and keeps the pointer to the live generation."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

# Exact search reads every vector (about 5 ms per question at 100,000 sentences, 1 thread); a
# graph (HNSW) answers faster but can miss a small document unlike the rest: in
# benchmarks/scale.py's 96,543 sentences it found 0.815 of the 64 candidates exact search finds,
# and the bundled article's first citations fell from 14 right of 18 to 3. So exact search up
# to a million sentences (about 50 ms); RAG_INDEX_TYPE=hnsw asks for the graph at any size.
HNSW_FROM = 1_000_000
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
# Recall of the 64 candidates retrieval asks for, against exact search, for the 85 questions of
# eval/ on 3,000 sentences of benchmarks/scale.py's corpus: 0.967 at 128, 0.995 at 256.
HNSW_EF_SEARCH = 256


def row_mask(within: np.ndarray, count: int) -> np.ndarray:
    """The rows of the ranges ``within`` as a bitmap of ``count`` bits, bit i of byte i // 8 for row i."""
    mask = np.zeros(count, dtype=bool)
    for start, end in within:
        mask[start:end] = True
    return np.packbits(mask, bitorder="little")


class VectorIndex(Protocol):
    def add(self, vectors: np.ndarray) -> None:
        """Append rows, numbered on from those already added."""
        ...

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows``, so that a new generation can reuse them unembedded."""
        ...

    def search(self, queries: np.ndarray, k: int, within: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers of the ``k`` best rows for each query, best first (-1: none);
        only among the rows of ``within`` if given: (start, end) ranges, sorted, not overlapping."""
        ...

    def count(self) -> int: ...

    def dimension(self) -> int: ...

    def describe(self) -> dict:
        """What the manifest records: at least ``backend`` and ``type``."""
        ...

    def save(self, path: Path) -> None:
        """Make the index durable and write to ``path`` what ``VectorStore.open`` needs."""
        ...


class VectorStore(Protocol):
    name: str  # the RAG_VECTOR_STORE name, recorded in the manifest as the index's backend
    file: str  # the name of the file ``VectorIndex.save`` writes in the generation's folder

    def create(self, generation: str, dimension: int, size: int, index_type: str) -> VectorIndex:
        """An empty index of generation ``generation`` for about ``size`` unit vectors;
        ``index_type`` is RAG_INDEX_TYPE."""
        ...

    def open(self, path: Path, description: dict) -> VectorIndex:
        """The index ``save`` wrote to ``path``, checked against the ``describe`` recorded with it;
        ValueError if it is not that index."""
        ...

    def live(self, index_dir: Path) -> str | None:
        """The name of the live generation (None when there is none yet); IndexInvalidError if
        the pointer is damaged."""
        ...

    def switch(self, index_dir: Path, generation: str) -> None:
        """Make ``generation`` the live one, atomically: readers see the old or the new."""
        ...

    def retire(self, keep: set[str]) -> None:
        """Free what the store holds for generations other than ``keep`` (their folders go anyway)."""
        ...
