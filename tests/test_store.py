"""The index on disk: atomic generations, verification on load. Fake vectors, real FAISS."""

import json

import numpy as np
import pytest

from rag import atomic
from rag.errors import BusyError, IndexInvalidError, IndexMissingError, RagError
from rag.ingest.discover import read_document
from rag.ingest.segment import split_sentences
from rag.store import faiss_index, generations, vector_index
from rag.store import index as store
from rag.store.faiss_index import FaissIndex, FaissStore
from rag.store.manifest import FORMAT_VERSION, MANIFEST
from rag.store.tokens import TokenFile, TokenVectors, TokenWriter, decode, encode, row_bytes

from .conftest import ARTICLE

INFO = {
    "model": {"name": "fake", "dimension": 8, "prompts": {}, "token_dimension": 4},
    "segmentation": {},
    "background": {"sha256": "0" * 64, "sentences": 3},
}


def unit_rows(rng, count, dimension):
    rows = rng.normal(size=(count, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


FAISS = FaissStore()
VECTORS = FAISS.file


def build(index_dir, seed=0, index_type="auto", path=ARTICLE, vector_store=FAISS):
    document = read_document(path)
    sentences = split_sentences(document)
    rng = np.random.default_rng(seed)
    vectors = unit_rows(rng, len(sentences), 8)
    tokens = TokenVectors.join([unit_rows(rng, 1 + i % 5, 4) for i in range(len(sentences))], 4)
    background = TokenVectors.join([unit_rows(rng, 2, 4) for _ in range(3)], 4)
    rows = [(row, vectors[row], tokens.of(row)) for row in rng.permutation(len(sentences))]  # any order
    with generations.build_lock(index_dir):
        generation = store.write_index(
            index_dir, [document], sentences, rows, background, INFO, vector_store, index_type
        )
    return generation, document, sentences, vectors, tokens


def test_round_trip_keeps_headings_and_pages(tmp_path):
    from .test_formats import write_pdf

    _, document, *_ = build(tmp_path / "index", path=write_pdf(tmp_path / "report.pdf"))
    assert document.headings and len(document.pages) == 2
    assert store.load_index(tmp_path / "index").documents == {document.id: document}


def test_round_trip_keeps_text_offsets_and_vectors(tmp_path):
    generation, document, sentences, vectors, tokens = build(tmp_path)
    contents = store.load_index(tmp_path)
    assert len(contents.tokens) == len(sentences)
    for row in range(len(sentences)):
        assert np.allclose(contents.tokens.of(row), tokens.of(row), atol=4e-3), "stored as int8, a scale each"
    assert len(contents.background) == 3 and contents.tokens.of(4).shape == (5, 4)
    assert contents.documents == {document.id: document}
    assert contents.sentences == sentences
    assert contents.vectors.count() == len(sentences) and contents.vectors.dimension() == 8
    assert np.array_equal(contents.vectors.index.reconstruct_n(0, len(sentences)), vectors)
    scores, rows = contents.vectors.search(vectors[3:4], 1)
    assert rows[0][0] == 3 and scores[0][0] == pytest.approx(1.0, abs=1e-5)
    manifest = json.loads((generation / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 8
    assert sorted(p.name for p in generation.iterdir()) == sorted(store.files(FAISS)), (
        "the pooled vectors' file is gone"
    )
    assert manifest["counts"] == {"documents": 1, "sentences": len(sentences)}
    recorded = manifest["documents"][0]
    assert (recorded["source_sha256"], recorded["text_sha256"]) == (document.source_sha256, document.text_sha256)
    assert (recorded["format"], recorded["language"]) == ("text", "fr")
    assert manifest["vector_index"]["backend"] == "faiss"
    assert set(manifest["files"]) == set(store.data_files(FAISS))


@pytest.mark.parametrize(
    ("index_type", "built"), [("auto", "IndexFlatIP"), ("flat", "IndexFlatIP"), ("hnsw", "IndexHNSWFlat")]
)
def test_the_vector_index_type_is_chosen_recorded_and_checked(tmp_path, index_type, built):
    generation, _, sentences, vectors, _ = build(tmp_path, index_type=index_type)
    manifest = json.loads((generation / MANIFEST).read_text())
    assert manifest["vector_index"]["type"] == built
    contents = store.load_index(tmp_path)
    assert type(contents.vectors.index).__name__ == built
    _, rows = contents.vectors.search(vectors, 1)
    assert rows[:, 0].tolist() == list(range(len(sentences)))  # each vector finds itself


def test_auto_picks_hnsw_for_large_corpora(monkeypatch):
    assert FaissIndex.create(8, 300, "auto").describe()["type"] == "IndexFlatIP"
    monkeypatch.setattr(faiss_index, "HNSW_FROM", 300)
    index = FaissIndex.create(8, 300, "auto")
    assert index.describe()["type"] == "IndexHNSWFlat" and index.index.hnsw.efSearch == vector_index.HNSW_EF_SEARCH
    with pytest.raises(ValueError, match="index type"):
        FaissIndex.create(8, 300, "ivf")


def rewrite_manifest(generation, change):
    manifest = json.loads((generation / MANIFEST).read_text())
    change(manifest)
    (generation / MANIFEST).write_text(json.dumps(manifest))


def test_a_manifest_naming_another_index_type_is_refused(tmp_path):
    generation, *_ = build(tmp_path)
    rewrite_manifest(generation, lambda manifest: manifest["vector_index"].update(type="IndexHNSWFlat"))
    with pytest.raises(IndexInvalidError, match=r"vectors\.faiss disagrees with the manifest .*rag index"):
        store.load_index(tmp_path)


def test_a_manifest_naming_an_unknown_vector_store_is_refused(tmp_path):
    generation, *_ = build(tmp_path)
    rewrite_manifest(generation, lambda manifest: manifest["vector_index"].update(backend="elsewhere"))
    with pytest.raises(
        IndexInvalidError, match=r"built for the elsewhere vector store, but RAG_VECTOR_STORE is faiss; run `rag index`"
    ):
        store.load_index(tmp_path)


def test_an_index_of_an_older_format_is_refused_in_one_line(tmp_path):
    generation, *_ = build(tmp_path)
    rewrite_manifest(generation, lambda manifest: manifest.update(format_version=2))
    with pytest.raises(IndexInvalidError) as refused:
        store.load_index(tmp_path)
    assert "format version 2, this rag reads version 8; run `rag index` to rebuild it" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_missing_index_names_the_fix(tmp_path):
    with pytest.raises(IndexMissingError, match="rag index"):
        store.load_index(tmp_path / "index")


@pytest.mark.parametrize("name", store.files(FAISS))
@pytest.mark.parametrize("damage", ["truncate", "zero", "empty", "garbage", "delete"])
def test_damaged_files_are_refused_with_the_fix(tmp_path, name, damage):
    generation, *_ = build(tmp_path)
    path = generation / name
    data = path.read_bytes()
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(
            {
                "truncate": data[: len(data) // 2],
                "zero": bytes(len(data)),
                "empty": b"",
                "garbage": np.random.default_rng(1).bytes(len(data)),
            }[damage]
        )
    with pytest.raises(IndexInvalidError, match="rag index"):
        store.load_index(tmp_path)


def test_a_pointer_to_nothing_is_refused(tmp_path):
    build(tmp_path)
    (tmp_path / generations.CURRENT).write_text("gen-does-not-exist\n")
    with pytest.raises(IndexInvalidError, match="rag index"):
        store.load_index(tmp_path)
    (tmp_path / generations.CURRENT).write_text("../../etc\n")
    with pytest.raises(IndexInvalidError, match="rag index"):
        store.load_index(tmp_path)


def test_new_build_replaces_the_live_one_and_cleans_up(tmp_path):
    first, *_ = build(tmp_path, seed=1)
    leftover = tmp_path / ".tmp-gen-killed-build"
    leftover.mkdir()
    (leftover / VECTORS).write_bytes(b"half")
    built = [build(tmp_path, seed=seed)[0] for seed in (2, 3, 4)]
    assert (tmp_path / generations.CURRENT).read_text().strip() == built[-1].name
    assert not leftover.exists()
    kept = sorted(p.name for p in tmp_path.glob("gen-*"))
    assert kept == [built[-2].name, built[-1].name], "the live build and the one live before it"
    assert not first.exists()


def test_a_build_killed_before_it_went_live_does_not_push_out_the_last_live_one(tmp_path):
    live, *_ = build(tmp_path, seed=1)
    orphan = tmp_path / "gen-000002-20261124T000000Z"  # renamed into place, killed before CURRENT moved
    orphan.mkdir()
    (orphan / VECTORS).write_bytes(b"never live")
    newest, *_ = build(tmp_path, seed=2)
    assert sorted(p.name for p in tmp_path.glob("gen-*")) == [live.name, newest.name]


def test_only_one_build_at_a_time(tmp_path):
    lock = generations.build_lock
    with lock(tmp_path), pytest.raises(BusyError, match="already changing the index"), lock(tmp_path):
        pass


@pytest.mark.parametrize("dies_in", ["fsync_file", "fsync_dir", "rename", "replace"])
def test_a_build_that_dies_midway_leaves_the_last_good_index(tmp_path, monkeypatch, dies_in):
    """A kill at each step of a build, simulated: the live index stays, the next build cleans up."""
    first, *_ = build(tmp_path, seed=1)

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # stands for SIGKILL at that instant: nothing after it runs

    target = atomic.os if dies_in in ("rename", "replace") else atomic
    monkeypatch.setattr(target, dies_in, die)
    monkeypatch.setattr(atomic.shutil, "rmtree", lambda *args, **kwargs: None)  # a killed build cleans nothing
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, seed=2)
    monkeypatch.undo()
    assert list(tmp_path.glob(".tmp-*")), "the killed build left its temporary files"
    assert store.load_index(tmp_path).generation == first.name
    latest, *_ = build(tmp_path, seed=3)
    assert store.load_index(tmp_path).generation == latest.name
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_full_disk_fails_in_one_line_and_leaves_the_live_index(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    live, *_ = build(tmp_path, seed=1)
    before = sorted(p.name for p in tmp_path.iterdir())
    write_bytes = Path.write_bytes

    def full(self, data):
        if self.name == store.BACKGROUND:  # written after the token vectors and the vector index
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(RagError, match=r"^the disk holding the index is full; .*RAG_INDEX_DIR.*; nothing was changed$"):
        build(tmp_path, seed=2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing left behind"
    assert store.load_index(tmp_path).generation == live.name


def test_token_vectors_read_from_disk_or_held_in_memory_are_the_same(tmp_path):
    _, _, sentences, _, tokens = build(tmp_path)
    size = sum(len(tokens.of(row)) for row in range(len(sentences))) * 4 * 4  # as float32
    from_disk = store.load_index(tmp_path, token_memory_bytes=size - 1).tokens
    held = store.load_index(tmp_path, token_memory_bytes=size).tokens
    assert not from_disk.held and held.held, "held exactly when they fit"
    for row in range(len(sentences)):
        assert from_disk.of(row).dtype == held.of(row).dtype == np.float32
        assert np.array_equal(from_disk.of(row), held.of(row))
        assert np.array_equal(from_disk.stored(row), held.stored(row)), "copied into a new generation unchanged"


def test_the_catalog_reads_documents_sentences_and_words_by_row_from_several_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    _, document, sentences, *_ = build(tmp_path)
    contents = store.load_index(tmp_path)
    assert len(contents.sentences) == len(sentences) and contents.sentences[-1] == sentences[-1]
    assert contents.sentences[np.int64(2)] == sentences[2], "a row as FAISS gives it"
    with pytest.raises(IndexError):
        contents.sentences[len(sentences)]
    assert document.id in contents.documents and "nothing" not in contents.documents and 3 not in contents.documents
    assert contents.documents.get("nothing") is None and list(contents.documents) == [document.id]
    assert contents.sentences_of(document.id) == sentences and contents.sentences_of("nothing") == []
    assert "poutine" in contents.vocabulary and "Poutine" not in contents.vocabulary, "case-folded"
    assert not any(word in contents.vocabulary for word in ("2019", "zzzz")), "no word with a digit, nor unknown"
    assert contents.listed[document.id].sentences == len(sentences) and contents.titles == (document.title,)

    def read(row: int) -> str:
        return contents.sentence_text(contents.sentences[row])

    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(read, list(range(len(sentences))) * 20))
    assert texts == [document.text[s.start : s.end] for s in sentences] * 20


@pytest.mark.parametrize(
    "change, says",
    [
        ('UPDATE sentences SET "end" = end + 100000 WHERE row = 3', "a sentence outside its document"),
        ("UPDATE sentences SET row = row + 1000 WHERE row = 0", "not numbered from 0"),
        ("UPDATE documents SET first_row = 2", "not its consecutive rows"),
        ("UPDATE documents SET sentences = sentences - 1", "not its consecutive rows"),
        ("UPDATE documents SET characters = characters + 1", "a wrong length"),
        ("UPDATE documents SET text = text || 'x'", "does not match its sha256"),
        ("UPDATE documents SET headings = 'not json'", "is not a readable metadata database"),
        ("DROP TABLE words", "is not a readable metadata database"),
    ],
)
def test_a_catalog_whose_rows_disagree_is_refused(tmp_path, change, says):
    import shutil
    import sqlite3

    from rag.store.metadata import Catalog

    generation, *_ = build(tmp_path / "index")
    path = tmp_path / "metadata.sqlite3"
    shutil.copy(generation / store.METADATA, path)
    db = sqlite3.connect(path)
    db.execute(change)
    db.commit()
    db.close()
    with pytest.raises(ValueError, match=says):
        Catalog.open(path).has_word("x")


def test_token_vectors_are_stored_as_int8_with_a_scale_each_and_copied_unchanged(tmp_path):
    rng = np.random.default_rng(3)
    vectors = np.concatenate([unit_rows(rng, 200, 768), np.zeros((1, 768), np.float32)])
    stored = encode(vectors)
    assert stored.dtype == np.uint8 and stored.shape == (201, 770) == (201, row_bytes(768))
    decoded = decode(stored)
    assert decoded.dtype == np.float32 and not decoded[-1].any(), "a zero row stays zero"
    assert np.abs(decoded - vectors).max(axis=1).max() <= np.abs(vectors).max(axis=1).max() / 254 * 1.01
    assert np.abs((decoded * vectors).sum(axis=1)[:-1] - 1).max() < 1e-3, "a cosine moves by less than 1e-3"
    assert np.array_equal(encode(decoded), stored), "a decoded row written again is the same bytes"
    with TokenWriter(tmp_path / "tokens", 768, 2) as writer:
        writer.write(1, vectors[:150])
        writer.write(0, decoded[150:])
    assert (tmp_path / "tokens").stat().st_size == 201 * 770
    for memory in (0, 1 << 30):
        read = TokenFile.open(tmp_path / "tokens", writer.spans, writer.checksums, 2, 768, memory)
        assert read.held == bool(memory)
        assert np.array_equal(read.of(1), decoded[:150]) and np.array_equal(read.of(0), decoded[150:])
        assert np.array_equal(encode(read.stored(0)), stored[150:]), "copied into a new generation unchanged"
    with pytest.raises(ValueError, match="finite"):
        encode(np.full((1, 4), np.nan, np.float32))


def test_a_background_file_with_impossible_codes_is_refused():
    rng = np.random.default_rng(4)
    background = TokenVectors.join([unit_rows(rng, 2, 4) for _ in range(3)], 4)
    loaded = TokenVectors.from_bytes(background.to_bytes(), 3, 4)
    again = TokenVectors.from_bytes(loaded.to_bytes(), 3, 4)
    assert np.array_equal(again.vectors, loaded.vectors) and np.array_equal(again.offsets, background.offsets)
    import io

    buffer = io.BytesIO()
    np.savez(buffer, offsets=background.offsets, codes=np.full((6, 4), -128, np.int8), scales=np.ones(6, "<f2"))
    with pytest.raises(ValueError, match="values no build writes"):
        TokenVectors.from_bytes(buffer.getvalue(), 3, 4)
    with pytest.raises(ValueError, match="disagrees with the manifest"):
        TokenVectors.from_bytes(background.to_bytes(), 3, 5)
