"""The vector index registry: ``RAG_VECTOR_STORE`` names the implementation."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..settings import choose
from .faiss_index import FaissIndex
from .vector_index import VectorIndex

VECTOR_INDEXES: dict[str, type[VectorIndex]] = {"faiss": FaissIndex}


def vector_index_class(name: str) -> type[VectorIndex]:
    return VECTOR_INDEXES[choose("RAG_VECTOR_STORE", name, VECTOR_INDEXES)]


def new_vector_index(
    name: str, chunks: Iterable[np.ndarray], size: int, dimension: int, index_type: str
) -> VectorIndex:
    """A vector index of the ``RAG_VECTOR_STORE`` named, holding the ``size`` unit vectors that
    ``chunks`` give a few rows at a time, in row order."""
    index = vector_index_class(name).create(dimension, size, index_type)
    for chunk in chunks:
        index.add(chunk)
    return index
