"""Faults while serving and building: rebuilds under load, damaged builds, killed builds.
Real `rag serve` and `rag index` processes with the real default model."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode

import httpx
import pytest

from rag.store.generations import CURRENT
from rag.store.index import TOKENS, load_index

from .conftest import REPO, call, running_server

pytestmark = pytest.mark.model

OTHER_ARTICLE = (
    "Le volcan Piton de la Fournaise est entré en éruption dimanche sur l’île de La Réunion.\n"
    "Les coulées de lave se dirigent vers l’océan et aucune habitation n’est menacée, selon la préfecture.\n"
    "Les randonneurs sont priés de ne pas s’approcher de l’enclos.\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("reliability")) as server:
        yield server


def rag(server, *args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "rag", *args], cwd=REPO, env=server.env, capture_output=True, text=True, timeout=timeout
    )


class Load:
    """Clients asking questions in a loop until stopped; every status is kept."""

    def __init__(self, server, clients=4):
        self.statuses, self.stop = [], threading.Event()
        questions = ["What did Putin demand?", "Who is Steve Witkoff?", "Qui a rencontré Vladimir Poutine ?"]

        def client(number):
            while not self.stop.is_set():
                try:
                    status, _, _ = call(server.base, "/api/ask", {"question": questions[number % 3]}, timeout=60)
                except OSError as exc:
                    status = repr(exc)
                self.statuses.append(status)

        self.threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in self.threads:
            thread.start()

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
        return self.statuses


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_rebuild_on_other_content_is_served_within_5_s_and_no_request_fails(server, tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "volcan.txt").write_text(OTHER_ARTICLE, encoding="utf-8")
    load = Load(server)
    try:
        built = rag(server, "index", "-q", str(folder))
        assert built.returncode == 0, built.stderr[-2000:]
        finished = time.monotonic()
        assert wait_for(lambda: call(server.base, "/api/documents/volcan")[0] == 200, 5), "new index served in 5 s"
        switched_after = time.monotonic() - finished
    finally:
        statuses = load.finish()
    assert len(statuses) >= 10 and set(statuses) == {200}, statuses
    _, _, answer = call(server.base, "/api/ask", {"question": "Quel volcan est entré en éruption ?"})
    assert answer["citations"][0]["document"] == "volcan" and "Piton" in answer["citations"][0]["text"]
    assert call(server.base, "/api/documents/000_8cb13a5d0c7818f1")[0] == 404, "the old content is gone"
    print(f"switched {switched_after:.2f} s after `rag index` returned; {len(statuses)} answers, all 200")
    # Back to the seeds for the next test.
    assert rag(server, "index", "-q").returncode == 0
    assert wait_for(lambda: call(server.base, "/api/documents/000_8cb13a5d0c7818f1")[0] == 200, 5)


@pytest.mark.parametrize("damage", ["truncate", "zero", "garbage"])
def test_a_damaged_new_build_is_not_served_and_rag_index_recovers(server, damage):
    live = server.index_dir / (server.index_dir / CURRENT).read_text().strip()
    damaged = server.index_dir / f"gen-999999-{damage}"
    damaged.mkdir()
    for path in live.iterdir():
        (damaged / path.name).write_bytes(path.read_bytes())
    data = (damaged / TOKENS).read_bytes()
    (damaged / TOKENS).write_bytes(
        {"truncate": data[: len(data) // 2], "zero": bytes(len(data)), "garbage": os.urandom(len(data))}[damage]
    )
    (server.index_dir / CURRENT).write_text(damaged.name + "\n")
    time.sleep(2.5)  # two checks of the watcher
    status, _, answer = call(server.base, "/api/ask", {"question": "What did Putin demand?"})
    assert status == 200 and "formellement exclue" in answer["citations"][0]["text"], "the last good index serves"
    assert "the new index cannot be used" in server.output() and damaged.name in server.output()

    asked = rag(server, "ask", "What did Putin demand?")
    assert asked.returncode == 1 and "Traceback" not in asked.stderr
    assert asked.stderr.strip().count("\n") == 0 and "rag index" in asked.stderr

    assert rag(server, "index", "-q").returncode == 0, "rag index recovers"
    assert load_index(server.index_dir).generation != damaged.name
    assert not damaged.exists() or damaged.name not in (server.index_dir / CURRENT).read_text()
    assert rag(server, "ask", "What did Putin demand?").returncode == 0


def test_a_killed_rag_index_leaves_the_last_good_index_and_the_next_build_cleans_up(server):
    before = load_index(server.index_dir)
    for delay in (0.5, 3.0, 6.0, 8.0, 10.0):
        process = subprocess.Popen(
            [sys.executable, "-m", "rag", "index", "-q"],
            cwd=REPO,
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        after = load_index(server.index_dir)  # the old build, or a complete new one
        assert after.sentences == before.sentences and after.documents == before.documents
        assert call(server.base, "/api/ask", {"question": "Who is Steve Witkoff?"})[0] == 200
    assert rag(server, "index", "-q").returncode == 0
    assert not list(server.index_dir.glob(".tmp-*")), "leftovers of killed builds are removed"


def test_beyond_the_queue_requests_get_503_at_once_and_the_rest_are_answered(tmp_path):
    with running_server(tmp_path, RAG_MAX_RUNNING="1", RAG_MAX_WAITING="2", RAG_QUEUE_SECONDS="30") as small:
        results = [None] * 16

        def ask(number):
            started = time.monotonic()
            status, headers, body = call(small.base, "/api/ask", {"question": f"Who is Steve Witkoff? ({number})"})
            results[number] = (status, headers.get("Retry-After"), body, time.monotonic() - started)

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        answered = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 503]
        assert len(answered) + len(refused) == 16 and len(answered) >= 3 and refused
        for _, retry_after, body, seconds in refused:
            assert retry_after == "1" and "try again" in body["detail"] and seconds < 5
        assert call(small.base, "/api/ask", {"question": "Who is Steve Witkoff?"})[0] == 200


def test_an_api_key_is_asked_for_by_the_real_server_and_never_logged(tmp_path):
    """Every case of the key check is tested in process (test_http.py); this is the real server."""
    key, near = "s3cret-key-for-the-tests", "s3cret-key-for-the-test"  # at least 16 characters
    with running_server(tmp_path, RAG_API_KEY=key) as guarded:
        question = {"question": "Who is Steve Witkoff?"}
        status, reply_headers, reply = call(guarded.base, "/api/ask", question, headers={"X-API-Key": near})
        assert status == 401 and "needs a key" in reply["detail"] and reply_headers["WWW-Authenticate"] == "Bearer"
        assert call(guarded.base, "/api/ask", question, headers={"Authorization": f"Bearer {key}"})[0] == 200
        status, _, html = call(guarded.base, "/")
        assert status == 401 and 'name="key"' in html and "Witkoff" not in html, "the page asks for the key"
        status, _, html = call(guarded.base, "/", raw=urlencode(question).encode(), form=True)
        assert status == 401 and "Witkoff" not in html
        with httpx.Client(base_url=guarded.base, follow_redirects=False, timeout=60) as browser:
            signed_in = browser.post("/signin", data={"key": key})
            assert signed_in.status_code == 303 and "HttpOnly" in signed_in.headers["set-cookie"]
            page = browser.get("/")  # the session cookie, kept by the client
            assert page.status_code == 200 and "Witkoff" in page.text
        assert key not in guarded.output(), "the key is never logged"


def test_rag_ask_refuses_a_damaged_file_in_one_line(server, tmp_path):
    """One damaged file, end to end; every file damaged three ways is tested in process (test_cli.py)."""
    copy = tmp_path / "index"
    shutil.copytree(server.index_dir, copy)
    name = TOKENS
    path = copy / (copy / CURRENT).read_text().strip() / name
    path.write_bytes(os.urandom(path.stat().st_size))
    result = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "What did Putin demand?"],
        cwd=REPO,
        env={**server.env, "RAG_INDEX_DIR": str(copy)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("rag: error: ") and result.stderr.count("\n") == 1
    assert name in result.stderr and "run `rag index` to rebuild it" in result.stderr


def test_slow_heads_are_cut_off_and_normal_requests_still_served(tmp_path):
    """200 connections that send a header byte every 0.3 s ("slowloris"), bounded to a few
    seconds: each is closed once RAG_HEAD_SECONDS (1 here) has passed; a normal request made
    meanwhile is answered, and a kept-alive connection gets a new deadline after each response."""
    import socket
    import time

    # All from 127.0.0.1: the cap per address is not what is tested here (test_protocol_hardening.py).
    with running_server(tmp_path, RAG_HEAD_SECONDS="1", RAG_MAX_CONNECTIONS_PER_CLIENT="0") as server:
        slow = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(200)]
        started = time.monotonic()
        closed = set()
        for connection in slow:
            connection.sendall(b"GET /healthz HTTP/1.1\r\n")
        while len(closed) < len(slow) and time.monotonic() - started < 6:
            for number, connection in enumerate(slow):
                if number in closed:
                    continue
                try:
                    connection.sendall(b"X")
                    connection.setblocking(False)
                    if connection.recv(1) == b"":
                        closed.add(number)
                except BlockingIOError:
                    pass
                except OSError:  # reset by the server
                    closed.add(number)
                finally:
                    connection.setblocking(True)
            assert call(server.base, "/healthz", timeout=5)[0] == 200
            time.sleep(0.3)
        elapsed = time.monotonic() - started
        for connection in slow:
            connection.close()
        assert len(closed) == len(slow) and elapsed < 4, (len(closed), elapsed)

        def response(connection):
            """One whole response: its head, then as many body bytes as Content-Length says."""
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(4096)
            head, body = data.split(b"\r\n\r\n", 1)
            length = int(
                next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            )
            while len(body) < length:
                body += connection.recv(4096)
            return head

        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as kept:
            for _ in range(2):  # two requests on one connection, 0.6 s apart: each within its deadline
                kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert response(kept).startswith(b"HTTP/1.1 200 ")
                time.sleep(0.6)
