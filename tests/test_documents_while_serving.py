"""Documents changed while `rag serve` runs, with the real model: uploads over HTTP, `rag add`
and `rag remove` from the command line; answers change without a restart and only the new
document is embedded."""

import json
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import REPO, running_server
from .test_formats import HTML, MARKDOWN, write_pdf

pytestmark = pytest.mark.model

ARTICLE_ID = "000_8cb13a5d0c7818f1"
GLACIERS = "How much of their volume did Swiss glaciers lose in 2026?"


def ask(client, question):
    reply = client.post("/api/ask", json={"question": question})
    assert reply.status_code == 200, reply.text
    return reply.json()


def rag(server, *argv):
    return subprocess.run(
        [sys.executable, "-m", "rag", *argv], cwd=REPO, env=server.env, capture_output=True, text=True, timeout=300
    )


def wait_for(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.2)


def test_uploads_and_commands_change_answers_without_a_restart(tmp_path):
    pdf = write_pdf(tmp_path / "glaciers.pdf")
    with running_server(tmp_path) as server, httpx.Client(base_url=server.base, timeout=120) as client:
        assert ask(client, GLACIERS)["abstained"], "not in the bundled article"
        for name, data in [
            ("bees.md", MARKDOWN.encode()),
            ("page.html", HTML.encode()),
            ("glaciers.pdf", pdf.read_bytes()),
        ]:
            reply = client.post("/api/documents", files={"file": (name, data)})
            assert reply.status_code == 201, reply.text
        answer = ask(client, GLACIERS)
        assert not answer["abstained"] and answer["citations"][0]["document"] == "glaciers"
        assert "three percent" in answer["citations"][0]["text"]
        broken = client.post("/api/documents", files={"file": ("bad.pdf", b"%PDF-1.4 nothing")})
        assert broken.status_code == 422 and "not a readable PDF" in broken.json()["detail"]
        assert len(client.get("/api/documents").json()["documents"]) == 4, "nothing lost"

        removed = rag(server, "remove", "glaciers")
        assert removed.returncode == 0 and removed.stdout.startswith("Removed glaciers ("), removed.stderr
        wait_for(lambda: ask(client, GLACIERS)["abstained"])

        notes = tmp_path / "notes.md"
        notes.write_text("# Notes\n\nThe committee meets every Tuesday in room 12.", encoding="utf-8")
        added = rag(server, "add", "-q", str(notes))
        assert added.returncode == 0, added.stderr
        assert "Embedded 1;" in added.stdout, "only the new document's sentence"
        # Cited first, confidently or as the closest passage: the answer's outcome is the calibration's.
        wait_for(
            lambda: [c["document"] for c in ask(client, "When does the committee meet?")["citations"]][:1] == ["notes"]
        )
        listed = json.loads(rag(server, "documents", "--json").stdout)["documents"]
        assert [d["id"] for d in listed] == [ARTICLE_ID, "bees", "page", "notes"]
