"""RAG_VECTOR_STORE=milvus with the real model: the same answers as FAISS on the dev sets, and
rebuilds under load that lose no request, on a Milvus server (a `milvus-lite server` on
loopback, as a standalone Milvus would be) and on the embedded one."""

import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from rag.answer.questions import Turn
from rag.engine import Engine
from rag.evaluation import read_questions
from rag.settings import Settings
from rag.store.milvus_index import MilvusStore

from .conftest import REPO, SEEDS, call, free_port, model_cache_dir, running_server
from .test_reliability import OTHER_ARTICLE, Load, rag, wait_for

pytestmark = pytest.mark.model

DEV_SETS = ["dev.jsonl", "dev_offtopic.jsonl", "dev_neartopic.jsonl", "dev_followups.jsonl", "extra.jsonl"]
ARTICLE_ID = "000_8cb13a5d0c7818f1"


def test_faiss_and_embedded_milvus_give_the_same_answers_on_the_dev_sets(seeds_engine, embedder, tmp_path):
    settings = Settings(
        index_dir=tmp_path / "index", seeds_dir=SEEDS, cache_dir=model_cache_dir(), vector_store="milvus"
    )
    milvus = Engine(settings, embedder=embedder)
    milvus.build_index()
    assert milvus.index.manifest["vector_index"]["backend"] == "milvus"
    questions = [q for name in DEV_SETS for q in read_questions(REPO / "eval" / name)]
    for question in questions:
        history = [Turn("user", earlier) for earlier in question.history]
        exact = asdict(seeds_engine.answer(question.text, history=history))
        assert asdict(milvus.answer(question.text, history=history)) == exact, question.text
    assert len(questions) >= 40


@pytest.fixture
def milvus_server(tmp_path):
    """A `milvus-lite server` on 127.0.0.1, its data in tmp_path, stopped on leaving."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(str(Path(sys.executable).parent / "milvus-lite"), "server", "--data-dir", str(tmp_path / "milvus.db")),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "the Milvus server did not start"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_rebuild_on_a_milvus_server_under_load_is_served_within_5_s_and_no_request_fails(tmp_path, milvus_server):
    settings = {"RAG_VECTOR_STORE": "milvus", "RAG_MILVUS_URI": milvus_server, "RAG_MILVUS_COLLECTION": "news"}
    with running_server(tmp_path, **settings) as server:
        folder = tmp_path / "other"
        folder.mkdir()
        (folder / "volcan.txt").write_text(OTHER_ARTICLE, encoding="utf-8")
        load = Load(server)
        try:
            built = rag(server, "index", "-q", str(folder))  # another process, the same Milvus
            assert built.returncode == 0, built.stderr[-2000:]
            assert wait_for(lambda: call(server.base, "/api/documents/volcan")[0] == 200, 5), "served in 5 s"
        finally:
            statuses = load.finish()
        assert len(statuses) >= 10 and set(statuses) == {200}, statuses
        _, _, answer = call(server.base, "/api/ask", {"question": "Quel volcan est entré en éruption ?"})
        assert answer["citations"][0]["document"] == "volcan" and "Piton" in answer["citations"][0]["text"]
        assert call(server.base, "/api/documents/" + ARTICLE_ID)[0] == 404, "the old content is gone"
    milvus = MilvusStore(milvus_server, "", "news")
    live = milvus.live(server.index_dir)
    assert sorted(p.name for p in server.index_dir.glob("gen-*"))[-1] == live
    assert milvus.client.describe_alias("news")["collection_name"] == milvus.collection(live)
    assert len([c for c in milvus.client.list_collections() if c.startswith("news_gen_")]) == 2


def test_an_upload_under_load_on_embedded_milvus_loses_no_request(tmp_path):
    with running_server(tmp_path, RAG_VECTOR_STORE="milvus") as server:
        assert (server.index_dir / "milvus.db").is_dir(), "the embedded database sits in the index folder"
        load = Load(server)
        try:
            with httpx.Client(base_url=server.base, timeout=120) as client:
                reply = client.post("/api/documents", files={"file": ("volcan.txt", OTHER_ARTICLE.encode())})
            assert reply.status_code == 201, reply.text
        finally:
            statuses = load.finish()
        assert len(statuses) >= 10 and set(statuses) == {200}, statuses
        _, _, answer = call(server.base, "/api/ask", {"question": "Quel volcan est entré en éruption ?"})
        assert answer["citations"][0]["document"] == "volcan"
        busy = rag(server, "index", "-q")  # the embedded database is this server's alone
        assert busy.returncode == 1 and busy.stderr.count("\n") == 1, busy.stderr
        assert "open in another process" in busy.stderr and "Traceback" not in busy.stderr
