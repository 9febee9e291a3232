"""The HTTP contract in process: FastAPI's TestClient over the app, the engine on the fake
embedder. Status codes, bodies, bad input, headers, the page's form. No model; the real
server with the real model is tested in test_server.py."""

import json
import re
import time
import urllib.parse

import pytest
from fastapi.testclient import TestClient

from rag.http.app import create_app
from rag.settings import Settings

from .conftest import fake_engine, ready_client, wait_ready

GOOD = {"question": "Qui a rencontré Vladimir Poutine ?"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The app on an empty index folder: it builds the index from the seeds, then serves."""
    with ready_client(fake_engine(tmp_path_factory.mktemp("http") / "index")) as client:
        yield client


def test_not_ready_until_loaded_and_alive_throughout(tmp_path):
    app = create_app(fake_engine(tmp_path / "index"))
    client = TestClient(app)  # outside `with`: start-up has not run, nothing is loaded
    assert client.get("/healthz").status_code == 200
    for response in (client.get("/readyz"), client.post("/api/ask", json=GOOD), client.get("/api/documents/x")):
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert response.json() == {"detail": "getting ready: starting"}
    page = client.get("/")
    assert page.status_code == 503 and "Getting ready" in page.text and page.headers["Retry-After"] == "5"
    form = client.post("/", data={"question": "Qui ?"})
    assert form.status_code == 503 and 'class="getting-ready"' in form.text and form.headers["Retry-After"] == "5"
    assert 'class="turn error"' not in form.text and ">Qui ?</textarea>" in form.text, "kept for later"
    with client:
        wait_ready(client)
        assert client.post("/api/ask", json=GOOD).status_code == 200


def test_an_engine_that_cannot_start_says_why_and_stops_the_server(tmp_path):
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    (index_dir / "CURRENT").write_text("gen-gone\n")
    stopped = []
    app = create_app(fake_engine(index_dir), on_fatal=lambda: stopped.append(1))
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while not stopped and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stopped == [1]
        reply = client.get("/readyz")
        assert reply.status_code == 503 and reply.json()["detail"].startswith("not ready: ")
        assert "names no build of the index; run `rag index`" in reply.json()["detail"]
    assert "names no build" in str(app.state.runtime.failure)


def test_ask_returns_the_contract_field_by_field(client):
    reply = client.post("/api/ask", json=GOOD)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    body = reply.json()
    fields = ["question", "abstained", "answer", "citations", "mode", "reason", "confidence", "resolved_question"]
    assert list(body) == [*fields, "history_cut", "outcome"]
    assert body["resolved_question"] == GOOD["question"] and body["history_cut"] == 0, "a question read alone"
    assert "X-History-Cut" not in reply.headers
    assert body["mode"] == "extractive" and body["reason"] is None, "no RAG_LLM_URL: answers as before"
    assert body["confidence"] is None, "the fake model has no calibration"
    assert body["outcome"] == ("answer" if not body["abstained"] else "closest" if body["citations"] else "none")
    assert body["question"] == GOOD["question"] and isinstance(body["abstained"], bool)
    assert isinstance(body["answer"], str) and body["answer"]
    assert 0 < len(body["citations"]) <= 3
    for number, citation in enumerate(body["citations"], start=1):
        assert list(citation) == ["id", "document", "sentence", "start", "end", "text", "score"]
        assert citation["id"] == number
        assert all(isinstance(citation[key], int) for key in ("sentence", "start", "end"))
        assert isinstance(citation["score"], float) and -1 <= citation["score"] <= 1
        document = client.get(f"/api/documents/{citation['document']}").json()
        assert list(document) == ["id", "title", "text"] and document["id"] == citation["document"]
        assert document["text"][citation["start"] : citation["end"]] == citation["text"]
        if not body["abstained"]:
            assert f"{citation['text']} [{number}]" in body["answer"]
    assert len(client.post("/api/ask", json={**GOOD, "top_k": 1}).json()["citations"]) == 1
    alone = client.post("/api/ask", json=GOOD).json()
    assert client.post("/api/ask", json={**GOOD, "history": []}).json() == alone, "no history, same answer"
    turns = [{"role": "user", "content": "Où ?"}, {"role": "assistant", "content": "À Saint-Pétersbourg [1]"}]
    assert client.post("/api/ask", json={**GOOD, "history": turns}).status_code == 200
    assert client.post("/api/ask", json={**GOOD, "top_k": 2.0}).status_code == 200


BAD_REQUESTS = {
    "no-question": ({}, None, "question: Field required"),
    "empty": ({"question": ""}, None, "question"),
    "blank": ({"question": "   "}, None, "the question is empty"),
    "too-long": ({"question": "x" * 1001}, None, "1000 characters"),
    "number": ({"question": 5}, None, "question: Input should be a valid string"),
    "null": ({"question": None}, None, "question"),
    "list": ({"question": ["a"]}, None, "question"),
    "not-json": (None, b'{"question": ', "not valid JSON"),
    "empty-body": (None, b"", "body"),
    "array": (None, b"[1, 2]", "body"),
    "lone-surrogate": (None, b'{"question": "\\ud800"}', "question: Input should be a valid string"),
    "top-k-zero": ({"question": "Qui ?", "top_k": 0}, None, "top_k"),
    "top-k-huge": ({"question": "Qui ?", "top_k": 10**12}, None, "top_k"),
    "top-k-fraction": ({"question": "Qui ?", "top_k": 2.5}, None, "top_k"),
    "top-k-text": ({"question": "Qui ?", "top_k": "3"}, None, "top_k"),
    "top-k-bool": ({"question": "Qui ?", "top_k": True}, None, "top_k"),
    "history-not-list": ({"question": "Qui ?", "history": "Who?"}, None, "history"),
    "history-role": (
        {"question": "Qui ?", "history": [{"role": "system", "content": "x"}]},
        None,
        "expected tags: 'user', 'assistant'",
    ),
    "history-no-content": (
        {"question": "Qui ?", "history": [{"role": "user"}]},
        None,
        "history.0.user.content: Field required",
    ),
    "history-1001-turns": (
        {"question": "Qui ?", "history": [{"role": "user", "content": "a"}] * 1001},
        None,
        "history: List should have at most 1000 items",
    ),
    "history-blank-turn": (
        {"question": "Qui ?", "history": [{"role": "user", "content": "  "}]},
        None,
        "history.0.user",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_input_gets_4xx_with_a_detail_and_the_server_carries_on(client, case):
    body, raw, words = BAD_REQUESTS[case]
    if raw is None:
        reply = client.post("/api/ask", json=body)
    else:
        reply = client.post("/api/ask", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= reply.status_code < 500, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert isinstance(reply.json()["detail"], str) and words in reply.json()["detail"], reply.json()
    assert client.post("/api/ask", json=GOOD).status_code == 200


def answer_event(stream: str) -> dict:
    """The JSON of a streamed /api/ask's 'answer' event."""
    return json.loads(re.search(r"^event: answer\ndata: (.*)$", stream, re.MULTILINE).group(1))


def test_a_conversation_that_grew_is_answered_and_the_cut_said(client):
    """25 earlier turns: answered from the last 20, the 5 oldest cut and said so in the answer
    and the X-History-Cut header, streamed or not; over-long turns are shortened and counted."""
    turns = [{"role": ("user", "assistant")[i % 2], "content": f"tour {i} à Moscou"} for i in range(25)]
    reply = client.post("/api/ask", json={**GOOD, "history": turns})
    assert reply.status_code == 200 and reply.json()["history_cut"] == 5, reply.text
    assert reply.headers["X-History-Cut"] == "5"
    last_20 = client.post("/api/ask", json={**GOOD, "history": turns[5:]})
    assert "X-History-Cut" not in last_20.headers
    assert reply.json() == {**last_20.json(), "history_cut": 5}, "the same answer as with the last 20 turns"
    streamed = client.post("/api/ask", json={**GOOD, "history": turns, "stream": True})
    assert streamed.status_code == 200 and streamed.headers["X-History-Cut"] == "5"
    assert answer_event(streamed.text) == reply.json()
    long = [{"role": "user", "content": "Où ? " * 300}, {"role": "assistant", "content": "x" * 5000}]
    reply = client.post("/api/ask", json={**GOOD, "history": long})
    assert reply.status_code == 200 and reply.json()["history_cut"] == 2 and reply.headers["X-History-Cut"] == "2"


def test_unknown_documents_and_routes_answer_404_with_a_detail(client):
    reply = client.get("/api/documents/nope")
    assert reply.status_code == 404 and "nope" in reply.json()["detail"]
    reply = client.get("/api/nothing-here")
    assert reply.status_code == 404 and reply.json()["detail"]
    reply = client.get("/api/ask")
    assert reply.status_code == 405 and reply.json()["detail"] and reply.headers["Allow"] == "POST"


@pytest.mark.parametrize("path", ["/", "/healthz", "/readyz", "/api/documents", "/api/documents/000_8cb13a5d0c7818f1"])
def test_head_answers_where_get_does_without_a_body(client, path):
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


def test_a_number_too_long_to_read_is_a_422_and_bytes_that_are_not_text_a_400(client):
    json_type = {"Content-Type": "application/json"}
    reply = client.post("/api/ask", content=b'{"question": "x", "top_k": ' + b"9" * 4400 + b"}", headers=json_type)
    assert reply.status_code == 422 and reply.json()["detail"].startswith(
        "the body is not valid JSON: Exceeds the limit"
    )
    reply = client.post("/api/ask", content=b'{"question": "\xff"}', headers=json_type)
    assert reply.status_code == 400 and reply.json() == {"detail": "the body is not UTF-8 text"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/documents/x", "DELETE, GET, HEAD"),
        ("PATCH", "/api/documents", "GET, HEAD, POST"),
        ("PATCH", "/", "GET, HEAD, POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("PUT", "/v1/models", "GET, HEAD"),  # under /v1 too
        ("GET", "/v1/chat/completions", "POST"),
        ("DELETE", "/signin", "GET, HEAD, POST"),
    ],
)
def test_a_wrong_method_names_every_method_of_the_path(client, method, path, allowed):
    reply = client.request(method, path)
    assert reply.status_code == 405 and reply.headers["Allow"] == allowed, "not only the first route's"


def test_docs_need_nothing_from_another_host(client):
    assert client.get("/docs").status_code == 404, "Swagger UI (CDN assets) is off"
    schema = client.get("/openapi.json")
    assert schema.status_code == 200 and "/api/ask" in schema.json()["paths"]
    assert "/" not in schema.json()["paths"], "the page is not part of the API"


def test_every_response_carries_the_security_headers(client):
    for reply in (
        client.get("/"),
        client.get("/healthz"),
        client.get("/static/page.css"),
        client.get("/nowhere"),
        client.post("/api/ask", content=b"x" * 70_000),
    ):
        assert "script-src 'self'" in reply.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Referrer-Policy"] == "no-referrer"


def test_the_page_and_its_own_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "no inline script"
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", page.text), "no inline event handler"
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset
    assert {"/static/page.css", "/static/chat.js", "/static/favicon.svg"} <= set(
        re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    )
    assert 'id="s-000_8cb13a5d0c7818f1-0"' in page.text, "the article is shown sentence by sentence"


def post_form(client, raw):
    return client.post("/", content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_the_form_post_renders_the_answer_escaped(client):
    reply = post_form(client, urllib.parse.urlencode(GOOD).encode())
    assert reply.status_code == 200 and 'data-abstained="' in reply.text
    reply = post_form(client, urllib.parse.urlencode({"question": "<img src=x onerror=alert(1)>"}).encode())
    assert reply.status_code == 200 and "<img" not in reply.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in reply.text
    for fields in (b"question=", b"question=%20%20", b"other=1", b"\xff\xfe", ("question=" + "x" * 1001).encode()):
        reply = post_form(client, fields)
        assert reply.status_code == 422 and 'class="turn error"' in reply.text, fields
    reply = post_form(client, b"question=" + b"x" * 70_000)
    assert reply.status_code == 413 and "over 64 KiB" in reply.json()["detail"]


def test_the_form_carries_the_conversation_without_javascript(client):
    import html
    import json

    def history_field(page):
        return json.loads(html.unescape(re.search(r'name="history" value="([^"]*)"', page).group(1)))

    first = post_form(client, urllib.parse.urlencode({"question": "Qui a rencontré Poutine ?"}).encode())
    assert first.status_code == 200
    carried = history_field(first.text)
    assert [t["role"] for t in carried] == ["user", "assistant"] and carried[0][
        "content"
    ] == "Qui a rencontré Poutine ?"
    second = post_form(client, urllib.parse.urlencode({"question": "Où ?", "history": json.dumps(carried)}).encode())
    assert second.status_code == 200
    assert second.text.count('class="turn question"') == 2, "the earlier question is shown again"
    assert 'class="turn answer earlier"' in second.text
    assert [t["content"] for t in history_field(second.text)][::2] == ["Qui a rencontré Poutine ?", "Où ?"]
    assert client.post("/api/ask", json={"question": "Où ?", "history": carried}).json()["answer"] in second.text
    long = [{"role": "user", "content": f"q{i}"} for i in range(24)] + [{"role": "assistant", "content": "a" * 5000}]
    reply = post_form(client, urllib.parse.urlencode({"question": "Où ?", "history": json.dumps(long)}).encode())
    assert reply.status_code == 200, "a conversation that grew is answered"
    kept = history_field(reply.text)
    assert len(kept) == 20 and kept[-2]["content"] == "Où ?", "the last 20 turns go on"
    assert kept[-3] == {"role": "assistant", "content": "a" * 4000}, "an answer is carried shortened"
    nested = "[" * 20_000  # deeper than Python's JSON reader goes
    for bad in ("not json", json.dumps([{"role": "robot", "content": "x"}]), json.dumps({"role": "user"}), nested):
        reply = post_form(client, urllib.parse.urlencode({"question": "Où ?", "history": bad}).encode())
        assert reply.status_code == 422 and 'class="turn error"' in reply.text, bad


def test_the_form_post_shows_how_a_follow_up_was_read(client, monkeypatch):
    """A reading other than the question is a quiet "Read as" line under each outcome's answer,
    escaped; the question again in other case and spacing is none."""
    import dataclasses

    engine = client.app.state.runtime.engine
    reading = "Où ? <b>Qui</b> a rencontré Poutine ?"
    found = engine.extract("Qui a rencontré Poutine ?")
    outcomes = {
        "answer": {"abstained": False},
        "closest": {"abstained": True},
        "none": {"abstained": True, "citations": []},
    }
    for outcome, fields in outcomes.items():
        for resolved, shown in ((reading, True), ("  OÙ   ? ", False)):
            made = dataclasses.replace(found, question="Où ?", resolved_question=resolved, **fields)
            monkeypatch.setattr(engine, "extract", lambda *args, made=made: made)
            page = post_form(client, urllib.parse.urlencode({"question": "Où ?"}).encode()).text
            assert f'data-outcome="{outcome}"' in page
            line = "Read as: Où ? &lt;b&gt;Qui&lt;/b&gt; a rencontré Poutine ?</p>"
            assert (line in page, page.count('class="read-as"')) == ((True, 1) if shown else (False, 0)), outcome


def test_bodies_over_64_kib_get_413(client):
    reply = client.post("/api/ask", content=b'{"question": "' + b"x" * 70_000 + b'"}')
    assert reply.status_code == 413 and "64 KiB" in reply.json()["detail"]
    assert client.post("/api/ask", json=GOOD).status_code == 200


def test_no_cors_unless_configured(client):
    preflight = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    assert "Access-Control-Allow-Origin" not in client.options("/api/ask", headers=preflight).headers
    reply = client.post("/api/ask", json=GOOD, headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_an_api_key_guards_everything_but_the_probes_static_files_and_sign_in(tmp_path, monkeypatch):
    from rag.http import access

    key, near = "s3cret-key-for-the-tests", "s3cret-key-for-the-test"  # at least 16 characters
    engine = fake_engine(tmp_path / "index", api_key=key)
    with ready_client(engine) as guarded:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": near}, {"X-API-Key": ""}):
            reply = guarded.post("/api/ask", json=GOOD, headers=headers)
            assert reply.status_code == 401 and "needs a key" in reply.json()["detail"]
            assert reply.headers["WWW-Authenticate"] == "Bearer"
        assert guarded.get("/api/documents/000_8cb13a5d0c7818f1").status_code == 401
        assert guarded.post("/api/ask", json=GOOD, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert guarded.post("/api/ask", json=GOOD, headers={"authorization": f"bearer {key}"}).status_code == 200
        assert guarded.post("/api/ask", json=GOOD, headers={"X-API-Key": key}).status_code == 200
        assert guarded.get("/healthz").status_code == 200 and guarded.get("/readyz").status_code == 200
        assert guarded.get("/static/chat.js").status_code == 200

        # The page and its parts: a sign-in form, and nothing of the documents.
        article = guarded.get("/api/documents/000_8cb13a5d0c7818f1", headers={"X-API-Key": key}).json()
        for method, path in [("GET", "/"), ("POST", "/"), ("GET", "/page/documents"), ("GET", "/page/documents/x")]:
            reply = guarded.request(method, path)
            assert reply.status_code == 401 and 'name="key"' in reply.text, path
            assert article["text"][:40] not in reply.text and "Witkoff" not in reply.text
        wrong = guarded.post("/signin", data={"key": near}, follow_redirects=False)
        assert wrong.status_code == 401 and "That key is not right." in wrong.text and "set-cookie" not in wrong.headers
        right = guarded.post("/signin", data={"key": key}, follow_redirects=False)
        assert right.status_code == 303 and right.headers["location"] == "/"
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
        assert "Secure" not in cookie, "plain HTTP here; behind HTTPS it is Secure"
        page = guarded.get("/")
        assert page.status_code == 200 and "Witkoff" in page.text, "the cookie opens the page"
        assert guarded.post("/api/ask", json=GOOD).status_code == 200, "and the API for the page's script"
        reply = post_form(guarded, urllib.parse.urlencode(GOOD).encode())
        assert reply.status_code == 200 and 'data-abstained="' in reply.text

        token = guarded.cookies[access.COOKIE]
        guarded.cookies.clear()
        guarded.cookies.set(access.COOKIE, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
        assert guarded.get("/").status_code == 401, "a tampered cookie opens nothing"
        guarded.cookies.clear()
        guarded.cookies.set(access.COOKIE, token)
        monkeypatch.setattr(access, "SESSION_SECONDS", -1)
        assert guarded.get("/").status_code == 401, "nor an expired one"
        monkeypatch.undo()
        assert guarded.get("/").status_code == 200
        out = guarded.post("/signout", follow_redirects=False)
        assert out.status_code == 303 and 'rag_session=""' in out.headers["set-cookie"]

    with ready_client(engine, base_url="https://testserver") as secure:
        assert "Secure" in secure.post("/signin", data={"key": key}, follow_redirects=False).headers["set-cookie"]


@pytest.mark.parametrize("key", [" s3cret", "s3cret ", "clé-secrète", "tab\tkey"])
def test_a_key_no_client_could_send_is_refused_at_start(monkeypatch, key):
    from rag.errors import RagError

    monkeypatch.setenv("RAG_API_KEY", key)
    with pytest.raises(RagError, match="RAG_API_KEY must be printable ASCII without spaces around it"):
        Settings.from_env()
