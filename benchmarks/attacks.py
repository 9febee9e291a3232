"""Issue 31's attacks replayed against one real `rag serve`: one row per finding, what the server
did (status, detail, seconds) and whether the fix held.

    .venv/bin/python benchmarks/attacks.py [--port N] [--only NAME]   # NAME: part of a finding's name

The server runs the real default model offline (HF_HUB_OFFLINE=1) on a temporary RAG_INDEX_DIR
that it builds from seeds/ itself, with a 32-character RAG_API_KEY, RAG_WRITE_SECONDS=3,
RAG_TOKEN_MEMORY_MB=0 (token vectors read from disk and checked as read) and
RAG_MAX_UPLOAD_MB=1, on 127.0.0.1. Every attack is bounded in count, size and time and comes
from 127.0.0.0/8; the damaged index is the last. Left out: a 2 MB line without a sentence end
(minutes: benchmarks/hostile_documents.py) and a full or read-only disk (needs root:
benchmarks/full_disk.py). A last row checks the server's log: no traceback, no 500. Exits 1
if anything did not hold. The server, and whatever it started, is stopped at the end, on
failure or Ctrl-C too."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.test_hostile_documents import deep_html, deep_list, deep_quote  # noqa: E402
from tests.test_pdf_limits import HOSTILE, LINE, shared_stream_pdf  # noqa: E402

SEED_ID = "000_8cb13a5d0c7818f1"  # the bundled article
QUESTION = {"question": "Who met Vladimir Putin?"}
WRITE_SECONDS = 3
ESTABLISHED = 1  # TCP_INFO's first byte: the connection is open


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)

    def detail(self, size: int = 80) -> str:
        """The start of what the server said: the detail of a JSON answer (the id of a document
        added), else the body's text."""
        try:
            data = self.json()
            said = data.get("detail") or data.get("error", {}).get("message") or data.get("id") or data
        except (ValueError, AttributeError):
            said = self.body.decode(errors="replace")
        said = " ".join(str(said).split())
        return said if len(said) <= size else said[: size - 3] + "..."

    def __str__(self) -> str:
        return f"{self.status} {self.detail()!r}"


