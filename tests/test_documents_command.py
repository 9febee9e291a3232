"""`rag add`, `rag remove` and `rag documents` on the fake embedder: a new generation each time,
only new documents embedded, ids stable, a refusal changes nothing. No model."""

import json
import re

import numpy as np

from rag.store import index as store

from .conftest import FakeEmbedder, rag, snapshot
from .test_formats import HTML, MARKDOWN, write_pdf

ARTICLE_ID = "000_8cb13a5d0c7818f1"


def rows_of(index, document):
    return [row for row, s in enumerate(index.sentences) if s.document == document]


def vectors_of(index, document):
    rows = rows_of(index, document)
    return index.vectors.reconstruct(np.array(rows)), [index.tokens.of(row) for row in rows]


def test_add_embeds_only_the_new_documents_and_keeps_the_others_vectors(tmp_path, index_dir, capsys):
    before = store.load_index(index_dir)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "bees.md").write_text(MARKDOWN, encoding="utf-8")
    (folder / "page.html").write_text(HTML, encoding="utf-8")
    write_pdf(folder / "glaciers.pdf")
    (folder / "notes.odt").write_bytes(b"PK")
    code, out, err = rag(capsys, "add", "-q", str(folder))
    assert code == 0, err
    after = store.load_index(index_dir)
    new_sentences = len(after.sentences) - len(before.sentences)
    assert out.splitlines()[0].startswith(f"Indexed 4 documents, {len(after.sentences)} sentences with fake")
    assert out.splitlines()[1] == f"Embedded {new_sentences}; {len(before.sentences)} kept their vectors (unchanged)"
    assert out.splitlines()[2] == f"Skipped {folder / 'notes.odt'}: {folder / 'notes.odt'} is not a .txt, " + (
        ".md, .markdown, .html, .htm, .pdf or .docx file"
    )
    assert set(after.documents) == {ARTICLE_ID, "bees", "page", "glaciers"}
    for document in after.documents:  # the rows a document's sentences take, found without a scan
        assert after.sentences_of(document) == [s for s in after.sentences if s.document == document]
    kept, old = vectors_of(after, ARTICLE_ID), vectors_of(before, ARTICLE_ID)
    assert np.array_equal(kept[0], old[0]) and all(np.array_equal(a, b) for a, b in zip(kept[1], old[1], strict=True))

    code, out, _ = rag(capsys, "documents")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"{ARTICLE_ID}\tfr\ttext\t26 sentences\t")
    assert {line.split("\t")[0] for line in lines} == set(after.documents)
    code, out, _ = rag(capsys, "documents", "--json")
    listed = json.loads(out)["documents"]
    assert {d["id"]: (d["language"], d["format"]) for d in listed} == {
        ARTICLE_ID: ("fr", "text"),
        "bees": ("en", "markdown"),
        "page": ("en", "html"),
        "glaciers": ("en", "pdf"),
    }
    assert all(re.fullmatch(r"[0-9a-f]{64}", d["sha256"]) and d["sentences"] > 0 for d in listed)


def test_adding_a_changed_file_again_replaces_it_under_its_id(tmp_path, index_dir, capsys):
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\nThe first version says one thing.", encoding="utf-8")
    assert rag(capsys, "add", "-q", str(path))[0] == 0
    path.write_text("# Notes\n\nThe second version says another thing. It has two sentences.", encoding="utf-8")
    code, out, _ = rag(capsys, "add", "-q", str(path))
    assert code == 0 and "Embedded 2; 26 kept their vectors" in out
    index = store.load_index(index_dir)
    assert set(index.documents) == {ARTICLE_ID, "notes"}
    assert "second version" in index.documents["notes"].text

    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "notes.md").write_text("# Other notes\n\nA different file with the same name.", encoding="utf-8")
    assert rag(capsys, "add", "-q", str(other / "notes.md"))[0] == 0
    ids = set(store.load_index(index_dir).documents)
    assert len(ids) == 3 and any(re.fullmatch(r"notes-[0-9a-f]{8}", i) for i in ids), ids


def test_remove_embeds_nothing_and_refusals_change_nothing(tmp_path, index_dir, capsys, monkeypatch):
    (tmp_path / "a.txt").write_text("One sentence here. Another one there.", encoding="utf-8")
    assert rag(capsys, "add", "-q", str(tmp_path / "a.txt"))[0] == 0

    def unused(self, texts, progress=False):
        raise AssertionError("a removal embeds nothing")

    monkeypatch.setattr(FakeEmbedder, "passage_batches", unused)
    monkeypatch.setattr(FakeEmbedder, "encode_passages", unused)
    code, out, _ = rag(capsys, "remove", "a")
    assert code == 0
    assert out == "Removed a (One sentence here. Another one there.); the index now holds 1 document, 26 sentences\n"
    assert set(store.load_index(index_dir).documents) == {ARTICLE_ID}

    before = snapshot(index_dir)
    for argv, message in [
        (("remove", "nope"), r"no document 'nope' in the index; `rag documents` lists them"),
        (("remove", ARTICLE_ID), r"that would leave the index empty"),
        (("add", str(tmp_path / "missing.md")), r"no such file or folder"),
        (("add", "--language", "french", str(tmp_path / "a.txt")), r"'french' is not a language code"),
    ]:
        code, out, err = rag(capsys, *argv)
        assert (code, out) == (1, ""), argv
        assert re.search(message, err) and len(err.splitlines()) == 1, err
    assert snapshot(index_dir) == before


def test_add_without_an_index_says_how_to_make_one(tmp_path, monkeypatch, fake_backend, capsys):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    (tmp_path / "a.txt").write_text("One sentence.", encoding="utf-8")
    code, out, err = rag(capsys, "add", str(tmp_path / "a.txt"))
    assert (code, out) == (1, "")
    assert "there is no index" in err and "`rag index` builds one" in err


def test_rebuilding_from_other_files_says_which_documents_it_left_out(tmp_path, index_dir, capsys):
    (tmp_path / "mine.txt").write_text("My own sentence. Another one.", encoding="utf-8")
    code, out, _ = rag(capsys, "index", "-q", str(tmp_path / "mine.txt"))
    assert code == 0
    assert out.splitlines()[-1] == (
        f"Left out 1 document of the previous index ({ARTICLE_ID}); `rag add PATH` adds documents and keeps the others"
    )
    assert set(store.load_index(index_dir).documents) == {"mine"}
