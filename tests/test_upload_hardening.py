"""Uploads and the disk (issue 31): kept files owned by their document, orphans and leftovers
swept, file names checked by bytes and characters, concurrent uploads and deletes answered with
documented statuses, a full or read-only disk answered 507 with nothing left behind. In
process (TestClient, fake embedder); no model."""

import errno
import sqlite3
import threading
from pathlib import Path

import pytest

from rag import atomic
from rag.ingest import loaders
from rag.store import index as store_index
from rag.store.generations import RESERVE, RESERVE_BYTES

from .conftest import fake_engine, ready_client

ARTICLE_ID = "000_8cb13a5d0c7818f1"
TEXT = b"Les abeilles butinent le colza au printemps. Les apiculteurs comptent leurs ruches."


@pytest.fixture
def client(tmp_path):
    with ready_client(fake_engine(tmp_path / "index")) as client:
        yield client


@pytest.fixture(scope="module")
def refusing(tmp_path_factory):
    """One client for the tests of refused uploads, which change nothing."""
    with ready_client(fake_engine(tmp_path_factory.mktemp("refusing") / "index")) as client:
        yield client


def index_dir(client) -> Path:
    return client.app.state.runtime.engine.settings.index_dir


def upload(client, name, data=TEXT):
    return client.post("/api/documents", files={"file": (name, data, "text/plain")})


def raw_upload(client, name):
    """An upload whose file name goes as UTF-8, byte for byte (httpx would percent-encode controls)."""
    body = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="' + name.encode() + b'"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + TEXT + b"\r\n--B--\r\n"
    )
    return client.post("/api/documents", content=body, headers={"Content-Type": "multipart/form-data; boundary=B"})


def kept_files(client) -> set[str]:
    """Every file and folder under uploads/, relative to it."""
    uploads = index_dir(client) / "uploads"
    return {str(p.relative_to(uploads)) for p in uploads.rglob("*")} if uploads.exists() else set()


def live_paths(client) -> set[str]:
    engine = client.app.state.runtime.engine
    engine.refresh()
    return {str(Path(d.path).relative_to(index_dir(client) / "uploads")) for d in uploaded(engine.index)}


def uploaded(index):
    return [d for d in index.listed.values() if d.id != ARTICLE_ID]


def temporary_files(client) -> list[Path]:
    return list(index_dir(client).rglob(atomic.TMP_PREFIX + "*"))


def test_identical_bytes_under_two_names_keep_a_file_each_until_their_own_delete(client):
    assert upload(client, "first.txt").status_code == 201
    assert upload(client, "second.txt").status_code == 201
    assert len({Path(p).parent for p in live_paths(client)}) == 1, "one folder for the same bytes"
    assert client.delete("/api/documents/first").status_code == 204
    assert client.get("/api/documents/second").status_code == 200
    assert {Path(p).name for p in live_paths(client)} == {"second.txt"}
    assert all((index_dir(client) / "uploads" / p).is_file() for p in live_paths(client)), "second's file stays"
    assert upload(client, "third.txt").status_code == 201
    assert client.delete("/api/documents/second").status_code == 204
    assert client.delete("/api/documents/third").status_code == 204
    assert kept_files(client) == set(), "the last delete leaves no file and no folder"


def test_orphans_and_leftovers_of_killed_writers_are_swept_at_start_and_by_each_build(tmp_path):
    with ready_client(fake_engine(tmp_path / "index")) as client:
        assert upload(client, "kept.txt").status_code == 201
        kept = live_paths(client)

    def leave_leftovers():
        uploads = tmp_path / "index" / "uploads"
        (uploads / "0123456789abcdef").mkdir()
        (uploads / "0123456789abcdef" / "orphan.txt").write_bytes(b"killed before it was indexed")
        (uploads / next(iter(kept))).with_name(".tmp-0a1b2c3d4e5f").write_bytes(b"half")
        (tmp_path / "index" / ".tmp-0a1b2c3d4e5f").write_bytes(b"half a CURRENT")
        (tmp_path / "index" / ".tmp-gen-000009-20261203T000000Z-0a1b2c3d4e5f").mkdir()

    leave_leftovers()
    with ready_client(fake_engine(tmp_path / "index")) as client:
        assert kept_files(client) == kept | {str(Path(p).parent) for p in kept}, "swept at start"
        assert temporary_files(client) == []
        assert client.get("/api/documents/kept").status_code == 200
        leave_leftovers()
        assert upload(client, "other.txt").status_code == 201
        assert kept_files(client) == live_paths(client) | {str(Path(p).parent) for p in live_paths(client)}
        assert temporary_files(client) == []