class Server:
    """One `rag serve` subprocess in a process group of its own (its PDF readers with it)."""

    def __init__(self, folder: Path, port: int):
        self.index_dir = folder / "index"
        self.key = secrets.token_urlsafe(24)  # 32 characters
        self.port = port or free_port()
        env = {name: value for name, value in os.environ.items() if not name.startswith("RAG_")}
        env.update(
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            RAG_INDEX_DIR=str(self.index_dir),
            RAG_SEEDS_DIR=str(REPO / "seeds"),
            RAG_API_KEY=self.key,
            RAG_WRITE_SECONDS=str(WRITE_SECONDS),
            RAG_TOKEN_MEMORY_MB="0",
            RAG_MAX_UPLOAD_MB="1",
        )
        if "RAG_CACHE_DIR" in os.environ:
            env["RAG_CACHE_DIR"] = os.environ["RAG_CACHE_DIR"]
        self.log_path = folder / "server.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rag", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, seconds: float = 300) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("rag serve exited:\n" + self.log_path.read_text()[-3000:])
            try:
                if self.request("GET", "/readyz", timeout=5).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("rag serve was not ready in time:\n" + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group: its PDF readers
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def request(self, method, path, body=None, headers=None, source="127.0.0.1", key=True, timeout=120) -> Reply:
        """One request on a connection of its own, from ``source``, with the key unless ``key`` is False."""
        headers = dict(headers or {})
        if key:
            headers["X-API-Key"] = self.key
        if isinstance(body, dict | list):
            body, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout, source_address=(source, 0))
        try:
            connection.request(method, path, body=body, headers=headers)
            reply = connection.getresponse()
            return Reply(reply.status, reply.headers, reply.read())
        finally:
            connection.close()

    def ask(self, **fields) -> Reply:
        return self.request("POST", "/api/ask", {**QUESTION, **fields})

    def upload(self, name: str, data: bytes, **options) -> Reply:
        """A multipart upload whose file name goes as UTF-8, byte for byte (controls included)."""
        boundary = secrets.token_hex(16)
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.request("POST", "/api/documents", body, kind, **options)

    def text(self, document: str) -> str | None:
        reply = self.request("GET", f"/api/documents/{urllib.parse.quote(document)}")
        return reply.json()["text"] if reply.status == 200 else None

    def uploads(self) -> set[str]:
        """Every file and folder under uploads/, relative to the index folder."""
        return {str(p.relative_to(self.index_dir)) for p in (self.index_dir / "uploads").rglob("*")}

    def tracebacks(self) -> list[str]:
        """The last line of each traceback in the server's log so far: the exception."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        starts = [number for number, line in enumerate(lines) if line.startswith("Traceback")]
        return [next((line for line in lines[start + 1 :] if not line.startswith(" ")), "?") for start in starts]

    def leftovers(self) -> list[str]:
        return [str(p.relative_to(self.index_dir)) for p in self.index_dir.rglob(".tmp-*")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


CHECKS = []  # (name, function, whether it needs the server), in the order they run


def check(name: str, server: bool = True):
    """Registers a finding's replay: a function of the server that returns (what it did, held);
    held None: skipped."""

    def register(function):
        CHECKS.append((name, function, server))
        return function

    return register


def refused(reply: Reply, status: int, *words: str) -> bool:
    detail = reply.body.decode(errors="replace")
    return reply.status == status and all(word in detail for word in words)


# Hostile documents


@check("markdown list and quote nested 30 deep")
def markdown_30(server):
    reply = server.upload("deep30.md", (deep_list(30) + "\n" + deep_quote(30)).encode())
    text = server.text(reply.json()["id"]) if reply.status == 201 else None
    kept = text is not None and "item 29" in text and text.endswith("The end of the document.")
    return f"{reply}; text after the deep parts {'kept' if kept else 'LOST'}", reply.status == 201 and kept


@check("markdown list nested 150 deep")
def markdown_150(server):
    reply = server.upload("deep150.md", deep_list(150).encode())
    return str(reply), refused(reply, 422, "nested")


@check("html of 300 nested divs")
def html_300(server):
    reply = server.upload("divs.html", deep_html("<div>", "</div>", 300).encode())
    if reply.status == 201:
        text = server.text(reply.json()["id"]) or ""
        return f"{reply}; kept whole: {'The deepest text.' in text}", "The deepest text." in text
    return str(reply), refused(reply, 422, "nested")


# Kept uploads

TWIN = b"Les abeilles butinent le colza au printemps. Les apiculteurs comptent leurs ruches."


@check("identical bytes under two names, one deleted")
def twins(server):
    first, second = server.upload("twin-a.txt", TWIN), server.upload("twin-b.txt", TWIN)
    deleted = server.request("DELETE", "/api/documents/twin-a")
    text = server.text("twin-b")
    kept = [p for p in server.uploads() if p.endswith("/twin-b.txt")]
    what = f"{first.status}, {second.status}, delete {deleted.status}; twin-b's text {text is not None}, file {kept}"
    return what, (first.status, second.status, deleted.status) == (201, 201, 204) and text == TWIN.decode() and kept


@check("orphans and .tmp-* swept by the next build")
def orphans(server):
    stray = server.index_dir / "uploads" / "0123456789abcdef"
    stray.mkdir(parents=True, exist_ok=True)
    planted = [stray / "orphan.txt", stray / ".tmp-0a1b2c3d4e5f", server.index_dir / ".tmp-0a1b2c3d4e5f"]
    for path in planted:
        path.write_bytes(b"left by a killed writer")
    reply = server.upload("sweep.txt", b"The river Rhine flows through Basel, where ferries cross it.")
    left = [str(p.relative_to(server.index_dir)) for p in [*planted, stray] if p.exists()]
    return f"{reply.status}; left: {left or 'none'}", reply.status == 201 and not left


# PDFs


@check("pdf: 1,000 pages drawing one 70 MB stream")
def pdf_bomb(server):
    data = shared_stream_pdf(1000, LINE * (70_000_000 // len(LINE)))
    started = time.monotonic()
    reply = server.upload("bomb.pdf", data)
    seconds = time.monotonic() - started
    after = server.upload("after.pdf", shared_stream_pdf(1, LINE))
    what = f"{len(data):,} B file: {reply} in {seconds:.1f} s; next upload {after.status}"
    return what, refused(reply, 422, "limit") and seconds < 10 and after.status != 409


@check("pdf: declared xref size 99,999,999")
def pdf_declared_size(server):
    reply = server.upload("declared.pdf", HOSTILE["declared size"][0])
    return str(reply), reply.status == 422


@check("pdf: arrays nested 5,000 deep")
def pdf_nested_arrays(server):
    reply = server.upload("nested.pdf", HOSTILE["nested arrays"][0])
    return str(reply), reply.status == 422


@check("2 MB line without a sentence end", server=False)
def long_line(server):
    return "skipped: minutes of CPU; see benchmarks/hostile_documents.py", None


# Slow readers


def slow_reader(server, requests: int = 60) -> socket.socket:
    """A client from 127.0.0.2 that asks for the article ``requests`` times (pipelined: about
    330 KB of answers) and reads none of it; a small window keeps the kernel's buffers small."""
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    reader.bind(("127.0.0.2", 0))
    reader.connect(("127.0.0.1", server.port))
    ask = f"GET /api/documents/{SEED_ID} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {server.key}\r\n\r\n"
    reader.sendall(ask.encode() * requests)
    return reader


