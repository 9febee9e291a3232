"""Shared fixtures. The real default model is loaded once per test session."""

import os

# Set before anything imports huggingface_hub: no test may reach for a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path

import numpy as np
import pytest

from rag.config import DEFAULT_MODEL, Settings
from rag.embedding import Encoded

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
ARTICLE = SEEDS / "000_8cb13a5d0c7818f1.txt"


def model_cache_dir() -> Path:
    """Where tests keep the built default model: the user's cache, as the product does,
    unless RAG_CACHE_DIR says otherwise. Built once, reused by later sessions."""
    return Settings.from_env().cache_dir


@pytest.fixture(scope="session")
def embedder():
    from rag.embedding import Embedder

    return Embedder(DEFAULT_MODEL, model_cache_dir())


class FakeEmbedder:
    """Deterministic bag-of-characters vectors, one token per word: fast, no model, for unit
    tests only."""

    dimension = 16
    token_dimension = 16
    token_layers = (1,)

    def __init__(self):
        self.prompts = {"query": "", "document": ""}

    def _vectors(self, texts):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for char in text:
                out[row, ord(char) % self.dimension] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _encode(self, texts):
        return Encoded(vectors=self._vectors(texts), tokens=[self._vectors(text.split()) for text in texts])

    def encode_passages(self, texts, progress=False):
        return self._encode(texts)

    def encode_queries(self, texts):
        return self._encode(texts)


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def settings(tmp_path):
    return Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS, cache_dir=model_cache_dir())
