"""Issue 31, access: sign-out ends the session on the server, wrong keys are throttled per
client address, and a short RAG_API_KEY is refused at start-up."""

import pytest
from fastapi.testclient import TestClient

from rag.http import access
from rag.settings import Settings

from .conftest import fake_engine, rag, ready_client

KEY = "a-key-of-24-characters.."
GOOD = {"question": "Who met Putin?"}


@pytest.fixture
def guarded(tmp_path):
    with ready_client(fake_engine(tmp_path / "index", api_key=KEY)) as client:
        yield client


def signed_in(client) -> str:
    reply = client.post("/signin", data={"key": KEY}, follow_redirects=False)
    assert reply.status_code == 303, reply.text
    return client.cookies[access.COOKIE]


def with_cookie(client, token):
    client.cookies.clear()
    client.cookies.set(access.COOKIE, token)
    return client


def test_sign_out_ends_the_session_on_the_server(guarded):
    token = signed_in(guarded)
    other = signed_in(guarded)  # another browser's session
    assert with_cookie(guarded, token).get("/").status_code == 200
    assert guarded.post("/signout", follow_redirects=False).status_code == 303

    # The old cookie, kept by a client that ignores the deletion, opens nothing any more.
    with_cookie(guarded, token)
    reply = guarded.get("/")
    assert reply.status_code == 401 and 'name="key"' in reply.text
    assert guarded.post("/api/ask", json=GOOD).status_code == 401
    assert with_cookie(guarded, other).get("/").status_code == 200, "only that session ended"


def test_sessions_are_bounded_the_oldest_ended_first():
    sessions = access.Sessions(limit=2)
    first, second, third = (sessions.issue() for _ in range(3))
    assert not sessions.valid(first) and sessions.valid(second) and sessions.valid(third)
    assert len({first, second, third}) == 3 and len(first) >= 43, "random ids: secrets.token_urlsafe(32)"
    assert not sessions.valid("made-up") and not sessions.valid(None)


def test_wrong_keys_at_sign_in_are_throttled_per_address(guarded):
    for _ in range(5):
        reply = guarded.post("/signin", data={"key": "wrong"}, follow_redirects=False)
        assert reply.status_code == 401 and "That key is not right." in reply.text
    # The sixth try is refused, the right key too: guessing on gains nothing.
    reply = guarded.post("/signin", data={"key": KEY}, follow_redirects=False)
    assert reply.status_code == 429 and "set-cookie" not in reply.headers
    wait = int(reply.headers["Retry-After"])
    assert 1 <= wait <= 60 and f"try again in {wait} seconds" in reply.text
    assert guarded.get("/").status_code == 429, "the page says so too"

    # Another address signs in as usual.
    elsewhere = TestClient(guarded.app, client=("192.0.2.7", 50000))
    assert elsewhere.post("/signin", data={"key": KEY}, follow_redirects=False).status_code == 303


def test_wrong_api_keys_are_throttled_per_address(guarded):
    for _ in range(6):  # no key at all is no guess
        assert guarded.post("/api/ask", json=GOOD).status_code == 401
    assert guarded.post("/api/ask", json=GOOD, headers={"X-API-Key": KEY}).status_code == 200
    for _ in range(5):
        assert guarded.post("/api/ask", json=GOOD, headers={"Authorization": "Bearer wrong"}).status_code == 401

    reply = guarded.post("/api/ask", json=GOOD, headers={"X-API-Key": KEY})
    assert reply.status_code == 429 and 1 <= int(reply.headers["Retry-After"]) <= 60
    assert "too many wrong keys" in reply.json()["detail"]
    reply = guarded.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert reply.status_code == 429 and reply.json()["error"]["code"] == "rate_limit_exceeded"
    assert guarded.post("/signin", data={"key": KEY}, follow_redirects=False).status_code == 429, "one count"

    elsewhere = TestClient(guarded.app, client=("192.0.2.7", 50000))
    assert elsewhere.post("/api/ask", json=GOOD, headers={"X-API-Key": KEY}).status_code == 200


def test_a_signed_in_browser_is_not_throttled_by_its_address(guarded):
    token = signed_in(guarded)
    for _ in range(5):
        guarded.post("/signin", data={"key": "wrong"}, follow_redirects=False)
    assert with_cookie(guarded, token).get("/").status_code == 200, "its session is no guess"


def test_a_short_key_is_refused_at_start(monkeypatch, capsys, tmp_path, fake_backend):
    import uvicorn

    def served(self):
        raise AssertionError("served with a short key")

    monkeypatch.setattr(uvicorn.Server, "run", served)
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_API_KEY", "s3cret")
    code, _, err = rag(capsys, "serve")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "RAG_API_KEY must be at least 16 characters" in err
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in err

    monkeypatch.setenv("RAG_API_KEY", "x" * 16)
    assert Settings.from_env().api_key == "x" * 16