def open_connections(readers) -> int:
    return sum(reader.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == ESTABLISHED for reader in readers)


@check("100 slow readers from 127.0.0.2")
def slow_readers(server):
    readers, logged = [], len(server.tracebacks())
    try:
        for _ in range(100):
            readers.append(slow_reader(server))
        answered = [select.select([reader], [], [], 10)[0] and reader.recv(12, socket.MSG_PEEK) for reader in readers]
        served, capped = answered.count(b"HTTP/1.1 200"), answered.count(b"HTTP/1.1 503")
        started = time.monotonic()
        ask = server.ask()
        asked = time.monotonic() - started
        deadline = started + 4 * WRITE_SECONDS + 10  # cut off within two deadlines, on a loaded machine
        while open_connections(readers) and time.monotonic() < deadline:
            time.sleep(0.2)
        still, closed = open_connections(readers), time.monotonic() - started
        time.sleep(0.5)  # for the log
        what = (
            f"{served} answered, {capped} 503 (cap); /api/ask {ask.status} in {asked:.1f} s; "
            f"{still} still open {closed:.1f} s later; {len(server.tracebacks()) - logged} traceback(s) logged"
        )
        return what, served + capped == len(readers) and ask.status == 200 and still == 0
    finally:
        for reader in readers:
            reader.close()


# 4xx, not 5xx

DEEP = "[" * 1000 + "]" * 1000


@check("top_k of 400 digits")
def top_k(server):
    body = json.dumps(QUESTION)[:-1] + ', "top_k": 1' + "0" * 399 + "}"
    reply = server.request("POST", "/api/ask", body.encode(), {"Content-Type": "application/json"})
    return str(reply), refused(reply, 422, "top_k")


@check("page form with a history nested 2,000 deep")
def page_history(server):
    form = urllib.parse.urlencode({"question": "Who?", "history": "[" * 2000 + "]" * 2000}).encode()
    reply = server.request("POST", "/", form, {"Content-Type": "application/x-www-form-urlencoded"})
    words = "the conversation sent with the question cannot be read"
    return f"{reply.status}; says {words!r}: {words in reply.body.decode()}", refused(reply, 422, words)


@check("file name over 255 bytes")
def long_name(server):
    before = server.uploads()
    reply = server.upload("é" * 196 + ".txt", TWIN)
    new = server.uploads() - before
    return f"{reply}; new under uploads/: {len(new)}", refused(reply, 422, "255") and not new


@check("file name with U+202E")
def bidi_name(server):
    reply = server.upload("invoice\u202etxt.md", TWIN)
    return str(reply), refused(reply, 422, "U+202E")


@check("file name with a newline")
def newline_name(server):
    reply = server.upload("line\nbreak.txt", TWIN)
    return str(reply), refused(reply, 422, "U+000A")


