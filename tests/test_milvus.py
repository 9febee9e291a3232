"""RAG_VECTOR_STORE=milvus: generations as collections behind an alias, real embedded Milvus
(milvus-lite). Fake vectors here; the same answers as FAISS with the real model in
test_milvus_answers.py."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from rag.engine import Engine
from rag.errors import IndexInvalidError, IndexMissingError, RagError
from rag.settings import Settings
from rag.store import index as store
from rag.store import milvus_index
from rag.store.factory import vector_store
from rag.store.faiss_index import FaissStore
from rag.store.milvus_index import MilvusStore

from .conftest import SEEDS
from .test_store import build, unit_rows

FAISS = FaissStore()


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """One embedded Milvus for the module (milvus-lite runs in this process)."""
    return str(tmp_path_factory.mktemp("milvus") / "milvus.db")


@pytest.fixture
def milvus(database, request):
    """A store of its own in the shared database: its alias is named after the test."""
    return MilvusStore(database, "", re.sub(r"\W", "_", request.node.name)[:60])


def collections(milvus):
    return sorted(name for name in milvus.client.list_collections() if name.startswith(milvus.prefix + "_gen_"))


def test_a_milvus_index_finds_what_faiss_finds_and_keeps_the_vectors_exactly(tmp_path, milvus):
    build(tmp_path / "faiss", seed=5, index_type="flat")
    generation, *_, vectors, _ = build(tmp_path / "milvus", seed=5, index_type="flat", vector_store=milvus)
    exact = store.load_index(tmp_path / "faiss")
    loaded = store.load_index(tmp_path / "milvus", store=milvus)
    assert sorted(p.name for p in generation.iterdir()) == sorted(store.files(milvus))
    assert loaded.manifest["vector_index"] == {
        "backend": "milvus",
        "type": "FLAT",
        "metric": "inner_product",
        "normalized": True,
    }
    queries = unit_rows(np.random.default_rng(9), 12, 8)
    faiss_scores, faiss_rows = exact.vectors.search(queries, 10)
    milvus_scores, milvus_rows = loaded.vectors.search(queries, 10)
    assert np.array_equal(faiss_rows, milvus_rows)
    assert np.allclose(faiss_scores, milvus_scores, atol=1e-6)
    rows = np.array([7, 0, 3, len(vectors) - 1])
    assert np.array_equal(loaded.vectors.reconstruct(rows), vectors[rows]), "bit for bit, in the order asked"
    _, beyond = loaded.vectors.search(queries[:1], len(vectors) + 5)
    assert sorted(beyond[0][: len(vectors)]) == list(range(len(vectors))) and set(beyond[0][len(vectors) :]) == {-1}
    within = np.array([[1, 4], [6, len(vectors) - 2]])
    faiss_scores, faiss_rows = exact.vectors.search(queries, 5, within)
    milvus_scores, milvus_rows = loaded.vectors.search(queries, 5, within)
    assert np.array_equal(faiss_rows, milvus_rows), "the same rows within the same ranges"
    assert np.allclose(faiss_scores, milvus_scores, atol=1e-6)
    assert all(1 <= row < 4 or 6 <= row < len(vectors) - 2 for row in milvus_rows.ravel())


def test_each_build_is_a_collection_and_the_alias_moves_to_the_newest(tmp_path, milvus):
    built = [build(tmp_path, seed=seed, vector_store=milvus)[0] for seed in (1, 2, 3)]
    assert milvus.client.describe_alias(milvus.prefix)["collection_name"] == milvus.collection(built[-1].name)
    assert store.load_index(tmp_path, store=milvus).generation == built[-1].name
    assert collections(milvus) == [milvus.collection(g.name) for g in built[-2:]], "the live one and the one before"
    assert sorted(p.name for p in tmp_path.glob("gen-*")) == [g.name for g in built[-2:]]
    assert not (tmp_path / "CURRENT").exists(), "the alias is the pointer"


def test_a_collection_left_by_a_killed_build_goes_with_the_next_build(tmp_path, milvus):
    live, *_ = build(tmp_path, seed=1, vector_store=milvus)
    orphan = milvus.create("gen-000009-20261124T000000Z", 8, 10, "flat")  # created, never saved nor live
    orphan.add(unit_rows(np.random.default_rng(0), 10, 8))
    newest, *_ = build(tmp_path, seed=2, vector_store=milvus)
    assert collections(milvus) == [milvus.collection(live.name), milvus.collection(newest.name)]


def test_an_hnsw_collection_is_built_and_checked_on_load(tmp_path, milvus, monkeypatch):
    monkeypatch.setattr(milvus_index, "HNSW_FROM", 10)
    _, _, _, vectors, _ = build(tmp_path, seed=4, vector_store=milvus)
    loaded = store.load_index(tmp_path, store=milvus)
    assert loaded.manifest["vector_index"]["type"] == "HNSW" and loaded.manifest["vector_index"]["neighbours"] == 32
    _, rows = loaded.vectors.search(vectors[:3], 1)
    assert rows[:, 0].tolist() == [0, 1, 2], "each vector finds itself"


def test_an_alias_naming_a_build_this_folder_lacks_is_refused_in_one_line(tmp_path, milvus):
    """Servers sharing a Milvus need the index folder too (the sentences and token vectors)."""
    generation, *_ = build(tmp_path / "elsewhere", seed=1, vector_store=milvus)
    with pytest.raises(
        IndexInvalidError, match=rf"\({generation.name!r}\) names no build of the index; run `rag index`"
    ):
        store.load_index(tmp_path / "here", store=milvus)


def test_a_description_naming_a_collection_milvus_lacks_is_refused(tmp_path, milvus):
    generation, *_ = build(tmp_path, seed=1, vector_store=milvus)
    saved = json.loads((generation / milvus.file).read_text())
    (tmp_path / "other.json").write_text(json.dumps({**saved, "collection": "nowhere"}))
    description = store.load_index(tmp_path, store=milvus).manifest["vector_index"]
    with pytest.raises(ValueError, match=r"^names the Milvus collection nowhere, which .*milvus\.db does not hold$"):
        milvus.open(tmp_path / "other.json", description)


def test_no_alias_is_no_index(tmp_path, milvus):
    with pytest.raises(IndexMissingError, match="run `rag index`"):
        store.load_index(tmp_path, store=milvus)


def test_faiss_and_milvus_builds_in_one_folder_keep_each_others_live_index(tmp_path, milvus):
    faiss_live, *_ = build(tmp_path, seed=1)
    for seed in (2, 3, 4):
        build(tmp_path, seed=seed, vector_store=milvus)
    assert store.load_index(tmp_path).generation == faiss_live.name
    milvus_live = store.load_index(tmp_path, store=milvus).generation
    for seed in (5, 6, 7):
        build(tmp_path, seed=seed)
    assert store.load_index(tmp_path, store=milvus).generation == milvus_live
    with pytest.raises(IndexInvalidError, match="built for the milvus vector store, but RAG_VECTOR_STORE is faiss"):
        (tmp_path / "CURRENT").write_text(milvus_live + "\n")
        store.load_index(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("milvus_uri", "milvus", "RAG_MILVUS_URI must be a server (http://host:19530) or a file ending in .db"),
        ("milvus_collection", "1st", "RAG_MILVUS_COLLECTION must be a letter then letters, digits or underscores"),
        ("milvus_collection", "a-b", "RAG_MILVUS_COLLECTION must be"),
    ],
)
def test_a_bad_milvus_setting_is_refused_before_anything_runs(tmp_path, variable, value, message, fake_embedder):
    settings = Settings(index_dir=tmp_path, seeds_dir=SEEDS, vector_store="milvus", **{variable: value})
    with pytest.raises(RagError, match=re.escape(message)):
        Engine(settings, embedder=fake_embedder)


def test_the_default_database_is_in_the_index_folder_and_the_token_is_never_shown(tmp_path):
    settings = Settings(index_dir=tmp_path / "index", vector_store="milvus", milvus_token="root:secret")
    milvus = vector_store(settings)
    assert milvus.uri == str(tmp_path / "index" / "milvus.db") and milvus.prefix == "rag"
    assert "secret" not in repr(milvus) + repr(settings)


def test_an_unreachable_server_is_named_in_one_line(tmp_path):
    milvus = MilvusStore("http://127.0.0.1:9", "", "rag")  # the discard port: nothing listens
    with pytest.raises(RagError, match=r"^cannot open Milvus at http://127.0.0.1:9: .*unavailable"):
        store.load_index(tmp_path, store=milvus)


def test_an_embedded_database_open_in_another_process_is_refused_in_one_line(tmp_path):
    database = str(tmp_path / "held.db")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from pymilvus import MilvusClient; MilvusClient({database!r}); print('open', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(RagError, match=r"embedded Milvus database .*held\.db is open in another process"):
            store.load_index(tmp_path, store=MilvusStore(database, "", "rag"))
    finally:
        holder.communicate("\n", timeout=30)
