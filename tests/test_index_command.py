"""`rag index` end to end: the real command, the real model, the real index on disk."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rag.config import Settings
from rag.engine import Engine
from rag.errors import IndexInvalidError
from rag.store import CURRENT, load_index

from .conftest import REPO, SEEDS, model_cache_dir


def run_rag(*args, index_dir, cwd=None, timeout=600, **settings):
    env = {
        **os.environ,
        "RAG_INDEX_DIR": str(index_dir),
        "RAG_SEEDS_DIR": str(SEEDS),
        "RAG_CACHE_DIR": str(model_cache_dir()),
        "HF_HUB_OFFLINE": "1",
        **settings,
    }
    return subprocess.run(
        [sys.executable, "-m", "rag", *args], cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def snapshot(index_dir):
    """Every file of the index with its bytes, to show a failed command changed nothing."""
    return {p.relative_to(index_dir): p.read_bytes() for p in sorted(index_dir.rglob("*")) if p.is_file()}


@pytest.fixture
def fake_index(tmp_path, fake_embedder):
    settings = Settings(embedding_model="fake", index_dir=tmp_path / "index", seeds_dir=SEEDS)
    Engine(settings, embedder=fake_embedder).build_index()
    return settings.index_dir


def test_help_is_instant_and_lists_index():
    result = subprocess.run([sys.executable, "-m", "rag", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and all(c in result.stdout for c in ("index", "ask", "serve", "eval"))
    result = subprocess.run([sys.executable, "-m", "rag"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "COMMAND" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "choices"),
    [("RAG_BACKEND", "tensorflow", "onnx, torch"), ("RAG_INDEX_TYPE", "ivf", "auto, flat, hnsw")],
)
def test_a_bad_setting_is_named_in_one_line(tmp_path, name, value, choices):
    result = run_rag("index", index_dir=tmp_path / "index", **{name: value})
    assert result.returncode == 1
    assert result.stderr == f"rag: error: {name} must be one of {choices}, not {value!r}\n"
    assert not (tmp_path / "index").exists()


@pytest.mark.model
def test_rag_index_builds_the_article_and_prints_its_summary(tmp_path):
    index_dir = tmp_path / "index"
    result = run_rag("index", index_dir=index_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = re.fullmatch(
        r"Indexed 1 document, 26 sentences with intfloat/multilingual-e5-small in (\d+\.\d) s into (.+)\n",
        result.stdout,
    )
    assert summary, result.stdout
    assert "100%" in result.stderr, "a progress bar is shown while embedding"
    contents = load_index(index_dir)
    assert contents.manifest["model"]["name"] == "intfloat/multilingual-e5-small"
    assert contents.manifest["model"]["prompts"] == {"query": "query: ", "document": "passage: "}
    assert contents.vectors.ntotal == 26 and contents.vectors.d == 384
    for sentence in contents.sentences:
        text = contents.sentence_text(sentence)
        assert text == contents.documents[sentence.document].text[sentence.start : sentence.end] and text.strip()


@pytest.mark.model
def test_two_builds_of_the_same_seeds_are_identical(tmp_path, embedder):
    def build(name):
        settings = Settings(index_dir=tmp_path / name, seeds_dir=SEEDS, cache_dir=model_cache_dir())
        Engine(settings, embedder=embedder).build_index()
        return load_index(settings.index_dir)

    first, second = build("a"), build("b")
    assert first.sentences == second.sentences
    assert first.documents == second.documents
    n = first.vectors.ntotal
    assert np.array_equal(first.vectors.reconstruct_n(0, n), second.vectors.reconstruct_n(0, n))
    assert first.manifest["files"] == second.manifest["files"], "the same bytes on disk"


@pytest.mark.model
def test_index_vectors_find_the_sentence_a_question_asks_about(tmp_path, embedder):
    settings = Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS, cache_dir=model_cache_dir())
    engine = Engine(settings, embedder=embedder)
    engine.build_index()
    contents = engine.load_index()
    _, rows = contents.vectors.search(embedder.encode_queries(["Qui a rencontré Vladimir Poutine ?"]).vectors, 1)
    assert "a rencontré hier le président russe" in contents.sentence_text(contents.sentences[rows[0][0]])


def test_an_index_built_with_another_model_is_refused(fake_index):
    engine = Engine(Settings(index_dir=fake_index, seeds_dir=SEEDS))
    with pytest.raises(IndexInvalidError, match=r"built with fake.*rag index"):
        engine.load_index()


def test_an_index_built_with_another_backend_is_refused(fake_index):
    engine = Engine(Settings(embedding_model="fake", index_dir=fake_index, seeds_dir=SEEDS, backend="onnx"))
    with pytest.raises(IndexInvalidError, match=r"built with the fake backend.*onnx \(RAG_BACKEND\).*rag index"):
        engine.load_index()


def write(folder, name, data):
    (folder / name).write_bytes(data)
    return folder / name


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.txt", "no such file or folder"),
        (lambda d: d, r"no \.txt or \.md documents"),
        (lambda d: write(d, "empty.txt", b""), "is empty"),
        (lambda d: write(d, "latin1.txt", b"caf\xe9"), "not UTF-8"),
        (lambda d: write(d, "a.pdf", b"%PDF"), r"not a \.txt or \.md"),
    ],
    ids=["missing-path", "empty-folder", "empty-file", "undecodable-file", "wrong-type"],
)
def test_bad_input_fails_clearly_and_leaves_the_index_as_it_was(tmp_path, fake_index, make, message):
    folder = tmp_path / "input"
    folder.mkdir()
    before = snapshot(fake_index)
    result = run_rag("index", str(make(folder)), index_dir=fake_index)
    assert result.returncode == 1
    assert re.search(message, result.stderr), result.stderr
    assert result.stderr.startswith("rag: error: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, "one line"
    assert snapshot(fake_index) == before


def test_a_bad_file_among_good_ones_is_skipped_and_said(tmp_path, fake_embedder):
    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "good.txt").write_text("Une phrase. Une autre phrase.", encoding="utf-8")
    (folder / "bad.txt").write_bytes(b"\xff\xfe")
    settings = Settings(embedding_model="fake", index_dir=tmp_path / "index", seeds_dir=SEEDS)
    report = Engine(settings, embedder=fake_embedder).build_index([folder])
    assert (report.documents, report.sentences) == (1, 2)
    assert [s.path for s in report.skipped] == [str(folder / "bad.txt")]
    assert (settings.index_dir / CURRENT).is_file()