@pytest.mark.parametrize("name", ["é" * 196 + ".txt", "日本" * 60 + ".txt"])
def test_a_name_over_255_bytes_is_refused_with_422_and_leaves_no_folder(refusing, name):
    assert len(name.encode()) > 255
    reply = upload(refusing, name)
    assert reply.status_code == 422, reply.text
    assert "bytes long in UTF-8, over the 255" in reply.json()["detail"]
    assert kept_files(refusing) == set()


def test_a_name_of_255_bytes_is_kept(client):
    name = "é" * 124 + "abc.txt"
    assert len(name.encode()) == 255
    reply = upload(client, name)
    assert reply.status_code == 201, reply.text
    assert {Path(p).name for p in live_paths(client)} == {name}


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("invoice\u202etxt.md", "U+202E"),  # right-to-left override: shows as "invoicedm.txt"
        ("re\u200bport.txt", "U+200B"),  # zero-width space
        ("a\u200db.txt", "U+200D"),  # zero-width joiner
        ("tab\there.txt", "U+0009"),
        ("bell\x07.txt", "U+0007"),
        ("line\u2028break.txt", "U+2028"),  # line separator
        ("nul\x00.txt", "U+0000"),
        ("del\x7f.txt", "U+007F"),
    ],
)
def test_names_with_invisible_or_control_characters_are_refused(refusing, name, named):
    reply = raw_upload(refusing, name)
    assert reply.status_code == 422, reply.text
    assert named in reply.json()["detail"] and "rename" in reply.json()["detail"]
    assert kept_files(refusing) == set()


def test_names_are_kept_in_nfc_form(client):
    reply = upload(client, "cafe\u0301.txt")  # as macOS spells it
    assert reply.status_code == 201, reply.text
    assert reply.json()["id"] == "caf\u00e9"
    assert {Path(p).name for p in live_paths(client)} == {"caf\u00e9.txt"}


