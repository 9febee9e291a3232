"""The live index damaged under a running server: answers stop with 503 and a detail (never a
wrong answer, never a bare 500), /readyz says not ready, and a rebuild makes it ready again.
Token vectors read from disk (RAG_TOKEN_MEMORY_MB=0) are checked against a checksum per
sentence as they are read."""

import os
import sqlite3

import numpy as np
import pytest

from rag.errors import IndexDamagedError
from rag.http import runtime
from rag.store.generations import CURRENT
from rag.store.index import TOKEN_SPANS, TOKENS, load_index
from rag.store.tokens import row_bytes

from .conftest import FakeEmbedder, fake_engine, rag, ready_client, wait_ready

QUESTION = {"question": "What did Putin demand?"}


def live(index_dir):
    return index_dir / (index_dir / CURRENT).read_text().strip()


def flip(path, start=0, step=1):
    """Every ``step``-th byte from ``start`` inverted, in place: the server's open file sees it."""
    with open(path, "r+b") as handle:
        data = bytearray(handle.read())
        data[start::step] = bytes(b ^ 0xFF for b in data[start::step])
        handle.seek(0)
        handle.write(data)


def damage(generation, how):
    if how == "flip tokens":
        flip(generation / TOKENS, step=7)  # bytes of every sentence's rows (18 bytes a row here)
    elif how == "truncate tokens":
        os.truncate(generation / TOKENS, (generation / TOKENS).stat().st_size // 2)
    else:  # the spans' data, after the .npy header: rows far outside the file, or negative
        flip(generation / TOKEN_SPANS, start=128, step=5)


def assert_damaged(client):
    reply = client.post("/api/ask", json=QUESTION)
    assert reply.status_code == 503, reply.text
    assert "damaged" in reply.json()["detail"] and "rag index" in reply.json()["detail"]
    assert reply.headers["Retry-After"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "rag index" in ready.json()["detail"]
    chat = {"model": "rag", "messages": [{"role": "user", "content": QUESTION["question"]}]}
    assert client.post("/v1/chat/completions", json=chat).status_code == 503


@pytest.mark.parametrize("how", ["flip tokens", "truncate tokens", "flip spans"])
def test_token_vectors_damaged_while_serving_give_503_until_a_rebuild(index_dir, capsys, monkeypatch, how):
    monkeypatch.setattr(runtime, "RELOAD_SECONDS", 0.05)  # the rebuild is noticed sooner
    with ready_client(fake_engine(index_dir, token_memory_mb=0)) as client:
        answered = client.post("/api/ask", json=QUESTION)
        assert answered.status_code == 200
        damage(live(index_dir), how)
        assert_damaged(client)
        assert_damaged(client)  # still, not a wrong answer the second time either
        code, _, err = rag(capsys, "index", "-q")  # the damaged index fails its sha256: built afresh
        assert code == 0, err
        wait_ready(client)
        again = client.post("/api/ask", json=QUESTION)
        assert again.status_code == 200 and again.json() == answered.json()


def test_each_sentences_token_vectors_are_checked_when_read(index_dir):
    index = load_index(index_dir)
    assert not index.tokens.held
    first, rows = (int(n) for n in index.tokens.spans[3])
    before = [index.tokens.of(text) for text in range(len(index.tokens))]
    last_row = (first + rows - 1) * row_bytes(FakeEmbedder.token_dimension)
    flip(live(index_dir) / TOKENS, start=last_row + 5, step=10**9)  # one byte of text 3
    with pytest.raises(IndexDamagedError, match=r"tokens\.i8 changed after it was loaded; run `rag index`"):
        index.tokens.of(3)
    for text in set(range(len(index.tokens))) - {3}:  # the others are read as before
        assert np.array_equal(index.tokens.of(text), before[text])


def test_an_unreadable_metadata_database_gives_503_not_500(index_dir, tmp_path):
    """SQLite keeps the pages it read, so the database is swapped for a damaged one."""
    engine = fake_engine(index_dir, token_memory_mb=0)
    with ready_client(engine, raise_server_exceptions=False) as client:
        document = next(iter(engine.index.listed))
        garbage = tmp_path / "garbage.sqlite3"
        garbage.write_bytes(np.random.default_rng(0).bytes(8192))
        engine.index.catalog._db = sqlite3.connect(garbage, check_same_thread=False)
        engine.index.catalog._kept.clear()
        for path in (f"/api/documents/{document}", "/api/ask"):
            reply = client.post(path, json=QUESTION) if path == "/api/ask" else client.get(path)
            assert reply.status_code == 503, reply.text
            assert "damaged" in reply.json()["detail"] and "rag index" in reply.json()["detail"]
        assert client.get("/readyz").status_code == 503


def test_an_upload_onto_an_index_damaged_on_disk_is_503_with_the_fix(index_dir):
    """The upload loads the live index again, which now fails its sha256."""
    with ready_client(fake_engine(index_dir), raise_server_exceptions=False) as client:
        flip(live(index_dir) / TOKENS, step=7)
        reply = client.post("/api/documents", files={"file": ("note.txt", b"Putin demanded a ceasefire.\n")})
        assert reply.status_code == 503, reply.text
        detail = reply.json()["detail"]
        assert "tokens.i8 is damaged" in detail and "run `rag index`" in detail
        assert str(index_dir.parent) not in detail and detail.startswith("gen-"), "the file, not where it lies"
        assert reply.headers["Retry-After"]


def test_the_page_form_on_a_damaged_index_answers_a_page_that_says_so(index_dir):
    """The chat without JavaScript gets its page, in words, not the API's JSON."""
    with ready_client(fake_engine(index_dir, token_memory_mb=0)) as client:
        damage(live(index_dir), "flip tokens")
        reply = client.post("/", data={"question": QUESTION["question"]})
        assert reply.status_code == 503 and reply.headers["content-type"].startswith("text/html")
        assert "damaged" in reply.text and "rag index" in reply.text and str(index_dir) not in reply.text
        assert client.get("/readyz").status_code == 503
