"""Issue 33, GET /metrics: Prometheus's text format, parsed here as Prometheus parses it.
Requests timed by route template, answers counted by outcome, the index and builds, behind the
key when one is set; in process on the fake embedder, and once over a real uvicorn."""

import time
from dataclasses import replace

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from rag.answer.base import Answer
from rag.errors import StorageError
from rag.http.app import create_app

from .conftest import call, fake_engine, ready_client, serving_app

KEY = "a-key-of-24-characters.."
ARTICLE = "000_8cb13a5d0c7818f1"
ASKED = "Qui a rencontré Vladimir Poutine ?"  # answered from the bundled article with the fake model


def samples(text: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(found: list, name: str, /, **labels) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(s.value for s in found if s.name == name and labels.items() <= s.labels.items())


def scrape(client, **headers) -> list:
    reply = client.get("/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == CONTENT_TYPE_LATEST
    return samples(reply.text)


@pytest.fixture
def engine(tmp_path):
    return fake_engine(tmp_path / "index")


@pytest.fixture
def made(engine):
    """The app, its engine answering "answer ...", "closest ..." and "none ..." with an answer of
    that outcome (the fake model has no calibration), anything else as it would."""
    with ready_client(engine) as client:
        real = engine.extract(ASKED)
        assert real.citations, "the fake model cites sentences for it"
        answers = {
            "answer": replace(real, abstained=False),
            "closest": replace(real, abstained=True),
            "none": Answer(ASKED, True, "The documents do not say.", []),
        }
        original = engine.extract

        def extract(question, *args, **kwargs):
            outcome = question.partition(" ")[0]
            return replace(answers[outcome], question=question) if outcome in answers else original(question)

        engine.extract = extract  # what the routes call, through the runtime's admission line
        yield client


def test_a_request_is_timed_under_its_route_template_never_its_path(made):
    assert made.get(f"/api/documents/{ARTICLE}").status_code == 200
    assert made.get("/api/documents/nope").status_code == 404
    assert made.get(f"/no/such/{ARTICLE}").status_code == 404
    assert made.get("/static/chat.js").status_code == 200
    assert made.request("BREW", "/api/ask").status_code == 405
    found = scrape(made)
    bucket = "rag_http_request_duration_seconds_bucket"
    route = "/api/documents/{document_id}"
    assert value(found, bucket, route=route, method="GET", status="2xx", le="+Inf") == 1
    assert value(found, bucket, route=route, method="GET", status="4xx", le="+Inf") == 1
    assert value(found, bucket, route="unmatched", method="GET", status="4xx", le="+Inf") == 1
    assert value(found, bucket, route="/static/{path}", method="GET", status="2xx", le="+Inf") == 1
    assert value(found, bucket, route="/api/ask", method="other", status="4xx", le="+Inf") == 1
    assert not [s for s in found if ARTICLE in str(s.labels) or "nope" in str(s.labels)], "no raw path"
    # The scrape is a request too, counted once it has been answered.
    assert value(scrape(made), bucket, route="/metrics", method="GET", status="2xx", le="+Inf") == 1


def test_answers_are_counted_by_outcome_on_every_surface(made):
    assert made.post("/api/ask", json={"question": "answer who?"}).status_code == 200
    streamed = made.post("/api/ask", json={"question": "closest who?", "stream": True})
    assert streamed.status_code == 200 and "event: answer" in streamed.text
    chat = {"model": "rag", "messages": [{"role": "user", "content": "none who?"}]}
    assert made.post("/v1/chat/completions", json=chat).status_code == 200
    assert made.post("/v1/chat/completions", json={**chat, "stream": True}).status_code == 200
    form = made.post(
        "/", content=b"question=%3F%3F%3F%3F", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 200  # "????": no words, answered as small talk
    assert made.post("/api/ask", json={"question": " "}).status_code == 422, "refused: no answer"
    found = scrape(made)
    counts = {o: value(found, "rag_answers_total", outcome=o) for o in ("answer", "closest", "none", "smalltalk")}
    assert counts == {"answer": 1, "closest": 1, "none": 2, "smalltalk": 1}
    timed = "rag_answer_duration_seconds_count"
    assert value(found, timed, mode="extractive", outcome="none") == 2
    assert value(found, timed) == 5


def test_a_streamed_answer_is_timed_from_its_question(made, engine):
    """The stream ends in another task than the question's: its time still starts at the question."""
    extract = engine.extract

    def slow(*args, **kwargs):
        time.sleep(0.2)
        return extract(*args, **kwargs)

    engine.extract = slow
    assert made.post("/api/ask", json={"question": "answer who?", "stream": True}).status_code == 200
    found = scrape(made)
    assert value(found, "rag_answer_duration_seconds_count", outcome="answer") == 1
    assert value(found, "rag_answer_duration_seconds_sum", outcome="answer") >= 0.2


def test_the_index_readiness_and_builds(made, engine):
    found = scrape(made)
    index = engine.index
    assert value(found, "rag_ready") == 1
    assert value(found, "rag_index_documents") == len(index.documents) == 1
    assert value(found, "rag_index_sentences") == len(index.sentences)
    first = int(index.generation.split("-")[1])
    assert value(found, "rag_index_generation", name=index.generation) == first
    assert value(found, "rag_builds_total", kind="build", result="ok") == 1, "the first start built the seeds"

    added = made.post(
        "/api/documents", files={"file": ("note.txt", b"Une phrase sur le port de Gdansk.", "text/plain")}
    )
    assert added.status_code == 201
    assert made.post("/api/documents", files={"file": ("x.exe", b"MZ", "application/octet-stream")}).status_code == 415
    found = scrape(made)
    assert value(found, "rag_index_documents") == 2
    assert value(found, "rag_index_generation") == first + 1
    assert value(found, "rag_builds_total", kind="upload", result="ok") == 1
    assert value(found, "rag_builds_total", kind="upload") == 1, "a refused file built nothing"
    assert value(found, "rag_build_duration_seconds_count", kind="upload", result="ok") == 1

    def full(*args, **kwargs):
        raise StorageError("the disk is full")

    engine.add_upload = full
    assert made.post("/api/documents", files={"file": ("b.txt", b"Une autre phrase.", "text/plain")}).status_code == 507
    assert made.delete(f"/api/documents/{added.json()['id']}").status_code == 204
    found = scrape(made)
    assert value(found, "rag_builds_total", kind="upload", result="failed") == 1
    assert value(found, "rag_builds_total", kind="delete", result="ok") == 1
    assert value(found, "rag_index_documents") == 1


def test_before_start_up_not_ready_and_no_index_read(engine):
    """A scrape before the index is loaded (there is none yet) must not load it."""
    from fastapi.testclient import TestClient

    client = TestClient(create_app(engine))  # outside a with block: the start-up thread never runs
    found = scrape(client)
    assert value(found, "rag_ready") == 0
    assert not [s for s in found if s.name.startswith("rag_index_")]


def test_metrics_need_the_key_when_one_is_set(tmp_path):
    with ready_client(fake_engine(tmp_path / "index", api_key=KEY)) as guarded:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            reply = guarded.get("/metrics", headers=headers)
            assert reply.status_code == 401 and "needs a key" in reply.json()["detail"], "as /api answers it"
            assert reply.headers["WWW-Authenticate"] == "Bearer"
        found = scrape(guarded, Authorization=f"Bearer {KEY}")
        assert value(found, "rag_http_request_duration_seconds_count", route="/metrics", status="4xx") == 2
        head = guarded.head("/metrics", headers={"X-API-Key": KEY})
        assert head.status_code == 200 and head.content == b""


def test_a_scraper_with_the_key_over_a_real_server(tmp_path):
    with serving_app(create_app(fake_engine(tmp_path / "index", api_key=KEY))) as base:
        bearer = {"Authorization": f"Bearer {KEY}"}
        deadline = time.monotonic() + 30
        while call(base, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "not ready in time"
            time.sleep(0.05)
        assert call(base, "/metrics")[0] == 401
        assert call(base, "/api/ask", {"question": ASKED}, headers=bearer)[0] == 200
        status, headers, text = call(base, "/metrics", headers=bearer)
    assert status == 200 and headers["Content-Type"] == CONTENT_TYPE_LATEST
    found = samples(text)
    assert value(found, "rag_http_request_duration_seconds_count", route="/api/ask", method="POST", status="2xx") == 1
    assert value(found, "rag_answers_total") == 1
    assert value(found, "process_resident_memory_bytes") > 0
