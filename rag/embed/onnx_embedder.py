"""``RAG_BACKEND=onnx``, the default: the model exported once to ONNX with its matrix products
quantised to int8 (``onnx_export.py``), run by onnxruntime. No torch in the process: about 5 ms
per question instead of 20, and a few hundred MB less memory."""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .base import BatchedEmbedder, encode_outputs, shorten_questions
from .onnx_model import read_onnx_model
from .pieces import PieceTokenizer

# Rows x tokens x tokens per run of the model: 32 rows of up to 128 tokens, 8 of 256, 2 of 512.
# One run's attention scores (12 heads, float32) take at most 25 MB where 32 rows of 512 took
# 400. Texts of up to 128 tokens (most sentences) run 32 at a time as before: the int8 model
# scales its activations per run, so a text's vectors depend slightly on the texts it runs with,
# and 8 rows instead of 32 moved one dev answer (measured; docs/performance.md, "Memory").
ATTENTION_CELLS = 32 * 128 * 128


class OnnxEmbedder(BatchedEmbedder):
    """The exported model on onnxruntime: tokenizer, word-embedding lookup in a memory-mapped
    table, then the int8 encoder. ``threads`` is per call; calls may overlap."""

    backend = "onnx"

    def __init__(self, folder: Path, batch_size: int = 32, threads: int = 1, workers: int | None = None):
        import onnxruntime

        self.batch_size = batch_size
        # A build runs a batch per core, each on one thread: the same vectors, bit for bit, as
        # one batch at a time (a run's arithmetic does not depend on what else runs).
        self.workers = workers or len(os.sched_getaffinity(0))
        spec = read_onnx_model(folder)
        self.model_name = spec["source"]
        self.dimension = spec["hidden"]
        self.token_layers = spec["token_layers"]
        self.token_dimension = spec["hidden"] * len(self.token_layers)
        self.prompts = spec["prompts"]
        self.special_ids = spec["special_ids"]
        self._prompt_tokens = {prompt: spec["prompt_tokens"][prompt] for prompt in self.prompts.values()}
        if "pieces" in spec:
            self._tokenizer = PieceTokenizer(folder, max_tokens=spec["max_tokens"], **spec["pieces"])
        else:  # a model whose tokenizer.json pieces.py cannot reproduce
            self._tokenizer = JsonTokenizer(folder / "tokenizer.json", spec["max_tokens"])
        self._pad_id = spec["pad_id"]
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
        return self._tokenizer.encode_batch(texts)

    def _encode_batch(self, texts: list[str], prompt: str, query: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        rows = self._tokenizer.encode_batch(texts)
        ids = np.full((len(rows), max(map(len, rows))), self._pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, tokens in enumerate(rows):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        if query:
            ids, mask = shorten_questions(ids, mask, self._pad_id)
        # Attention takes memory in rows x tokens squared: long texts run a few rows at a time.
        step = max(1, ATTENTION_CELLS // ids.shape[1] ** 2)
        pooled, tokens = [], []
        for first in range(0, len(ids), step):
            part_ids, part_mask = ids[first : first + step], mask[first : first + step]
            words = np.ascontiguousarray(self._words[part_ids])
            # The rows read stay mapped in this process until dropped: questions in many scripts
            # would page in the whole 384 MB table (measured: +240 MiB over 400 such questions).
            # Dropping them costs nothing the page cache does not give back at once.
            self._words._mmap.madvise(mmap.MADV_DONTNEED)
            middle, last = self._session.run(None, {"inputs_embeds": words, "attention_mask": part_mask})
            keep = part_mask.astype(bool) & ~np.isin(part_ids, self.special_ids)
            part_pooled, part_tokens = encode_outputs(middle, last, part_mask, keep, self._prompt_tokens[prompt])
            pooled.append(part_pooled)
            tokens += part_tokens
        return np.concatenate(pooled), tokens


class JsonTokenizer:
    """A tokenizer.json read by ``tokenizers``: ids with the special tokens, truncated."""

    def __init__(self, path: Path, max_tokens: int):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.enable_truncation(max_tokens)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]