@check("30 concurrent uploads and deletes of one name")
def race(server):
    start = threading.Barrier(30, timeout=30)

    def attempt(method):
        start.wait()
        if method == "POST":
            return server.upload("race.txt", b"A race of uploads and deletes, all of one name.")
        return server.request("DELETE", "/api/documents/race")

    with ThreadPoolExecutor(30) as pool:
        replies = list(pool.map(attempt, ["POST"] * 20 + ["DELETE"] * 10))
    statuses = sorted({reply.status for reply in replies})
    counts = {status: sum(reply.status == status for reply in replies) for status in statuses}
    bare = [r for r in replies if r.status == 409 and not r.headers.get("Retry-After")]
    left = server.leftovers()
    what = f"statuses {counts}; 409 without Retry-After {len(bare)}; .tmp-* left {len(left)}"
    return what, set(statuses) <= {201, 204, 404, 409} and not bare and not left


@check("json nested 1,000 deep to /api/ask")
def deep_json_api(server):
    body = '{"question": "x", "history": ' + DEEP + "}"
    reply = server.request("POST", "/api/ask", body.encode(), {"Content-Type": "application/json"})
    return str(reply), refused(reply, 422, "nested too deep")


@check("json nested 1,000 deep to /v1/chat/completions")
def deep_json_v1(server):
    body = '{"model": "rag", "messages": ' + DEEP + "}"
    reply = server.request("POST", "/v1/chat/completions", body.encode(), {"Content-Type": "application/json"})
    shaped = reply.status == 400 and isinstance(reply.json().get("error"), dict)
    return str(reply), shaped and "nested too deep" in reply.detail(200)


# Access


def cookie(reply: Reply) -> str:
    """The session cookie's name=value from a Set-Cookie header."""
    return next((c.split(";")[0] for c in reply.headers.get_all("Set-Cookie") or [] if "rag_session=" in c), "")


@check("sign-out ends the session")
def signout(server):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    signin = server.request("POST", "/signin", urllib.parse.urlencode({"key": server.key}).encode(), form, key=False)
    session = {"Cookie": cookie(signin)}
    before = server.request("GET", "/", headers=session, key=False)
    out = server.request("POST", "/signout", headers=session, key=False)
    page = server.request("GET", "/", headers=session, key=False)
    api = server.request("POST", "/api/ask", QUESTION, session, key=False)
    what = f"sign-in {signin.status}, page {before.status}, sign-out {out.status}; "
    what += f"old cookie: page {page.status}, api {api.status}"
    ok = signin.status == 303 and session["Cookie"] and before.status == 200 and out.status == 303
    return what, ok and refused(page, 401, 'name="key"') and api.status == 401


@check("6 wrong keys from one address")
def wrong_keys(server):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    wrong = urllib.parse.urlencode({"key": "wrong"}).encode()
    replies = [server.request("POST", "/signin", wrong, form, source="127.0.0.9", key=False) for _ in range(6)]
    wait = replies[-1].headers.get("Retry-After")
    other = server.request("GET", "/api/documents")
    what = f"{[r.status for r in replies]}, Retry-After {wait}; 127.0.0.1 with the key: {other.status}"
    return what, [r.status for r in replies] == [401] * 5 + [429] and wait and other.status == 200


@check("a 3-character RAG_API_KEY", server=False)
def short_key(server):
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "RAG_API_KEY": "abc", "RAG_INDEX_DIR": str(Path(folder) / "index"), "HF_HUB_OFFLINE": "1"}
        command = [sys.executable, "-m", "rag", "serve", "--port", str(free_port())]
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    what = f"exit {done.returncode}, {len(lines)} line(s): {' '.join(lines)[:60]!r}"
    return what, done.returncode == 1 and len(lines) == 1 and "at least 16 characters" in lines[0]


# Protocol


@check("HEAD /v1/models, /signin, /page/documents")
def head(server):
    statuses = [server.request("HEAD", path).status for path in ("/v1/models", "/signin", "/page/documents")]
    return f"{statuses}", 405 not in statuses and all(status < 500 for status in statuses)


