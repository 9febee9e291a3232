"""A build and a loaded index hold no sentence's token vectors in memory: peak memory stays under a
bound whatever the number of token vectors, and a build the disk cannot hold is refused up front.

The large build runs in a child process (its peak memory is its own) with an embedder that gives
each sentence 256 token vectors of 768 dimensions: 1,500 sentences hold 1.1 GiB of them as float32,
which the build before streaming held about three times over (the list, the joined matrix, its
float16 copy and that copy's bytes). A loaded index holds neither its pooled vectors (the vector
index is memory-mapped) nor its sentences and texts (read from SQLite by row): a server on
40,000 sentences with 117 MiB of pooled vectors grows by a few MiB when it loads them (143 MiB
before). The real model's figures for 1, 5 and 20 MB of text are benchmarks/memory.py's
(docs/performance.md, "Memory")."""

import json
import os
import re
import subprocess
import sys

from .conftest import REPO, rag, snapshot

SENTENCES = 1500
TOKENS_PER_SENTENCE = 256
TOKEN_DIMENSION = 768
BOUND_MIB = 300  # Python, NumPy, FAISS and SQLite loaded (~130 MiB), batches, spans, pooled vectors (measured 172)

CHILD = f"""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, {str(REPO)!r})
from tests.conftest import FakeEmbedder
from rag.embed.base import Batch, Encoded
from rag.embed.factory import EMBEDDERS
from rag.engine import Engine
from rag.settings import Settings

class Wide(FakeEmbedder):
    token_dimension = {TOKEN_DIMENSION}

    def _encode(self, texts):  # one token vector per word
        vectors = self._vectors(texts)
        tokens = [np.repeat(self._vectors([text]), self.token_dimension // self.dimension, axis=1)
                  for text in texts]
        return Encoded(vectors, [t / np.linalg.norm(t, axis=1, keepdims=True) for t in tokens])

    def passage_batches(self, texts, progress=False):
        for start in range(0, len(texts), 32):
            rows = list(range(start, min(start + 32, len(texts))))
            vectors = self._vectors([texts[row] for row in rows])
            token = np.repeat(vectors, self.token_dimension // self.dimension, axis=1) / np.sqrt(48)
            yield Batch(rows, vectors, [np.repeat(token[j:j + 1], {TOKENS_PER_SENTENCE}, axis=0)
                                        for j in range(len(rows))])

    def token_ids(self, texts):
        return [[0] * {TOKENS_PER_SENTENCE} for _ in texts]

def peak_mib():  # this process's own peak (getrusage would count the parent it was forked from)
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM"))
    return int(line.split()[1]) // 1024

EMBEDDERS["fake"] = lambda settings: Wide()
settings = Settings.from_env()
report = Engine(settings).build_index([settings.seeds_dir])
built = peak_mib()
engine = Engine(settings)
answer = engine.answer("What does sentence number 700 say?")
assert not engine.index.tokens.held  # more than RAG_TOKEN_MEMORY_MB: read from disk
print(json.dumps({{"sentences": report.sentences, "build_mib": built, "peak_mib": peak_mib(),
                  "answered": bool(answer.citations),
                  "tokens_bytes": (report.location / "tokens.i8").stat().st_size}}))
"""


