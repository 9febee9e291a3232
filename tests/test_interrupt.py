"""Ctrl-C (SIGINT to the process group, as a terminal sends it) stops `rag index` and `rag serve`
at once, in one line and exit 130, even with work in flight that would take a minute: a batch
being embedded, an upload being indexed. Each runs in a new process on a fake embedder that
sleeps on a text holding "slow". No model."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from .conftest import REPO, SEEDS, free_port

SLOW_RAG = """
import sys, time
from rag.embed.base import BatchedEmbedder
from rag.embed.factory import EMBEDDERS
from tests.conftest import FakeEmbedder

class Slow(BatchedEmbedder, FakeEmbedder):
    batch_size, workers = 2, 2  # the models' batching: batches on worker threads

    def _encode_batch(self, texts, prompt, query):
        if any("slow" in text for text in texts):
            print("embedding", file=sys.stderr, flush=True)
            time.sleep(60)
        encoded = FakeEmbedder._encode(self, texts)
        return encoded.vectors, encoded.tokens

EMBEDDERS["fake"] = lambda settings: Slow()
from rag.cli import run
run()
"""


def start(tmp_path, *argv) -> subprocess.Popen:
    """`rag ARGV...` on the slow fake embedder; its output goes to tmp_path / "rag.log"."""
    env = {
        **os.environ,
        "RAG_BACKEND": "fake",
        "RAG_EMBEDDING_MODEL": "fake",
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "RAG_SEEDS_DIR": str(SEEDS),
    }
    with open(tmp_path / "rag.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-c", SLOW_RAG, *argv],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, signalled as a whole as Ctrl-C does
        )


def wait_for(tmp_path, process, text, seconds=60):
    deadline = time.monotonic() + seconds
    while text not in (output := (tmp_path / "rag.log").read_text()):
        assert process.poll() is None and time.monotonic() < deadline, output[-2000:]
        time.sleep(0.05)


def interrupt(tmp_path, process) -> str:
    """Ctrl-C, then the output once the process ended; still running after 10 s fails the test
    (the work in flight takes a minute)."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError("running 10 s after Ctrl-C:\n" + (tmp_path / "rag.log").read_text()[-2000:]) from None
    output = (tmp_path / "rag.log").read_text()
    assert process.returncode == 130 and "Traceback" not in output, output[-2000:]
    assert output.endswith("rag: interrupted\n"), output[-2000:]
    return output


def test_ctrl_c_stops_rag_index_while_a_batch_is_embedded(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A first sentence. This one is slow to read. A third one. And a fourth.")
    process = start(tmp_path, "index", "-q", str(docs))
    wait_for(tmp_path, process, "embedding")
    interrupt(tmp_path, process)
    assert not (tmp_path / "index" / "CURRENT").exists(), "nothing half-built went live"


def upload(base: str, name: str, text: str) -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
    )
    request = urllib.request.Request(
        base + "/api/documents",
        data=body.encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with contextlib.suppress(OSError):  # the server went away with the upload in flight, as the test wants
        urllib.request.urlopen(request, timeout=60).close()


def test_ctrl_c_stops_rag_serve_with_an_upload_in_flight(tmp_path):
    port = free_port()
    process = start(tmp_path, "serve", "--port", str(port))
    wait_for(tmp_path, process, "rag: ready")
    sending = threading.Thread(
        target=upload, args=(f"http://127.0.0.1:{port}", "slow.txt", "This one is slow to embed. It has two sentences.")
    )
    sending.start()
    wait_for(tmp_path, process, "embedding")
    interrupt(tmp_path, process)
    sending.join(timeout=60)
    assert "gen-000002" not in (tmp_path / "index" / "CURRENT").read_text(), "the upload never went live"
