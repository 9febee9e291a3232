"""Issue 31, part 6: the server's own protocol and what the app says to odd requests. Slow
readers are capped per client address and cut off after RAG_WRITE_SECONDS; uvicorn's own 400
and 503 carry our headers; HEAD where it was missing (Allow under /v1: test_http.py); 4xx, never 5xx, for deeply
nested JSON, numbers too long for a float, and bodies or files over their limits. `rag serve`'s
server (rag/http/protocol.py) runs in a thread on 127.0.0.1 over the fake embedder; no model."""

import http.client
import json
import logging
import select
import socket
import threading
import time
import urllib.parse
from contextlib import contextmanager

import pytest
import uvicorn

from rag.http.app import create_app
from rag.http.middleware import SECURITY_HEADERS
from rag.http.protocol import server_config

from .conftest import ARTICLE, call, fake_engine, free_port, ready_client

GOOD = {"question": "Qui a rencontré Vladimir Poutine ?"}
DOCUMENT = f"/api/documents/{ARTICLE.stem}"
ESTABLISHED, CLOSED = 1, 7  # TCP states, as TCP_INFO's first byte says them (7: reset)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("protocol") / "index"
    fake_engine(index_dir).build_index()
    return index_dir


@pytest.fixture(scope="module")
def client(index_dir):
    with ready_client(fake_engine(index_dir)) as client:
        yield client


@contextmanager
def serving(index_dir, **settings):
    """`rag serve`'s uvicorn server with ``settings``, in a thread on 127.0.0.1, once ready; its port."""
    engine = fake_engine(index_dir, **settings)
    config = server_config(create_app(engine), engine.settings, "127.0.0.1", free_port())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started and call(f"http://127.0.0.1:{config.port}", "/readyz")[0] == 200)
    try:
        yield config.port
    finally:
        server.should_exit = True
        thread.join(15)


def wait_for(condition, seconds=15.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.05)


