"""The vector index registry: ``RAG_VECTOR_STORE`` names the implementation."""

from __future__ import annotations

import numpy as np

from ..settings import choose
from .faiss_index import FaissIndex
from .vector_index import VectorIndex

VECTOR_INDEXES: dict[str, type[VectorIndex]] = {"faiss": FaissIndex}


def vector_index_class(name: str) -> type[VectorIndex]:
    return VECTOR_INDEXES[choose("RAG_VECTOR_STORE", name, VECTOR_INDEXES)]


def new_vector_index(name: str, vectors: np.ndarray, index_type: str) -> VectorIndex:
    """A vector index of the ``RAG_VECTOR_STORE`` named, holding ``vectors`` (unit length, one per row)."""
    index = vector_index_class(name).create(vectors.shape[1], len(vectors), index_type)
    index.add(vectors)
    return index
