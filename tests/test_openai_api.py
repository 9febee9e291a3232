"""The OpenAI-compatible API as its users call it: the official `openai` client. In process on
the fake embedder (TestClient as the client's transport), and against a real `rag serve` with
the real model (marked `model`)."""

import json

import httpx
import openai
import pytest

from .conftest import fake_engine, ready_client, running_server

QUESTION = "Qui a rencontré Vladimir Poutine ?"


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    with ready_client(fake_engine(tmp_path_factory.mktemp("openai") / "index")) as client:
        yield client


@pytest.fixture
def client(app_client):
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=app_client, max_retries=0)


def test_a_completion_is_the_answer_with_its_citations(client, app_client):
    completion = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}])
    expected = app_client.post("/api/ask", json={"question": QUESTION}).json()
    assert (
        completion.object == "chat.completion" and completion.model == "rag" and completion.id.startswith("chatcmpl-")
    )
    (choice,) = completion.choices
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content == expected["answer"]
    assert choice.message.citations == expected["citations"], "the extra field holds /api/ask's citations"
    assert (choice.message.mode, choice.message.reason) == ("extractive", None)
    assert (choice.message.abstained, choice.message.confidence, choice.message.outcome) == (
        expected["abstained"],
        expected["confidence"],
        expected["outcome"],
    ), "and /api/ask's abstained, confidence and outcome"
    assert (choice.message.resolved_question, choice.message.history_cut) == (QUESTION, 0)


def test_a_streamed_completion_joins_into_the_same_content(client):
    plain = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}])
    chunks = list(
        client.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}], stream=True)
    )
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1 and len(chunks) > 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == plain.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.citations == plain.choices[0].message.citations
    assert (chunks[-1].choices[0].delta.mode, chunks[-1].choices[0].delta.reason) == ("extractive", None)
    last, message = chunks[-1].choices[0].delta, plain.choices[0].message
    assert (last.confidence, last.outcome) == (message.confidence, message.outcome)
    assert (last.resolved_question, last.history_cut) == (message.resolved_question, message.history_cut)


def test_earlier_messages_are_the_history(client, app_client):
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Qui a rencontré Vladimir Poutine ?"},
        {"role": "assistant", "content": "Steve Witkoff [1]"},
        {"role": "user", "content": [{"type": "text", "text": "Où ?"}]},
    ]
    completion = client.chat.completions.create(model="rag", messages=messages, temperature=0.2, max_tokens=50)
    history = [
        {"role": "user", "content": "Qui a rencontré Vladimir Poutine ?"},
        {"role": "assistant", "content": "Steve Witkoff [1]"},
    ]
    expected = app_client.post("/api/ask", json={"question": "Où ?", "history": history}).json()
    assert completion.choices[0].message.content == expected["answer"]


def test_a_conversation_that_grew_is_answered_and_the_cut_said(client, app_client):
    """25 earlier messages (and a system one, ignored): answered from the last 20 turns, the cut
    in the message (the last chunk, streamed) and the X-History-Cut header."""
    earlier = [{"role": ("user", "assistant")[i % 2], "content": f"tour {i} à Moscou"} for i in range(25)]
    messages = [{"role": "system", "content": "Be brief."}, *earlier, {"role": "user", "content": QUESTION}]
    raw = client.chat.completions.with_raw_response.create(model="rag", messages=messages)
    message = raw.parse().choices[0].message
    assert raw.headers["X-History-Cut"] == "5" and message.history_cut == 5
    expected = app_client.post("/api/ask", json={"question": QUESTION, "history": earlier[5:]}).json()
    assert (message.content, message.citations) == (expected["answer"], expected["citations"])
    assert message.resolved_question == expected["resolved_question"]
    raw = client.chat.completions.with_raw_response.create(model="rag", messages=messages, stream=True)
    assert raw.headers["X-History-Cut"] == "5"
    assert list(raw.parse())[-1].choices[0].delta.history_cut == 5
    short = client.chat.completions.with_raw_response.create(model="rag", messages=messages[-3:])
    assert "X-History-Cut" not in short.headers and short.parse().choices[0].message.history_cut == 0


def test_models_lists_rag(client):
    assert [m.id for m in client.models.list()] == ["rag"]
    assert client.models.retrieve("rag").owned_by == "rag"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}, openai.NotFoundError, "does not exist"),
        ({"model": "rag", "messages": []}, openai.BadRequestError, "messages"),
        ({"model": "rag", "messages": [{"role": "assistant", "content": "x"}]}, openai.BadRequestError, "last message"),
        ({"model": "rag", "messages": [{"role": "user", "content": "x" * 1001}]}, openai.BadRequestError, "1000"),
        ({"model": "rag", "messages": [{"role": "user", "content": "  "}]}, openai.BadRequestError, "empty"),
        ({"model": "rag", "messages": [{"role": "wizard", "content": "x"}]}, openai.BadRequestError, "role"),
        (
            {"model": "rag", "messages": [{"role": "user", "content": "x"}], "n": 2},
            openai.BadRequestError,
            "n must be 1",
        ),
    ],
)
def test_bad_requests_get_openai_errors(client, kwargs, error, words):
    with pytest.raises(error) as refused:
        client.chat.completions.create(**kwargs)
    body = refused.value.body
    assert words in body["message"] and body["type"] == "invalid_request_error", body


def test_a_body_that_is_not_json_gets_an_openai_error(app_client):
    reply = app_client.post("/v1/chat/completions", content=b"{", headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.model
def test_the_official_client_against_a_real_server(tmp_path):
    key = "s3cret-key-for-the-tests"  # RAG_API_KEY: at least 16 characters
    with running_server(tmp_path, RAG_API_KEY=key) as server:
        client = openai.OpenAI(base_url=server.base + "/v1", api_key=key, max_retries=0, timeout=120)
        first = client.chat.completions.create(
            model="rag", messages=[{"role": "user", "content": "Who did Steve Witkoff meet yesterday?"}]
        )
        assert "Poutine" in first.choices[0].message.content
        messages = [
            {"role": "user", "content": "Who did Steve Witkoff meet yesterday?"},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "What did they discuss?"},
        ]
        follow_up = client.chat.completions.create(model="rag", messages=messages)
        cited = follow_up.choices[0].message.citations
        assert "pour discuter de l’Ukraine et d’autres questions" in cited[0]["text"], "resolved by the history"
        streamed = client.chat.completions.create(model="rag", messages=messages, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in streamed) == follow_up.choices[0].message.content
        with pytest.raises(openai.AuthenticationError) as refused:
            openai.OpenAI(base_url=server.base + "/v1", api_key="wrong", max_retries=0).models.list()
        assert refused.value.body["code"] == "invalid_api_key"
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="rag", messages=[{"role": "user", "content": ""}])
        raw = httpx.post(
            server.base + "/v1/chat/completions",
            json={"model": "rag", "messages": messages, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        lines = [line for line in raw.text.splitlines() if line]
        assert lines[-1] == "data: [DONE]" and raw.headers["content-type"].startswith("text/event-stream")
        assert all(line.startswith("data: ") for line in lines)
        assert json.loads(lines[0][len("data: ") :])["object"] == "chat.completion.chunk"