def slow_reader(port, requests=60):
    """A client from 127.0.0.2 that asks for the article ``requests`` times (pipelined: about
    300 KB of answers) and reads none of it. Its small window and segments keep the kernel's
    buffers small (about 100 KB), so the server's own write buffer fills. Returned once answered."""
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    reader.bind(("127.0.0.2", 0))
    reader.connect(("127.0.0.1", port))
    reader.sendall(f"GET {DOCUMENT} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * requests)
    assert select.select([reader], [], [], 10)[0], "no answer"
    return reader


def state(connection) -> int:
    return connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def ask_from(address, port, method="GET", path="/healthz", body=None):
    """(status, headers, body) of one request from ``address`` (any of 127.0.0.0/8)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(address, 0))
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        reply = connection.getresponse()
        return reply.status, reply.headers, reply.read()
    finally:
        connection.close()


def assert_security_headers(headers):
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name


def test_slow_readers_from_one_address_leave_room_for_other_clients(index_dir):
    """40 slow readers from 127.0.0.2 held 23 of 24 connections, and 127.0.0.1 got 503; now
    one address holds at most RAG_MAX_CONNECTIONS_PER_CLIENT and is refused beyond it at once."""
    with serving(index_dir, max_connections=24, max_connections_per_client=8, write_seconds=60) as port:
        slow = []
        try:
            for _ in range(40):
                slow.append(slow_reader(port))
            answers = [reader.recv(12, socket.MSG_PEEK) for reader in slow]
            assert answers.count(b"HTTP/1.1 200") == 8 and answers.count(b"HTTP/1.1 503") == 32, answers
            status, _, body = ask_from("127.0.0.1", port, "POST", "/api/ask", json.dumps(GOOD))
            assert status == 200, body
            status, headers, body = ask_from("127.0.0.2", port)
            assert status == 503 and headers["Retry-After"] == "1" and headers["Connection"] == "close"
            assert json.loads(body) == {"detail": "too many connections from one address; try again in a moment"}
            assert_security_headers(headers)
            status, _, body = ask_from("127.0.0.2", port, path="/v1/models")
            assert status == 503 and json.loads(body)["error"]["type"] == "server_error", "OpenAI's shape under /v1"
        finally:
            for reader in slow:
                reader.close()


def test_a_reader_that_takes_nothing_is_cut_off_after_the_write_deadline(index_dir, caplog):
    """Slow readers held their connections (and the answers waiting for them) for ever: closing
    waits for the client to read. Now one that takes nothing for RAG_WRITE_SECONDS is reset,
    quietly: the answer that was being written stops, without an error in the log."""
    with serving(index_dir, max_connections_per_client=10, write_seconds=1) as port:
        logging.getLogger("uvicorn.error").addHandler(caplog.handler)  # uvicorn's loggers stop at "uvicorn"
        slow = [slow_reader(port) for _ in range(10)]
        try:
            wait_for(lambda: all(state(reader) != ESTABLISHED for reader in slow))
            assert {state(reader) for reader in slow} == {CLOSED}, "reset: the kernel keeps nothing to send"
            assert ask_from("127.0.0.2", port)[0] == 200, "the cut-off connections no longer count for the address"
            assert not [r for r in caplog.records if r.levelname == "ERROR"], "an answer wrote to a closed connection"
        finally:
            logging.getLogger("uvicorn.error").removeHandler(caplog.handler)
            for reader in slow:
                reader.close()


def test_a_slow_but_steady_reader_gets_the_whole_answer(index_dir):
    """The deadline is for taking nothing: a client that reads on, slowly, is not cut off."""
    with serving(index_dir, write_seconds=1) as port:
        reader = slow_reader(port, requests=40)
        with reader:
            received = b""
            while received.count(b"HTTP/1.1 200 ") < 40:
                chunk = reader.recv(4096)
                assert chunk, "cut off"
                received += chunk
                time.sleep(0.01)  # about 300 KB/s at most, 3,000 times slower than loopback


def read_response(connection) -> tuple[int, dict, bytes]:
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


def test_the_servers_own_400_and_503_carry_the_security_headers(index_dir):
    with serving(index_dir, max_connections=3) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as bad:
            bad.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
            status, headers, body = read_response(bad)
        assert status == 400 and json.loads(body) == {"detail": "the request is not valid HTTP/1.1"}
        assert headers["content-type"] == "application/json" and headers["connection"] == "close"
        assert_security_headers({name.title(): value for name, value in headers.items()})
        kept = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(2)]
        try:
            for connection in kept:  # answered and kept alive: 2 of the 3 connections
                connection.request("GET", "/healthz")
                assert connection.getresponse().read()
            status, headers, body = ask_from("127.0.0.1", port)
            assert status == 503 and headers["Retry-After"] == "1"
            assert json.loads(body) == {"detail": "too many connections at once; try again in a moment"}
            assert_security_headers(headers)
        finally:
            for connection in kept:
                connection.close()


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/rag", "/page/documents", f"/page{DOCUMENT[4:]}", "/signin"])
def test_head_answers_where_get_does(client, path):
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code != 405 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


JSON = {"Content-Type": "application/json"}
DEEP = "[" * 1000 + "]" * 1000


def test_json_nested_too_deep_is_a_422_and_openai_s_400(client):
    reply = client.post("/api/ask", content='{"question": "x", "history": ' + DEEP + "}", headers=JSON)
    assert reply.status_code == 422 and reply.json() == {"detail": "the body is not valid JSON: it is nested too deep"}
    reply = client.post("/v1/chat/completions", content='{"model": "rag", "messages": ' + DEEP + "}", headers=JSON)
    assert (
        reply.status_code == 400
        and reply.json()["error"]["message"] == "the body is not valid JSON: it is nested too deep"
    )


@pytest.mark.parametrize("top_k", ["1" + "0" * 310, "-" + "9" * 400, "1e308", "1" + "0" * 310 + ".0"])
def test_a_top_k_too_large_for_a_float_is_a_422(client, top_k):
    for stream in ("false", "true"):
        body = f'{{"question": "Qui ?", "top_k": {top_k}, "stream": {stream}}}'
        reply = client.post("/api/ask", content=body, headers=JSON)
        assert reply.status_code == 422 and reply.json()["detail"].startswith("top_k: "), reply.text


def test_numbers_too_large_for_a_float_under_v1_are_a_400(client):
    messages = '[{"role": "user", "content": "Qui ?"}]'
    for field in ('"n": 1' + "0" * 310, '"max_tokens": 1' + "0" * 310, '"temperature": 1e999'):
        reply = client.post(
            "/v1/chat/completions", content=f'{{"model": "rag", "messages": {messages}, {field}}}', headers=JSON
        )
        assert reply.status_code in (200, 400), (field, reply.text)


def test_a_history_nested_2000_deep_in_the_page_form_is_refused_in_words(index_dir):
    with serving(index_dir) as port:
        form = urllib.parse.urlencode({"question": "Qui ?", "history": "[" * 2000 + "]" * 2000})
        status, _, page = call(f"http://127.0.0.1:{port}", "/", raw=form.encode(), form=True)
    assert status == 422 and "the conversation sent with the question cannot be read" in page


def test_bodies_refused_before_the_app_are_refused_in_openai_s_shape_under_v1(client):
    reply = client.post("/v1/chat/completions", content=b"x" * 70_000, headers=JSON)
    assert reply.status_code == 413
    assert reply.json()["error"] == {
        "message": "the body is over 64 KiB",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    both = {**JSON, "Content-Length": "2", "Transfer-Encoding": "chunked"}  # the real server's parser refuses it first
    reply = client.post("/v1/chat/completions", content=b"{}", headers=both)
    assert reply.status_code == 400 and reply.json()["error"]["message"].startswith("a request may not carry both")


def test_an_upload_is_limited_to_exactly_rag_max_upload_mb(tmp_path):
    """The body limit keeps 16 KiB for the form around the file; the file itself gets none."""
    limit = 1024 * 1024  # RAG_MAX_UPLOAD_MB=1
    note = b"A short note about the bridges of Basel.\n"
    with ready_client(fake_engine(tmp_path / "index", max_upload_mb=1)) as small:
        at_limit = small.post("/api/documents", files={"file": ("note.txt", note + b" " * (limit - len(note)))})
        assert at_limit.status_code == 201, at_limit.text
        over = small.post("/api/documents", files={"file": ("over.txt", note + b" " * (limit + 1 - len(note)))})
        assert over.status_code == 413 and over.json() == {"detail": "the body is over 1 MiB"}
        far_over = small.post("/api/documents", files={"file": ("far.txt", b" " * (limit + 64 * 1024))})
        assert far_over.status_code == 413 and far_over.json() == over.json(), "the body limit says the same"
        assert [d["id"] for d in small.get("/api/documents").json()["documents"]] == [ARTICLE.stem, "note"]


@pytest.mark.parametrize("trusted", [(), ("127.0.0.1",)])
def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(index_dir, trusted):
    """Wrong keys are throttled per client address (5 a minute): a loopback client that names a
    new address in each request dodges that only where 127.0.0.1 is a trusted proxy."""
    key = "a-key-of-24-characters.."
    with serving(index_dir, api_key=key, trusted_proxies=trusted) as port:
        statuses = [
            call(
                f"http://127.0.0.1:{port}",
                "/api/documents",
                headers={"X-API-Key": "wrong", "X-Forwarded-For": f"203.0.113.{i}"},
            )[0]
            for i in range(6)
        ]
    assert statuses == [401] * 5 + ([401] if trusted else [429])
