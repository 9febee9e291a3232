"""``RAG_VECTOR_STORE=faiss``: FAISS in process, exact (flat) or HNSW, a file in each generation's
folder, the live one named by the folder's ``CURRENT`` file. The only module that imports faiss
(lazily: ``rag --help`` needs none of it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .generations import read_current, write_current
from .vector_index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_FROM, HNSW_NEIGHBOURS, row_mask


class FaissStore:
    name = "faiss"
    file = "vectors.faiss"

    def create(self, generation: str, dimension: int, size: int, index_type: str) -> FaissIndex:
        return FaissIndex.create(dimension, size, index_type)

    def open(self, path: Path, description: dict) -> FaissIndex:
        return FaissIndex.load(path, description)

    def live(self, index_dir: Path) -> str | None:
        return read_current(index_dir)

    def switch(self, index_dir: Path, generation: str) -> None:
        write_current(index_dir, generation)

    def retire(self, keep: set[str]) -> None:
        """Nothing: the index is a file of the generation's folder."""


class FaissIndex:
    """A FAISS inner-product index over unit vectors; ``index`` is the FAISS object."""

    backend = FaissStore.name

    def __init__(self, index):
        self.index = index

    @classmethod
    def create(cls, dimension: int, size: int, index_type: str) -> FaissIndex:
        """Exact (``flat``) or HNSW; ``auto`` picks HNSW from HNSW_FROM vectors on."""
        import faiss

        if index_type == "auto":
            index_type = "hnsw" if size >= HNSW_FROM else "flat"
        if index_type == "flat":
            return cls(faiss.IndexFlatIP(dimension))
        if index_type != "hnsw":
            raise ValueError(f"unknown FAISS index type {index_type!r}")
        index = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return cls(index)

    @classmethod
    def load(cls, path: Path, description: dict) -> FaissIndex:
        import faiss

        try:  # memory-mapped: the vectors and graph stay in the page cache, not in the process's memory
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError:
            raise ValueError("is not a FAISS index") from None
        loaded = cls(index)
        if loaded.describe() != description:
            raise ValueError(f"disagrees with the manifest (it holds a {type(index).__name__})")
        return loaded

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        return self.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int, within: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if within is None:
            return self.index.search(queries, k)
        import faiss

        # Rows outside the bitmap are skipped, not scored: two searches that split the rows cost one.
        bitmap = row_mask(within, self.count())
        selector = faiss.IDSelectorBitmap(self.count(), faiss.swig_ptr(bitmap))
        if isinstance(self.index, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=self.index.hnsw.efSearch)
        else:
            params = faiss.SearchParameters(sel=selector)
        return self.index.search(queries, k, params=params)

    def count(self) -> int:
        return int(self.index.ntotal)

    def dimension(self) -> int:
        return int(self.index.d)

    def describe(self) -> dict:
        import faiss

        description = {
            "backend": self.backend,
            "type": type(self.index).__name__,
            "metric": "inner_product" if self.index.metric_type == faiss.METRIC_INNER_PRODUCT else "other",
            "normalized": True,
        }
        if isinstance(self.index, faiss.IndexHNSWFlat):
            # Level 0 holds 2 M links per vector, the levels above M.
            description.update(neighbours=int(self.index.hnsw.nb_neighbors(1)), ef_search=int(self.index.hnsw.efSearch))
        return description

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))
