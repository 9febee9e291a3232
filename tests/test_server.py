"""`rag serve` end to end: a real uvicorn server on 127.0.0.1 with the real default model,
called over HTTP the way outside clients call it. (The HTTP contract case by case, bad input,
headers and the API key are tested in process in test_http.py.)"""

import http.client
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import REPO, call

pytestmark = pytest.mark.model


def test_ready_only_after_loading_and_alive_throughout(server):
    assert server.readiness[0] == 503 and server.readiness[-1] == 200
    assert call(server.base, "/healthz")[0] == 200
    assert "no index yet; building it" in server.output()


def test_ask_returns_the_contract_field_by_field(server):
    question = "¿Qué exigió Putin sobre la OTAN?"  # answered confidently (0.89 when measured)
    status, headers, body = call(server.base, "/api/ask", {"question": question})
    assert status == 200 and headers.get_content_type() == "application/json"
    fields = ["question", "abstained", "answer", "citations", "mode", "reason", "confidence", "resolved_question"]
    assert list(body) == [*fields, "history_cut", "outcome"]
    assert body["question"] == body["resolved_question"] == question and body["history_cut"] == 0
    assert body["abstained"] is False and body["outcome"] == "answer"
    assert isinstance(body["confidence"], float) and 0 <= body["confidence"] <= 1, "the default model is calibrated"
    assert isinstance(body["answer"], str) and "[1]" in body["answer"]
    assert 1 <= len(body["citations"]) <= 3
    for number, citation in enumerate(body["citations"], start=1):
        assert list(citation) == ["id", "document", "sentence", "start", "end", "text", "score"]
        assert citation["id"] == number
        assert all(isinstance(citation[key], int) for key in ("sentence", "start", "end"))
        assert isinstance(citation["score"], float) and -1 <= citation["score"] <= 1
        status, _, document = call(server.base, f"/api/documents/{citation['document']}")
        assert status == 200 and list(document) == ["id", "title", "text"]
        assert document["id"] == citation["document"]
        assert document["text"][citation["start"] : citation["end"]] == citation["text"]
        assert f"{citation['text']} [{number}]" in body["answer"]
    assert "formellement exclue de l" in body["citations"][0]["text"]


def test_a_conversation_that_grew_is_answered_and_the_cut_said(server):
    turns = [{"role": ("user", "assistant")[i % 2], "content": f"Question {i} sur Moscou ?"} for i in range(25)]
    question = "Qui a rencontré Vladimir Poutine ?"
    status, headers, body = call(server.base, "/api/ask", {"question": question, "history": turns})
    assert (status, body["history_cut"], headers["X-History-Cut"]) == (200, 5, "5"), body
    messages = [*turns, {"role": "user", "content": question}]
    status, headers, body = call(server.base, "/v1/chat/completions", {"model": "rag", "messages": messages})
    assert (status, body["choices"][0]["message"]["history_cut"], headers["X-History-Cut"]) == (200, 5, "5"), body


def test_off_topic_questions_are_abstained_in_plain_words(server):
    status, _, body = call(server.base, "/api/ask", {"question": "Who wrote Pride and Prejudice?"})
    assert status == 200 and body["abstained"] is True and (body["outcome"], body["citations"]) == ("none", [])
    assert body["answer"].startswith("The documents do not say. They are about: ")


def test_32_concurrent_requests_get_the_answers_given_one_by_one(server):
    questions = [json.loads(line)["question"] for line in (REPO / "eval" / "extra.jsonl").open()][:32]
    one_by_one = [call(server.base, "/api/ask", {"question": q}) for q in questions]
    with ThreadPoolExecutor(max_workers=32) as pool:
        together = list(pool.map(lambda q: call(server.base, "/api/ask", {"question": q}, timeout=300), questions))
    assert [(s, b) for s, _, b in together] == [(s, b) for s, _, b in one_by_one]
    assert all(s == 200 for s, _, _ in together)


