"""Batches encoded on several threads at once: the same vectors, in the same order, with a
bounded number of batches in memory."""

import threading
import time

import numpy as np
import pytest

from rag.embed.base import BatchedEmbedder
from rag.ingest.discover import read_document
from rag.ingest.segment import split_sentences

from .conftest import ARTICLE


class Counting(BatchedEmbedder):
    """Each text becomes its length; records how many batches run at once and were made."""

    dimension = 1
    token_dimension = 1

    def __init__(self, workers: int, batch_size: int = 2):
        self.workers = workers
        self.batch_size = batch_size
        self.prompts = {"query": "", "document": ""}
        self.running = self.most_running = self.made = 0
        self._lock = threading.Lock()

    def _encode_batch(self, texts, prompt, query):
        with self._lock:
            self.running += 1
            self.made += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(0.01)  # long enough for the other workers to start theirs
        with self._lock:
            self.running -= 1
        lengths = np.array([[len(text)] for text in texts], dtype=np.float32)
        return lengths, [row[None] for row in lengths]


TEXTS = [f"text {'x' * (i * 7 % 23)}" for i in range(40)]


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_batches_come_in_order_with_the_same_vectors_whatever_the_workers(workers):
    one = Counting(workers=1).encode_passages(TEXTS)
    embedder = Counting(workers=workers)
    many = embedder.encode_passages(TEXTS)
    assert np.array_equal(one.vectors, many.vectors) and many.vectors[:, 0].tolist() == [len(t) for t in TEXTS]
    assert embedder.most_running == workers, "the workers really run at once"


def test_a_slow_reader_holds_at_most_workers_plus_one_batches():
    embedder = Counting(workers=2)
    batches = embedder.passage_batches(TEXTS)
    next(batches)
    time.sleep(0.2)  # the workers would run ahead here if nothing held them
    assert embedder.made <= 2 + 2, f"{embedder.made} batches made while one was read"
    assert sum(len(batch.rows) for batch in batches) == len(TEXTS) - 2


def test_a_question_starts_no_thread():
    before = threading.active_count()
    embedder = Counting(workers=4)
    embedder.encode_queries(["one question"])
    assert embedder.most_running == 1 and threading.active_count() == before


@pytest.mark.model
def test_the_model_gives_the_same_vectors_bit_for_bit_on_two_threads(embedder, monkeypatch):
    document = read_document(ARTICLE)
    texts = [document.text[s.start : s.end] for s in split_sentences(document)]
    texts.append(" ".join(texts))  # one text over 128 tokens, which runs a row at a time
    monkeypatch.setattr(embedder, "workers", 1)
    alone = embedder.encode_passages(texts)
    monkeypatch.setattr(embedder, "workers", 2)
    together = embedder.encode_passages(texts)
    assert np.array_equal(alone.vectors, together.vectors)
    assert all(np.array_equal(a, b) for a, b in zip(alone.tokens, together.tokens, strict=True))
