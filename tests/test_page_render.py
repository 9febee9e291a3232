"""The page as the server renders it (no browser, no model): getting ready calmly with the step
it is on, a real failure as an error, and an answer's markers, language note, placeholder and
anchor without JavaScript."""

import re
import threading

from fastapi.testclient import TestClient

from rag.http.app import create_app

from .conftest import fake_engine, ready_client, wait_ready


def markers(html: str) -> list[str]:
    """The answer's marker numbers as the page shows them, in order."""
    latest = html[html.index('id="latest"') :]
    return re.findall(r'class="cite"[^>]*>\[(\d+)\]</a>', latest[: latest.index("</li>\n")])


def test_getting_ready_says_the_step_calmly_then_becomes_the_chat(tmp_path):
    engine = fake_engine(tmp_path / "index")
    release = threading.Event()
    build = engine.build_index

    def slow_build(*args, **kwargs):
        release.wait(30)  # held here, on the start-up thread, while the test looks at the page
        return build(*args, **kwargs)

    engine.build_index = slow_build
    app = create_app(engine)
    with TestClient(app) as client:
        try:
            step = "building the index from seeds/ (first run)"
            for _ in range(500):
                if app.state.runtime.step == step:
                    break
                threading.Event().wait(0.02)
            assert client.get("/readyz").json() == {"detail": f"getting ready: {step}"}
            page = client.get("/")
            assert page.status_code == 503 and page.headers["Retry-After"] == "5"
            assert 'class="getting-ready" role="status"' in page.text and f">{step}</span>" in page.text
            assert 'class="turn error"' not in page.text and "Error" not in page.text
            assert '<meta http-equiv="refresh" content="5; url=/">' in page.text, "without script, it looks again"
            assert re.search(r'<textarea id="question"[^>]*placeholder="You can ask once[^"]*" disabled>', page.text)
        finally:
            release.set()
        wait_ready(client)
        page = client.get("/")
        assert page.status_code == 200 and "getting-ready" not in page.text and "refresh" not in page.text
        assert 'placeholder="Ask a question about the documents"' in page.text


def test_a_server_that_cannot_start_still_shows_an_error(tmp_path):
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    (index_dir / "CURRENT").write_text("gen-gone\n")
    app = create_app(fake_engine(index_dir), on_fatal=lambda: None)
    with TestClient(app) as client:
        for _ in range(500):
            if app.state.runtime.failure:
                break
            threading.Event().wait(0.02)
        page = client.get("/")
        assert page.status_code == 503 and 'class="turn error"' in page.text and "names no build" in page.text
        assert "getting-ready" not in page.text and "refresh" not in page.text


def test_an_answer_without_script_numbers_its_markers_as_shown_and_says_why_it_is_in_french(tmp_path):
    with ready_client(fake_engine(tmp_path / "index")) as client:
        english = client.post("/", data={"question": "What did Putin demand?"})
        assert english.status_code == 200
        assert markers(english.text) == ["1", "2", "3"], "numbered in the order shown, from [1]"
        assert 'action="/#latest"' in english.text and english.text.count('id="latest"') == 1
        assert 'placeholder="Ask a follow-up, or something new"' in english.text
        note = re.search(r'<p class="language-note">([^<]*)</p>', english.text)
        assert note and "Quoted from the documents as written, in French" in note.group(1)
        assert "docs/generation.md" in note.group(1)
        assert client.post("/page/note", json={"question": "What did Putin demand?", "document": "x"}).json() == {
            "note": None
        }, "no document, no note"
        french = client.post("/", data={"question": "Qui a rencontré Vladimir Poutine ?"})
        assert markers(french.text)[0] == "1" and "language-note" not in french.text
        listed = client.get("/page/documents").json()["documents"][0]["id"]
        asked = {"question": "What did Putin demand?", "document": listed}
        assert client.post("/page/note", json=asked).json()["note"] == note.group(1).replace("&#39;", "'")


def test_a_configured_llm_server_means_no_note(tmp_path):
    with ready_client(fake_engine(tmp_path / "index", llm_url="http://127.0.0.1:9/v1", llm_model="smollm2")) as client:
        listed = client.get("/page/documents").json()["documents"][0]["id"]
        asked = {"question": "What did Putin demand?", "document": listed}
        assert client.post("/page/note", json=asked).json() == {"note": None}
