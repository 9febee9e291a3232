"""The vector store registry: ``RAG_VECTOR_STORE`` names the implementation."""

from __future__ import annotations

from collections.abc import Callable

from ..settings import Settings, choose
from .faiss_index import FaissStore
from .milvus_index import MilvusStore
from .vector_index import VectorStore

VECTOR_STORES: dict[str, Callable[[Settings], VectorStore]] = {
    "faiss": lambda settings: FaissStore(),
    "milvus": lambda settings: MilvusStore(
        settings.milvus_uri or str(settings.index_dir / "milvus.db"), settings.milvus_token, settings.milvus_collection
    ),
}


def vector_store(settings: Settings) -> VectorStore:
    return VECTOR_STORES[choose("RAG_VECTOR_STORE", settings.vector_store, VECTOR_STORES)](settings)
