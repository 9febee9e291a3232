"""GET, POST and DELETE /api/documents in process (TestClient, fake embedder): uploads of each
type, refusals with nothing lost, answers that change without a restart. No model."""

import pytest

from .conftest import fake_engine, ready_client
from .test_formats import HTML, MARKDOWN, write_pdf

ARTICLE_ID = "000_8cb13a5d0c7818f1"


@pytest.fixture
def app_client(tmp_path):
    def start(**settings):
        return ready_client(fake_engine(tmp_path / "index", **settings))

    return start


@pytest.fixture
def client(app_client):
    with app_client() as client:
        yield client


def listed(client):
    reply = client.get("/api/documents")
    assert reply.status_code == 200
    return {d["id"]: d for d in reply.json()["documents"]}


def test_documents_are_listed_with_their_identity(client):
    assert listed(client) == {
        ARTICLE_ID: {
            "id": ARTICLE_ID,
            "title": listed(client)[ARTICLE_ID]["title"],
            "language": "fr",
            "format": "text",
            "sentences": 26,
            "sha256": listed(client)[ARTICLE_ID]["sha256"],
        }
    }


def test_uploads_of_each_type_are_answered_from_at_once_and_deleted_again(client, tmp_path):
    pdf = write_pdf(tmp_path / "glaciers.pdf").read_bytes()
    for name, data, kind in [
        ("bees.md", MARKDOWN.encode(), "text/markdown"),
        ("page.html", HTML.encode(), "text/html"),
        ("glaciers.pdf", pdf, "application/pdf"),
    ]:
        reply = client.post("/api/documents", files={"file": (name, data, kind)})
        assert reply.status_code == 201, reply.text
        body = reply.json()
        assert body["id"] == name.rsplit(".", 1)[0] and body["language"] == "en" and body["sentences"] > 0
    assert set(listed(client)) == {ARTICLE_ID, "bees", "page", "glaciers"}
    question = {"question": "How much volume did Swiss glaciers lose in 2026?"}
    cited = client.post("/api/ask", json=question).json()["citations"]
    assert cited[0]["document"] == "glaciers", "the fake embedder matches the words"
    stored = client.get("/api/documents/glaciers").json()["text"]
    assert stored[cited[0]["start"] : cited[0]["end"]] == cited[0]["text"]

    assert client.delete("/api/documents/glaciers").status_code == 204
    assert "glaciers" not in listed(client)
    assert all(c["document"] != "glaciers" for c in client.post("/api/ask", json=question).json()["citations"])
    assert client.delete("/api/documents/glaciers").status_code == 404


@pytest.mark.parametrize(
    ("files", "data", "status", "detail"),
    [
        ({"file": ("notes.odt", b"PK\x03\x04", "application/octet-stream")}, None, 415, "is not a .txt"),
        ({"file": ("latin1.txt", b"caf\xe9", "text/plain")}, None, 422, "is not UTF-8 text"),
        ({"file": ("empty.md", b"", "text/markdown")}, None, 422, "is empty"),
        ({"file": ("broken.pdf", b"%PDF-1.4 nothing", "application/pdf")}, None, 422, "is not a readable PDF"),
        ({"file": ("", b"text", "text/plain")}, None, 422, ""),
        ({"file": (".hidden.txt", b"text", "text/plain")}, None, 422, "needs a file name"),
        ({"file": ("a.txt", b"Une phrase.", "text/plain")}, {"language": "french"}, 422, "not a language code"),
        (None, {"nothing": "here"}, 422, "file"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_lost(client, files, data, status, detail):
    before = listed(client)
    generation = client.app.state.runtime.engine.index.generation
    reply = client.post("/api/documents", files=files, data=data)
    assert reply.status_code == status, reply.text
    assert detail in reply.json()["detail"]
    index_dir = client.app.state.runtime.engine.settings.index_dir
    assert str(index_dir) not in reply.json()["detail"], "where the server keeps files is its own"
    if detail.startswith("is "):
        assert reply.json()["detail"].startswith(files["file"][0] + " " + detail), "named as uploaded"
    assert listed(client) == before
    assert client.app.state.runtime.engine.index.generation == generation
    uploads = client.app.state.runtime.engine.settings.index_dir / "uploads"
    assert not uploads.exists() or not any(uploads.rglob("*.*")), "a refused file is not kept"


def test_an_upload_over_the_limit_is_refused_before_it_is_read(app_client):
    with app_client(max_upload_mb=1) as client:
        reply = client.post("/api/documents", files={"file": ("big.txt", b"a" * (1024 * 1024 + 20_000), "text/plain")})
        assert reply.status_code == 413 and reply.json() == {"detail": "the body is over 1 MiB"}
        assert client.post("/api/ask", json={"question": "x" * 70_000}).status_code == 413, "other routes keep 64 KiB"


def test_documents_need_the_api_key_when_one_is_set(app_client):
    key = "s3cret-key-for-the-tests"  # RAG_API_KEY: at least 16 characters
    with app_client(api_key=key) as client:
        assert client.get("/api/documents").status_code == 401
        assert client.post("/api/documents", files={"file": ("a.txt", b"Une phrase.", "text/plain")}).status_code == 401
        assert client.delete(f"/api/documents/{ARTICLE_ID}").status_code == 401
        assert client.get("/api/documents", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_the_last_document_cannot_be_deleted(client):
    reply = client.delete(f"/api/documents/{ARTICLE_ID}")
    assert reply.status_code == 422 and "would leave the index empty" in reply.json()["detail"]
    assert set(listed(client)) == {ARTICLE_ID}
