"""Shared fixtures. The real default model is loaded once per test session."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

# Set before anything imports huggingface_hub: no test may reach for a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path

import numpy as np
import pytest

from rag.cli import main
from rag.embed.base import Batch, Encoded
from rag.settings import DEFAULT_MODEL, Settings

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
ARTICLE = SEEDS / "000_8cb13a5d0c7818f1.txt"


def model_cache_dir() -> Path:
    """Where tests keep the built default model: the user's cache, as the product does,
    unless RAG_CACHE_DIR says otherwise. Built once, reused by later sessions."""
    return Settings.from_env().cache_dir


@pytest.fixture(scope="session")
def embedder():
    """The default embedder, as the product runs it: the int8 ONNX export."""
    from rag.embed.factory import create_embedder

    return create_embedder(Settings(cache_dir=model_cache_dir()))


@pytest.fixture(scope="session")
def torch_embedder():
    """The same model on sentence-transformers and torch: the export's reference."""
    from rag.embed.torch_embedder import TorchEmbedder

    return TorchEmbedder(DEFAULT_MODEL, model_cache_dir())


class FakeEmbedder:
    """Deterministic bag-of-characters vectors, one token per word: fast, no model, for unit
    tests only."""

    dimension = 16
    token_dimension = 16
    token_layers = (1,)
    backend = "fake"
    model_name = "fake"

    def __init__(self):
        self.prompts = {"query": "", "document": ""}

    def _vectors(self, texts):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for char in text:
                out[row, ord(char) % self.dimension] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _encode(self, texts):
        return Encoded(vectors=self._vectors(texts), tokens=[self._vectors(text.split()) for text in texts])

    def encode_passages(self, texts, progress=False):
        return self._encode(texts)

    def passage_batches(self, texts, progress=False):
        for start in range(0, len(texts), 8):
            rows = list(range(start, min(start + 8, len(texts))))
            encoded = self._encode([texts[row] for row in rows])
            yield Batch(rows, encoded.vectors, encoded.tokens)

    def encode_queries(self, texts):
        return self._encode(texts)

    def token_ids(self, texts):
        return [[ord(word[0]) for word in text.split()] for text in texts]


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def fake_backend(monkeypatch):
    """RAG_BACKEND=fake and RAG_EMBEDDING_MODEL=fake give the fake embedder, so that the command
    line and the server run in process without a model."""
    from rag.embed.factory import EMBEDDERS

    monkeypatch.setitem(EMBEDDERS, "fake", lambda settings: FakeEmbedder())
    monkeypatch.setenv("RAG_BACKEND", "fake")
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake")
    monkeypatch.setenv("RAG_SEEDS_DIR", str(SEEDS))


@pytest.fixture(scope="session")
def seeds_engine(tmp_path_factory, embedder):
    """An engine on the bundled article with the real default model, built once per session."""
    from rag.engine import Engine

    settings = Settings(index_dir=tmp_path_factory.mktemp("seeds-index"), seeds_dir=SEEDS, cache_dir=model_cache_dir())
    engine = Engine(settings, embedder=embedder)
    engine.build_index()
    return engine


def retrain(script: str, out: Path) -> dict:
    """Run training/SCRIPT with --out OUT and return what it wrote."""
    result = subprocess.run(
        [sys.executable, str(REPO / "training" / script), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture
def settings(tmp_path):
    return Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS, cache_dir=model_cache_dir())


def wait_ready(client, seconds=30):
    """Until the in-process app (a TestClient) says it is ready."""
    deadline = time.monotonic() + seconds
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving_app(app, port: int | None = None):
    """``app`` on a real uvicorn on 127.0.0.1 (``port``, else a free one), in a thread; its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def call(base, path, body=None, raw=None, method=None, timeout=60, headers=None, form=False):
    """(status, headers, parsed JSON or text) of one request."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        kind = "application/x-www-form-urlencoded" if form else "application/json"
        request.add_header("Content-Type", kind)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, reply_headers, payload = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, reply_headers, payload = error.code, error.headers, error.read()
    if reply_headers.get_content_type() == "application/json":
        return status, reply_headers, json.loads(payload)
    return status, reply_headers, payload.decode()


class Server:
    """A real `rag serve` subprocess on 127.0.0.1; its index lives in ``tmp_path / "index"``."""

    def __init__(self, tmp_path, **settings):
        self.index_dir = tmp_path / "index"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "RAG_INDEX_DIR": str(tmp_path / "index"),  # empty: serve builds it first
            "RAG_SEEDS_DIR": str(SEEDS),
            "RAG_CACHE_DIR": str(model_cache_dir()),
            "HF_HUB_OFFLINE": "1",
            **settings,  # RAG_* variables for this server
        }
        self.log = open(tmp_path / "server.log", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rag", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.readiness = []  # /readyz statuses seen while starting

    def wait_ready(self, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()[-3000:]
            try:
                status, _, _ = call(self.base, "/readyz", timeout=5)
            except OSError:
                time.sleep(0.2)
                continue
            self.readiness.append(status)
            if status == 200:
                return
            time.sleep(0.2)
        raise AssertionError("not ready in time\n" + self.output()[-3000:])

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@contextmanager
def running_server(tmp_path, **settings):
    """A `rag serve` that is ready to answer, stopped on leaving the block."""
    server = Server(tmp_path, **settings)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real `rag serve` for the session, started on an empty index folder."""
    with running_server(tmp_path_factory.mktemp("serve")) as server:
        yield server


def rag(capsys, *argv):
    """(exit code, stdout, stderr) of `rag ARGV...` run in this process."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(index_dir):
    """Every file of the index with its bytes, to show a failed command changed nothing."""
    return {p.relative_to(index_dir): p.read_bytes() for p in sorted(index_dir.rglob("*")) if p.is_file()}


@pytest.fixture
def index_dir(tmp_path, monkeypatch, fake_backend, capsys):
    """An index of the bundled article built by `rag index` with the fake embedder."""
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    code, _, err = rag(capsys, "index", "-q")
    assert code == 0, err
    return tmp_path / "index"


def fake_engine(index_dir, **settings):
    """An engine on the fake embedder, its seeds the bundled article."""
    from rag.engine import Engine

    return Engine(
        Settings(embedding_model="fake", backend="fake", index_dir=index_dir, seeds_dir=SEEDS, **settings),
        embedder=FakeEmbedder(),
    )


@contextmanager
def ready_client(engine, **options):
    """FastAPI's TestClient over the app for ``engine``, once it is ready to answer."""
    from fastapi.testclient import TestClient

    from rag.http.app import create_app

    with TestClient(create_app(engine), **options) as client:
        wait_ready(client)
        yield client