@check("PUT /v1/models")
def put_models(server):
    reply = server.request("PUT", "/v1/models")
    return f"{reply.status}, Allow {reply.headers.get('Allow')!r}", reply.status == 405 and reply.headers.get("Allow")


@check("/v1 body over 64 KiB")
def big_v1_body(server):
    reply = server.request("POST", "/v1/chat/completions", b"x" * 70_000, {"Content-Type": "application/json"})
    shaped = reply.status == 413 and isinstance(reply.json().get("error"), dict)
    return str(reply), shaped


@check("upload of RAG_MAX_UPLOAD_MB + 1 byte")
def big_upload(server):
    reply = server.upload("over.txt", b"x" * (1024 * 1024 + 1))
    return str(reply), reply.status == 413


@check("malformed request line")
def malformed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(b"NOT A REQUEST LINE\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").lower()
    status = head.split("\r\n", 1)[0]
    headers = [name for name in ("content-security-policy", "x-content-type-options") if f"\r\n{name}:" in head]
    return f"{status!r}; {', '.join(headers) or 'no security headers'}", " 400 " in status and len(headers) == 2


@check("full or read-only disk", server=False)
def full_disk(server):
    return "skipped: needs root for a real mount; see benchmarks/full_disk.py", None


# Integrity: last, as the server stays not ready until a new build.


@check("tokens.i8 of the live build changed")
def damaged_tokens(server):
    tokens = server.index_dir / (server.index_dir / "CURRENT").read_text().strip() / "tokens.i8"
    with open(tokens, "r+b") as handle:  # every 7th byte inverted, in place: the server's open file sees it
        data = bytearray(handle.read())
        data[::7] = bytes(b ^ 0xFF for b in data[::7])
        handle.seek(0)
        handle.write(data)
    ask, ready = server.ask(), server.request("GET", "/readyz")
    what = f"ask {ask}, Retry-After {ask.headers.get('Retry-After')}; /readyz {ready.status}"
    return what, refused(ask, 503, "damaged", "rag index") and ready.status == 503


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="the server's port (default: a free one)")
    parser.add_argument("--only", metavar="NAME", help="replay only the findings whose name holds NAME")
    args = parser.parse_args()
    chosen = [c for c in CHECKS if not args.only or args.only.lower() in c[0].lower()]
    if not chosen:
        raise SystemExit(f"no finding's name holds {args.only!r}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the server is stopped then too

    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="rag-attacks-"))
    server = None
    rows = []
    try:
        if any(needs for _, _, needs in chosen):
            server = Server(folder, args.port)
            server.wait_ready()
            print(f"rag serve ready on 127.0.0.1:{server.port} after {time.monotonic() - started:.0f} s", flush=True)
        print(f"{'finding':<46} {'seconds':>7}  {'verdict':<8}  what the server did", flush=True)
        for name, function, _ in chosen:
            began = time.monotonic()
            try:
                what, held = function(server)
            except Exception as exc:  # a reset or a timed-out request is the server's answer too
                what, held = f"{type(exc).__name__}: {exc}"[:120], False
            verdict = "skipped" if held is None else "held" if held else "NOT HELD"
            rows.append(verdict)
            print(f"{name:<46} {time.monotonic() - began:>7.1f}  {verdict:<8}  {what}", flush=True)
        if server is not None:  # not a finding of issue 31: an attack should leave no traceback either
            log = server.log_path.read_text(errors="replace")
            errors = log.count('" 500 ')  # uvicorn's access log: "POST /api/ask HTTP/1.1" 500 ...
            tracebacks = server.tracebacks()
            rows.append("held" if not tracebacks and not errors else "NOT HELD")
            kinds = sorted({re.sub(r"0x[0-9a-f]+", "0x...", line)[:120] for line in tracebacks})
            what = f"{len(tracebacks)} traceback(s) {kinds}, {errors} answer(s) 500"
            print(f"{'server log: no traceback, no 500':<46} {'':>7}  {rows[-1]:<8}  {what}", flush=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    failed = rows.count("NOT HELD")
    print(
        f"{rows.count('held')} held, {failed} NOT HELD, {rows.count('skipped')} skipped "
        f"in {time.monotonic() - started:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
