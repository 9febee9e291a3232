"""The `rag` command line in process, through `main(argv)`, on the fake embedder: what it
prints, how it refuses, and that a refusal changes nothing. No model."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from rag.cli import main
from rag.settings import Settings
from rag.store import index as store
from rag.store.faiss_index import FaissStore
from rag.store.generations import CURRENT

from .conftest import REPO, rag, snapshot, wait_ready


def test_help_is_instant_and_lists_every_command():
    """A new process: `rag --help` imports none of the heavy libraries."""
    probe = (
        "import sys; from rag.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'faiss', 'fastapi', 'onnxruntime', 'sentence_transformers', 'numpy')\n"
        "print('loaded:', [m for m in heavy if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0 and all(c in result.stdout for c in ("index", "ask", "serve", "eval"))
    assert result.stdout.strip().endswith("loaded: []"), result.stdout[-300:]
    result = subprocess.run([sys.executable, "-m", "rag"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "COMMAND" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "choices"),
    [
        ("RAG_BACKEND", "tensorflow", "onnx, torch"),
        ("RAG_INDEX_TYPE", "ivf", "auto, flat, hnsw"),
        ("RAG_VECTOR_STORE", "elastic", "faiss, milvus"),
        ("RAG_ANSWERER", "oracle", "extractive"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(tmp_path, monkeypatch, capsys, name, value, choices):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv(name, value)
    code, out, err = rag(capsys, "index")
    assert (code, out) == (1, "")
    assert err == f"rag: error: {name} must be one of {choices}, not {value!r}\n"
    assert not (tmp_path / "index").exists()


def test_rag_index_prints_what_it_built(index_dir, capsys):
    code, out, _ = rag(capsys, "index", "-q")
    assert code == 0
    # The index the fixture built holds the same article: its vectors are kept, nothing is embedded.
    assert re.fullmatch(
        r"Indexed 1 document, 26 sentences with fake in \d+\.\d s into .+gen-000002-\S+\n"
        r"Embedded 0; 26 kept their vectors \(unchanged\)\n",
        out,
    ), out
    assert (index_dir / CURRENT).read_text().startswith("gen-000002-")


def write(folder, name, data):
    (folder / name).write_bytes(data)
    return folder / name


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.txt", "no such file or folder"),
        (lambda d: d, r"no \.txt, \.md, .* or \.docx documents found"),
        (lambda d: write(d, "empty.txt", b""), "is empty"),
        (lambda d: write(d, "latin1.txt", b"caf\xe9"), "not UTF-8"),
        (lambda d: write(d, "a.odt", b"PK"), r"a\.odt is not a \.txt, .* or \.docx file"),
        (lambda d: write(d, "a.pdf", b"%PDF"), r"a\.pdf is not a readable PDF"),
    ],
    ids=["missing-path", "empty-folder", "empty-file", "undecodable-file", "wrong-type", "broken-pdf"],
)
def test_bad_input_fails_clearly_and_leaves_the_index_as_it_was(tmp_path, index_dir, capsys, make, message):
    folder = tmp_path / "input"
    folder.mkdir()
    before = snapshot(index_dir)
    code, out, err = rag(capsys, "index", str(make(folder)))
    assert (code, out) == (1, "")
    assert re.search(message, err), err
    assert err.startswith("rag: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, "one line"
    assert snapshot(index_dir) == before


def test_a_bad_file_among_good_ones_is_skipped_and_named(tmp_path, index_dir, capsys):
    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "good.txt").write_text("Une phrase. Une autre phrase.", encoding="utf-8")
    (folder / "bad.txt").write_bytes(b"\xff\xfe")
    code, out, _ = rag(capsys, "index", "-q", str(folder))
    assert code == 0
    assert out.startswith("Indexed 1 document, 2 sentences")
    assert f"Skipped {folder / 'bad.txt'}: {folder / 'bad.txt'} is not UTF-8 text" in out
    assert [d for d in store.load_index(index_dir).documents] == ["good"]


def test_rag_ask_prints_for_a_person_and_json_exactly_as_the_api(index_dir, capsys, fake_backend):
    from fastapi.testclient import TestClient

    from rag.engine import Engine
    from rag.http.app import create_app

    question = "Qui a rencontré Vladimir Poutine ?"
    code, out, _ = rag(capsys, "ask", "--json", question)
    assert code == 0
    settings = Settings(embedding_model="fake", backend="fake", index_dir=index_dir)
    with TestClient(create_app(Engine(settings))) as client:
        wait_ready(client)
        api = client.post("/api/ask", json={"question": question})
    assert out == api.text + "\n"
    answer = json.loads(out)
    code, out, _ = rag(capsys, "ask", question)
    assert code == 0
    assert out.startswith(answer["answer"] + "\n")
    assert ("\nClosest passage" in out) is (answer["outcome"] == "closest")
    for citation in answer["citations"]:
        where = f"characters {citation['start']}-{citation['end']}"
        assert f"[{citation['id']}] {citation['document']}, sentence {citation['sentence']}, {where}" in out


@pytest.mark.parametrize("damage", ["truncate", "zero", "garbage"])
@pytest.mark.parametrize("name", store.files(FaissStore()))
def test_rag_ask_refuses_each_damaged_file_in_one_line(index_dir, capsys, name, damage):
    path = index_dir / (index_dir / CURRENT).read_text().strip() / name
    data = path.read_bytes()
    path.write_bytes(
        {
            "truncate": data[: len(data) // 2],
            "zero": bytes(len(data)),
            "garbage": np.random.default_rng(1).bytes(len(data)),
        }[damage]
    )
    code, out, err = rag(capsys, "ask", "What did Putin demand?")
    assert (code, out) == (1, "")
    assert err.startswith("rag: error: ") and err.count("\n") == 1
    assert name in err and "run `rag index` to rebuild it" in err


@pytest.mark.parametrize(("option", "bad"), [("--top-k", "x"), ("--top-k", "0")])
def test_rag_ask_refuses_a_bad_citation_limit(index_dir, capsys, option, bad):
    if bad == "x":
        with pytest.raises(SystemExit) as exited:
            main(["ask", option, bad, "Qui ?"])
        assert exited.value.code == 2 and "invalid int value" in capsys.readouterr().err
    else:
        code, _, err = rag(capsys, "ask", option, bad, "Qui ?")
        assert code == 1 and err == "rag: error: top_k must be from 1 to 10, not 0\n"


def test_rag_chat_answers_each_line_with_the_earlier_ones_as_history(index_dir, capsys, monkeypatch, fake_backend):
    import io

    from rag.answer.questions import Turn
    from rag.engine import Engine

    lines = ["Qui a rencontré Vladimir Poutine ?", "", "Et où ?", "x" * 1001, "Pourquoi ?"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, err = rag(capsys, "chat")
    assert code == 0 and "Ctrl-D leaves" in err
    assert "rag: the question has 1001 characters" in err, "a refused line says why and the chat goes on"
    engine = Engine(Settings(embedding_model="fake", backend="fake", index_dir=index_dir))
    history, expected = [], []
    for question in ("Qui a rencontré Vladimir Poutine ?", "Et où ?", "Pourquoi ?"):
        answer = engine.answer(question, history=history)
        expected.append(answer)
        history += [Turn("user", question), Turn("assistant", answer.answer)]
    for answer in expected:
        assert answer.answer in out
        for citation in answer.citations:
            assert f"[{citation.id}] {citation.document}, sentence {citation.sentence}, characters" in out
    assert out.count("> ") >= 5


def test_rag_chat_says_how_a_follow_up_was_read_and_what_a_long_conversation_cut(index_dir, capsys, monkeypatch):
    import dataclasses
    import io

    from rag.answering import Answering

    extract = Answering.extract

    def read_with_the_last_question(self, question, top_k=None, index=None, history=()):
        """A follow-up read as itself and the question before it (what the reading is, is not this test's)."""
        answer = extract(self, question, top_k, index, history)
        earlier = [turn.content for turn in history if turn.role == "user"][-1:]
        return dataclasses.replace(answer, resolved_question=" ".join([answer.question, *earlier]))

    monkeypatch.setattr(Answering, "extract", read_with_the_last_question)
    lines = ["Qui a rencontré Vladimir Poutine ?", "Et où ?", *(f"Question {i} ?" for i in range(10))]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, _ = rag(capsys, "chat")
    assert code == 0
    assert "\n(read as: Et où ? Qui a rencontré Vladimir Poutine ?)\n" in out
    assert out.count("(read as: ") == 11, "each follow-up, not the first question (read as it was asked)"
    # The 12th question comes after 22 turns: the 2 oldest are cut, and said so, once.
    assert out.count(" of the conversation left out or shortened)") == 1
    assert "\n(2 earlier turns of the conversation left out or shortened)\n" in out


def test_rag_chat_without_an_index_fails_before_the_first_prompt(tmp_path, monkeypatch, capsys, fake_backend):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "none"))
    code, out, err = rag(capsys, "chat")
    assert (code, out) == (1, "") and "rag index" in err


def test_an_index_folder_that_cannot_be_written_fails_in_one_line(tmp_path, monkeypatch, capsys, fake_backend):
    from rag.store import generations

    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("not a folder")
    code, out, err = rag(capsys, "index", "-q")
    assert (code, out) == (1, "")
    assert err == f"rag: error: the index folder {tmp_path / 'a-file'} is a file; set RAG_INDEX_DIR to a folder\n"

    def read_only(path, mode="r", *args, **kwargs):  # as a read-only folder refuses anyone but root
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setattr(generations, "open", read_only, raising=False)
    code, out, err = rag(capsys, "index", "-q")
    assert (code, out) == (1, "")
    assert err == f"rag: error: cannot write in the index folder {tmp_path / 'index'}: Permission denied\n"
