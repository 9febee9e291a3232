"""The embedder registry: ``RAG_BACKEND`` names the implementation."""

from __future__ import annotations

from collections.abc import Callable

from ..settings import Settings, choose
from .base import Embedder


def _onnx(settings: Settings) -> Embedder:
    from .onnx_embedder import OnnxEmbedder
    from .onnx_export import ensure_onnx_model

    return OnnxEmbedder(ensure_onnx_model(settings.embedding_model, settings.cache_dir), settings.batch_size)


def _torch(settings: Settings) -> Embedder:
    from .torch_embedder import TorchEmbedder

    return TorchEmbedder(settings.embedding_model, settings.cache_dir, settings.batch_size)


EMBEDDERS: dict[str, Callable[[Settings], Embedder]] = {"onnx": _onnx, "torch": _torch}


def check_backend(settings: Settings) -> None:
    choose("RAG_BACKEND", settings.backend, EMBEDDERS)


def create_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for; the ONNX one is exported on first use."""
    check_backend(settings)
    return EMBEDDERS[settings.backend](settings)
