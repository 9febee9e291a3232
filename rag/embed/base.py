"""The embedder seam: what every embedder gives, and the batching they share.

One forward pass gives two views of a text: the pooled sentence vector (what the vector index
holds) and one vector per token (what late-interaction scoring compares, see
``retrieve/late_interaction.py``). Implementations: ``onnx_embedder.OnnxEmbedder`` (the default)
and ``torch_embedder.TorchEmbedder``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Token vectors join a middle layer (three quarters deep) and the last one: the middle layers
# of multilingual encoders align words across languages better, the last one carries meaning.
MIDDLE_LAYER_DEPTH = 0.75


@dataclass(frozen=True)
class Encoded:
    """Texts as vectors. ``vectors[i]`` is text i pooled, unit length; ``tokens[i]`` holds one
    unit-length row per token of text i, with the prompt and special tokens left out."""

    vectors: np.ndarray
    tokens: list[np.ndarray]


@dataclass(frozen=True)
class Batch:
    """Some of the texts given, as vectors: ``vectors[j]`` and ``tokens[j]`` are those of text ``rows[j]``."""

    rows: list[int]
    vectors: np.ndarray
    tokens: list[np.ndarray]


class Embedder(Protocol):
    backend: str  # the RAG_BACKEND name; an index is read only with the backend that built it
    dimension: int  # of the pooled vectors
    token_dimension: int  # of the token vectors
    token_layers: Sequence[int]  # the layers the token vectors join
    prompts: dict[str, str]  # "query" and "document" prompts prepended to texts ("" when none)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> Encoded: ...

    def passage_batches(self, texts: Sequence[str], progress: bool = False) -> Iterator[Batch]:
        """The passages encoded a batch at a time, in any order: what a build streams to disk."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> Encoded: ...

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids the model reads for each text (prompts not added), truncated as in encoding."""
        ...


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


QUESTION_TOKENS = 128  # a question is read up to here (about 90 English words); a passage to the model's limit


def shorten_questions(ids: np.ndarray, mask: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (padded on the right) cut to QUESTION_TOKENS, each row keeping
    its first tokens and its closing one. Questions come from anyone: this bounds what one costs
    in time and memory (1,000 random CJK characters: 512 tokens and 140 ms; 128 and 25 ms)."""
    if ids.shape[1] <= QUESTION_TOKENS:
        return ids, mask
    short_ids = np.full((len(ids), QUESTION_TOKENS), pad_id, dtype=ids.dtype)
    short_mask = np.zeros((len(ids), QUESTION_TOKENS), dtype=mask.dtype)
    for row, (row_ids, row_mask) in enumerate(zip(ids, mask, strict=True)):
        real = row_ids[row_mask.astype(bool)]
        if len(real) > QUESTION_TOKENS:
            real = np.concatenate([real[: QUESTION_TOKENS - 1], real[-1:]])
        short_ids[row, : len(real)] = real
        short_mask[row, : len(real)] = 1
    return short_ids, short_mask


class BatchedEmbedder:
    """What the model embedders share: batching, progress, and the two public encoders; a
    subclass runs one batch."""

    batch_size: int
    workers: int = 1  # batches encoded at once, each on a thread of its own
    prompts: dict[str, str]
    dimension: int
    token_dimension: int

    def _encode_batch(self, texts: list[str], prompt: str, query: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        """``query``: the texts are questions (which a subclass may read shorter than passages)."""
        raise NotImplementedError

    def _batches(self, texts: Sequence[str], prompt: str, progress: bool, query: bool) -> Iterator[Batch]:
        """The texts encoded a batch at a time, ``workers`` batches at once, yielded in order;
        at most ``workers`` + 1 batches are held."""
        from tqdm.auto import tqdm

        # Batches of similar length waste little on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(texts), self.batch_size)

        def encode(start: int) -> Batch:
            rows = order[start : start + self.batch_size]
            pooled, tokens = self._encode_batch([prompt + texts[i] for i in rows], prompt, query)
            return Batch(rows, pooled, tokens)

        if self.workers == 1 or len(starts) <= 1:  # a question: no thread to start
            yield from map(encode, tqdm(starts, desc="Embedding", unit="batch", disable=not progress))
            return
        bar = tqdm(total=len(starts), desc="Embedding", unit="batch", disable=not progress)
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embed")
        try:
            with bar:
                pending: deque[Future[Batch]] = deque()
                for start in starts:
                    pending.append(pool.submit(encode, start))
                    if len(pending) > self.workers:
                        yield pending.popleft().result()
                        bar.update()
                while pending:
                    yield pending.popleft().result()
                    bar.update()
        except BaseException:
            # Stopped (Ctrl-C, a failed batch, a reader gone): batches still queued are dropped and
            # the ones running are not waited for, so that Ctrl-C is answered at once.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()

    def _encode(self, texts: Sequence[str], prompt: str, progress: bool, query: bool) -> Encoded:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.token_dimension), dtype=np.float32)] * len(texts)
        for batch in self._batches(texts, prompt, progress, query):
            vectors[batch.rows] = batch.vectors
            for row, row_tokens in zip(batch.rows, batch.tokens, strict=True):
                tokens[row] = row_tokens
        return Encoded(vectors=vectors, tokens=tokens)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> Encoded:
        return self._encode(texts, self.prompts["document"], progress, query=False)

    def passage_batches(self, texts: Sequence[str], progress: bool = False) -> Iterator[Batch]:
        return self._batches(texts, self.prompts["document"], progress, query=False)

    def encode_queries(self, texts: Sequence[str]) -> Encoded:
        return self._encode(texts, self.prompts["query"], progress=False, query=True)