def fake_corpus_env(tmp_path, lines, **settings):
    """The environment of a child process that indexes ``lines`` (one .txt file, its seeds) with
    the fake embedder into tmp_path / "index"; ``settings``: more RAG_* variables."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "long.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        **os.environ,
        "RAG_BACKEND": "fake",
        "RAG_EMBEDDING_MODEL": "fake",
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "RAG_SEEDS_DIR": str(corpus),
        **settings,
    }


def test_a_build_and_an_answer_stay_under_the_bound_with_more_token_vectors_than_it(tmp_path):
    lines = [
        f"Sentence number {i} tells of the harbour, the bridge and the market of town {i % 97}."
        for i in range(SENTENCES)
    ]
    env = fake_corpus_env(tmp_path, lines)
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    found = json.loads(child.stdout)
    token_mib = SENTENCES * TOKENS_PER_SENTENCE * TOKEN_DIMENSION * 4 / 2**20
    assert found["sentences"] == SENTENCES and found["answered"]
    assert found["tokens_bytes"] == SENTENCES * TOKENS_PER_SENTENCE * (TOKEN_DIMENSION + 2), (
        "every token vector on disk"
    )
    assert token_mib > 3 * BOUND_MIB, "the corpus holds several times more token vectors than the bound"
    assert found["build_mib"] < BOUND_MIB, f"build peak {found['build_mib']} MiB, token vectors {token_mib:.0f} MiB"
    peak = found["peak_mib"]  # the build, then loading the index and answering from it
    assert peak < BOUND_MIB, f"peak {peak} MiB, token vectors {token_mib:.0f} MiB"


def test_a_build_the_disk_cannot_hold_is_refused_in_one_line_before_anything_is_written(
    index_dir, tmp_path, monkeypatch, capsys
):
    import shutil
    from collections import namedtuple

    from rag.store import index as store

    before = snapshot(index_dir)
    real = shutil.disk_usage(index_dir)
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(store.shutil, "disk_usage", lambda path: Usage(real.total, real.total - 150_000, 150_000))
    (tmp_path / "more.md").write_text("# More\n\nA new paragraph about the harbour.\n", encoding="utf-8")
    for argv in (["index", "-q"], ["add", str(tmp_path / "more.md")]):
        code, out, err = rag(capsys, *argv)
        assert code == 1 and out == ""
        assert err.count("\n") == 1 and "Traceback" not in err
        assert re.search(r"the new index needs about 4\.\d MB but .* has 0\.1 MB free", err), err
        assert "set RAG_INDEX_DIR to a folder on a larger disk" in err
    assert snapshot(index_dir) == before, "nothing written, the live index untouched"


def test_the_disk_estimate_covers_what_a_build_writes(index_dir, tmp_path):
    from rag.store import index as store

    loaded = store.load_index(index_dir)
    model = loaded.manifest["model"]
    written = sum(p.stat().st_size for p in (index_dir / loaded.generation).iterdir())
    estimate = store.bytes_needed(
        sentences=len(loaded.sentences),
        tokens=loaded.tokens.counts(list(range(len(loaded.sentences)))),
        text_bytes=sum(len(d.text.encode()) for d in loaded.documents.values()),
        dimension=model["dimension"],
        token_dimension=model["token_dimension"],
    )
    assert written <= estimate <= 2 * written + 4_000_000


POOLED_SENTENCES = 40_000
POOLED_DIMENSION = 768
SERVED = f"""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, {str(REPO)!r})
from tests.conftest import FakeEmbedder
from rag.embed.base import Batch, Encoded
from rag.embed.factory import EMBEDDERS
from rag.engine import Engine
from rag.settings import Settings

NARROW = FakeEmbedder()  # token vectors of 16 dimensions


class WidePooled(FakeEmbedder):  # pooled vectors of 768 dimensions, made fast
    dimension = {POOLED_DIMENSION}

    def _encode(self, texts):
        return Encoded(self._vectors(texts), [NARROW._vectors(text.split()) for text in texts])

    def passage_batches(self, texts, progress=False):
        for start in range(0, len(texts), 4096):
            rows = list(range(start, min(start + 4096, len(texts))))
            vectors = np.random.default_rng(start).standard_normal((len(rows), self.dimension)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            yield Batch(rows, vectors, [NARROW._vectors(texts[row].split()) for row in rows])


def anon_mib():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("RssAnon"))
    return int(line.split()[1]) / 1024

EMBEDDERS["fake"] = lambda settings: WidePooled()
settings = Settings.from_env()
engine = Engine(settings)
if sys.argv[1] == "build":
    engine.build_index([settings.seeds_dir])
else:
    from rag.ingest.language import probabilities
    probabilities("Warm up: the language model loads on first use.")
    before = anon_mib()
    index = engine.index
    answers = [engine.answer(f"What does sentence number {{n}} say about the harbour?") for n in (7, 39_000)]
    texts = [index.sentence_text(index.sentences[row]) for row in (0, len(index.sentences) - 1)]
    print(json.dumps({{"grew_mib": anon_mib() - before, "sentences": len(index.sentences), "texts": texts,
                      "answers": [a.answer for a in answers], "vocabulary": "harbour" in index.vocabulary}}))
"""


def test_a_loaded_index_holds_neither_its_pooled_vectors_nor_its_sentences_in_memory(tmp_path):
    lines = [f"Sentence number {i} tells of the harbour of town {i % 97}." for i in range(POOLED_SENTENCES)]
    # Held or not, token vectors are test_store's.
    env = fake_corpus_env(tmp_path, lines, RAG_INDEX_TYPE="flat", RAG_TOKEN_MEMORY_MB="0")
    for step in ("build", "serve"):  # the server in a process of its own: nothing left from the build
        child = subprocess.run(
            [sys.executable, "-c", SERVED, step], env=env, capture_output=True, text=True, timeout=300
        )
        assert child.returncode == 0, child.stderr[-3000:]
    found = json.loads(child.stdout)
    pooled_mib = POOLED_SENTENCES * POOLED_DIMENSION * 4 / 2**20
    assert found["sentences"] == POOLED_SENTENCES and found["texts"] == [lines[0], lines[-1]]
    assert all(found["answers"]) and found["vocabulary"]
    # Held in memory, the pooled vectors alone would add 117 MiB; memory-mapped they are page cache.
    assert found["grew_mib"] < pooled_mib / 3, f"loading and answering took {found['grew_mib']:.0f} MiB"
