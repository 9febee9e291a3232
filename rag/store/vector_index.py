"""The vector index seam: nearest pooled vectors by inner product. Implementations are listed in
``factory.VECTOR_INDEXES`` under their ``RAG_VECTOR_STORE`` name."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Self

import numpy as np


class VectorIndex(Protocol):
    backend: str  # the RAG_VECTOR_STORE name, recorded in the manifest

    @classmethod
    def create(cls, dimension: int, size: int, index_type: str) -> Self:
        """An empty index for about ``size`` unit vectors; ``index_type`` is RAG_INDEX_TYPE."""
        ...

    @classmethod
    def load(cls, path: Path, description: dict) -> Self:
        """The index ``save`` wrote to ``path``, checked against the ``describe`` recorded with it;
        ValueError if it is not that index."""
        ...

    def add(self, vectors: np.ndarray) -> None: ...

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows``, so that a new generation can reuse them unembedded."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers of the ``k`` best rows for each query, best first (-1: none)."""
        ...

    def count(self) -> int: ...

    def dimension(self) -> int: ...

    def describe(self) -> dict:
        """What the manifest records: at least ``backend`` and ``type``."""
        ...

    def save(self, path: Path) -> None: ...