def test_concurrent_uploads_and_deletes_of_one_name_get_documented_statuses_only(client):
    """Rounds of 5 uploads of one file and 3 deletes of its document, let go at once."""
    seen, problems = [], []
    start = threading.Barrier(8)

    def attempt(method, request, expected):
        for _ in range(4):
            try:
                start.wait(10)
                reply = request()
            except Exception as exc:  # a 500 the TestClient raises, or a round that never started
                problems.append((method, repr(exc)))
                start.abort()
                return
            seen.append((method, reply.status_code))
            if reply.status_code not in expected:
                problems.append((method, reply.status_code, reply.text))
            if reply.status_code == 409 and reply.headers.get("Retry-After") != "5":
                problems.append((method, "409 without Retry-After"))

    uploads = ("POST", lambda: upload(client, "race.txt"), {201, 409})
    deletes = ("DELETE", lambda: client.delete("/api/documents/race"), {204, 404, 409})
    threads = [threading.Thread(target=attempt, args=work) for work in [uploads] * 5 + [deletes] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert problems == []
    assert ("POST", 201) in seen
    assert kept_files(client) == live_paths(client) | {str(Path(p).parent) for p in live_paths(client)}
    assert temporary_files(client) == []


class SlowLoader:
    """The text loader, but waiting on ``release`` for files named slow*: a PDF that takes long."""

    def __init__(self):
        self.text = loaders.LOADERS[".txt"]
        self.format = self.text.format
        self.started, self.release = threading.Event(), threading.Event()

    def extract(self, data, source):
        if source.name.startswith("slow"):
            self.started.set()
            assert self.release.wait(30)
        return self.text.extract(data, source)


def test_a_slow_upload_is_read_before_the_build_lock_so_others_are_not_refused(client, monkeypatch):
    slow = SlowLoader()
    monkeypatch.setitem(loaders.LOADERS, ".txt", slow)
    replies = []
    waiting = threading.Thread(target=lambda: replies.append(upload(client, "slow.txt")))
    waiting.start()
    try:
        assert slow.started.wait(30)
        reply = upload(client, "quick.txt", TEXT + b" Vite.")
        assert reply.status_code == 201, reply.text
    finally:
        slow.release.set()
        waiting.join(timeout=30)
    assert replies[0].status_code == 201, replies[0].text
    assert {"slow", "quick"} <= {d["id"] for d in client.get("/api/documents").json()["documents"]}


FULL = OSError(errno.ENOSPC, "No space left on device")
READ_ONLY = OSError(errno.EROFS, "Read-only file system")
SQLITE_FULL = sqlite3.OperationalError("database or disk is full")
SQLITE_FULL.sqlite_errorcode = sqlite3.SQLITE_FULL


def always(*args):
    return True


@pytest.mark.parametrize(
    ("target", "name", "error", "when", "says"),
    [
        (Path, "write_bytes", FULL, lambda path, data: "uploads" in str(path), "is full"),  # the kept file
        (store_index, "write_metadata", FULL, always, "is full"),  # the new generation
        (store_index, "write_metadata", SQLITE_FULL, always, "is full"),
        (atomic, "fsync_dir", FULL, always, "is full"),  # a quota can refuse as late as that
        (atomic.os, "replace", FULL, lambda source, target: Path(target).name == "CURRENT", "is full"),
        (Path, "write_bytes", READ_ONLY, always, "read-only"),
    ],
)
def test_a_full_or_read_only_disk_is_507_and_leaves_nothing_behind(
    client, monkeypatch, target, name, error, when, says
):
    before = {d["id"] for d in client.get("/api/documents").json()["documents"]}
    generation = client.app.state.runtime.engine.index.generation
    everything = sorted(set(index_dir(client).rglob("*")) - {index_dir(client) / "uploads"})
    original = getattr(target, name)

    def fail(*args, **kwargs):
        if when(*args, **kwargs):
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, fail)
    reply = upload(client, "full.txt")
    monkeypatch.undo()
    assert reply.status_code == 507, reply.text
    assert says in reply.json()["detail"] and "RAG_INDEX_DIR" in reply.json()["detail"]
    assert str(index_dir(client)) not in reply.json()["detail"]
    left = sorted(set(index_dir(client).rglob("*")) - {index_dir(client) / "uploads"})
    assert left == everything, "no temporary file, no folder"
    assert {d["id"] for d in client.get("/api/documents").json()["documents"]} == before
    assert client.app.state.runtime.engine.index.generation == generation


def test_a_delete_on_a_full_disk_frees_the_older_build_first(client, monkeypatch):
    assert upload(client, "first.txt").status_code == 201
    assert upload(client, "second.txt", TEXT + b" Deux.").status_code == 201
    folder = index_dir(client)
    older, live = sorted(folder.glob("gen-*"))  # the live build and the one before it are kept
    usage = store_index.shutil.disk_usage

    def full_while_the_older_build_is_kept(path):
        return usage(path)._replace(free=0 if older.exists() else 10**12)

    monkeypatch.setattr(store_index.shutil, "disk_usage", full_while_the_older_build_is_kept)
    assert client.delete("/api/documents/first").status_code == 204
    assert "first" not in {d["id"] for d in client.get("/api/documents").json()["documents"]}
    assert sorted(folder.glob("gen-*"))[0] == live, "the older build made room"
    monkeypatch.setattr(store_index.shutil, "disk_usage", lambda path: usage(path)._replace(free=0))
    reply = upload(client, "third.txt")
    assert reply.status_code == 507, reply.text
    assert "free some space" in reply.json()["detail"]
    assert client.delete("/api/documents/third").status_code == 404
    assert len(list(folder.glob("gen-*"))) == 1, "the live build stays"
    assert (folder / RESERVE).stat().st_size == RESERVE_BYTES, "the reserve is kept for deletes"