def test_rag_ask_json_prints_exactly_the_api_body(server):
    question = "¿Dónde se reunieron Witkoff y Putin?"
    request = urllib.request.Request(
        server.base + "/api/ask", data=json.dumps({"question": question}).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        api_body = response.read().decode()
    result = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "--json", question],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == api_body + "\n"
    person = subprocess.run(
        [sys.executable, "-m", "rag", "ask", question], cwd=REPO, env=server.env, capture_output=True, text=True
    )
    assert person.returncode == 0 and "Saint-Pétersbourg" in person.stdout
    assert "[1] 000_8cb13a5d0c7818f1, sentence 2, characters" in person.stdout


def test_the_form_post_renders_the_answer_with_security_headers(server):
    status, headers, html = call(
        server.base,
        "/",
        form=True,
        raw=urllib.parse.urlencode({"question": "Qui a rencontré Vladimir Poutine ?"}).encode(),
    )
    assert status == 200 and 'data-abstained="false"' in html and "<mark>" in html
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), "no inline event handler"


def test_bodies_over_64_kib_get_413_before_being_read_whole(server):
    status, _, reply = call(server.base, "/api/ask", raw=json.dumps({"question": "x" * 70_000}).encode())
    assert status == 413 and "64 KiB" in reply["detail"]
    # Streamed in chunks with no Content-Length: refused once 64 KiB have arrived.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/api/ask")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    try:
        for _ in range(40):
            chunk = b"x" * 4096
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        pass  # the server may close the connection once it has refused the body
    response = connection.getresponse()
    assert response.status == 413 and b"64 KiB" in response.read()
    connection.close()
    assert call(server.base, "/api/ask", {"question": "Qui a rencontré Vladimir Poutine ?"})[0] == 200


def schemathesis(server, *options):
    """Run schemathesis on the server's /openapi.json with ``options``; its output."""
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(REPO / "tests" / "schemathesis.toml"),
            "run",
            server.base + "/openapi.json",
            "--max-examples",
            "200",
            "--seed",
            "20261123",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert re.search(r"(\d+) generated, \1 passed", result.stdout), result.stdout[-2000:]
    return result.stdout


def test_schemathesis_finds_nothing_wrong_with_the_api(server):
    """Requests generated from /openapi.json, valid and not: no 5xx, no undocumented status,
    no schema-valid request refused, every response as documented."""
    schemathesis(
        server,
        # They change the documents the session's other tests rely on; tested in
        # test_documents_while_serving and, refusals case by case, in test_http_documents.py.
        "--exclude-name",
        "POST /api/documents",
        "--exclude-name",
        "DELETE /api/documents/{document_id}",
        "--exclude-path-regex",
        "^/v1/",
    )


def test_schemathesis_on_the_openai_routes(server):
    """The same on /v1/, but for one check: OpenAI answers a schema-valid request for an unknown
    model (any string) with 404, and so do we (test_openai_api.py)."""
    schemathesis(server, "--include-path-regex", "^/v1/", "--exclude-checks", "positive_data_acceptance")


def raw_request(server, data: bytes) -> bytes:
    """The server's whole reply to ``data`` sent as is on one connection."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(data)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return reply


def test_smuggling_shapes_and_host_headers_get_no_purchase(server):
    both = raw_request(
        server,
        b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    )
    # Refused whole by llhttp (rag/http/protocol.py answers it), never read as two requests.
    assert both.startswith(b"HTTP/1.1 400 ") and both.count(b"HTTP/1.1 ") == 1 and b"connection: close" in both
    slash = raw_request(server, b"GET /healthz/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert slash.startswith(b"HTTP/1.1 404 ") and b"location" not in slash.lower(), "no redirect built from Host"
    # DNS rebinding: on the loopback, `rag serve` answers only the machine's own names by default.
    for host in (b"evil.example", b"127.0.0.1.evil.example"):
        other = raw_request(server, b"GET /api/documents HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        assert other.startswith(b"HTTP/1.1 400 ") and host not in other
    assert call(server.base, "/healthz")[0] == 200


def test_allowed_hosts_refuse_other_host_headers(tmp_path):
    from .conftest import running_server

    with running_server(tmp_path, RAG_ALLOWED_HOSTS="127.0.0.1, docs.example") as server:
        assert call(server.base, "/healthz")[0] == 200
        named = raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: docs.example\r\nConnection: close\r\n\r\n")
        assert named.startswith(b"HTTP/1.1 200 ")
        other = raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert other.startswith(b"HTTP/1.1 400 ")
