"""`rag index` end to end: the real command, the real model, the real index on disk.
(What the command prints and refuses is tested in process, on the fake embedder, in test_cli.py.)"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rag.engine import Engine
from rag.errors import IndexInvalidError
from rag.settings import Settings
from rag.store.index import load_index

from .conftest import REPO, SEEDS, model_cache_dir


def run_rag(*args, index_dir, cwd=None, timeout=600, **settings):
    env = {
        **os.environ,
        "RAG_INDEX_DIR": str(index_dir),
        "RAG_SEEDS_DIR": str(SEEDS),
        "RAG_CACHE_DIR": str(model_cache_dir()),
        "HF_HUB_OFFLINE": "1",
        **settings,
    }
    return subprocess.run(
        [sys.executable, "-m", "rag", *args], cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def fake_index(tmp_path, fake_embedder):
    settings = Settings(embedding_model="fake", index_dir=tmp_path / "index", seeds_dir=SEEDS)
    Engine(settings, embedder=fake_embedder).build_index()
    return settings.index_dir


@pytest.mark.model
def test_rag_index_builds_the_article_and_prints_its_summary(tmp_path):
    index_dir = tmp_path / "index"
    result = run_rag("index", index_dir=index_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = re.fullmatch(
        r"Indexed 1 document, 26 sentences with intfloat/multilingual-e5-small in (\d+\.\d) s into (.+)\n",
        result.stdout,
    )
    assert summary, result.stdout
    assert "100%" in result.stderr, "a progress bar is shown while embedding"
    contents = load_index(index_dir)
    assert contents.manifest["model"]["name"] == "intfloat/multilingual-e5-small"
    assert contents.manifest["model"]["prompts"] == {"query": "query: ", "document": "passage: "}
    assert contents.vectors.count() == 26 and contents.vectors.dimension() == 384
    for sentence in contents.sentences:
        text = contents.sentence_text(sentence)
        assert text == contents.documents[sentence.document].text[sentence.start : sentence.end] and text.strip()


@pytest.mark.model
def test_two_builds_of_the_same_seeds_are_identical(tmp_path, embedder):
    def build(name):
        settings = Settings(index_dir=tmp_path / name, seeds_dir=SEEDS, cache_dir=model_cache_dir())
        Engine(settings, embedder=embedder).build_index()
        return load_index(settings.index_dir)

    first, second = build("a"), build("b")
    assert first.sentences == second.sentences
    assert first.documents == second.documents
    n = first.vectors.count()
    assert np.array_equal(first.vectors.index.reconstruct_n(0, n), second.vectors.index.reconstruct_n(0, n))
    assert first.manifest["files"] == second.manifest["files"], "the same bytes on disk"


@pytest.mark.model
def test_index_vectors_find_the_sentence_a_question_asks_about(tmp_path, embedder):
    settings = Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS, cache_dir=model_cache_dir())
    engine = Engine(settings, embedder=embedder)
    engine.build_index()
    contents = engine.load_index()
    _, rows = contents.vectors.search(embedder.encode_queries(["Qui a rencontré Vladimir Poutine ?"]).vectors, 1)
    assert "a rencontré hier le président russe" in contents.sentence_text(contents.sentences[rows[0][0]])


def test_an_index_built_with_another_model_is_refused(fake_index):
    engine = Engine(Settings(index_dir=fake_index, seeds_dir=SEEDS))
    with pytest.raises(IndexInvalidError, match=r"built with fake.*rag index"):
        engine.load_index()


def test_an_index_built_with_another_backend_is_refused(fake_index):
    engine = Engine(Settings(embedding_model="fake", index_dir=fake_index, seeds_dir=SEEDS, backend="onnx"))
    with pytest.raises(IndexInvalidError, match=r"built with the fake backend.*onnx \(RAG_BACKEND\).*rag index"):
        engine.load_index()


def test_an_index_for_another_vector_store_is_refused(fake_index, fake_embedder, monkeypatch):
    from rag.store.factory import VECTOR_STORES
    from rag.store.faiss_index import FaissStore

    class Elsewhere(FaissStore):  # keeps its generations the FAISS way, built for another store
        name = "elsewhere"

    monkeypatch.setitem(VECTOR_STORES, "elsewhere", lambda settings: Elsewhere())
    settings = Settings(embedding_model="fake", index_dir=fake_index, seeds_dir=SEEDS, vector_store="elsewhere")
    with pytest.raises(IndexInvalidError, match=r"built for the faiss vector store, but RAG_VECTOR_STORE is elsewhere"):
        Engine(settings, embedder=fake_embedder).load_index()
