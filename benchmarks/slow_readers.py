"""Slow readers against `rag serve`'s server: clients that ask for a 3 MB document and read none
of it. Prints the server's resident memory (RSS), whether a client from another address still
gets answers, and how many slow readers still hold a connection after the write deadline.

    .venv/bin/python benchmarks/slow_readers.py [--readers 255] [--addresses 1]
        [--per-client 64] [--write-seconds 10]   # the defaults, as RAG_MAX_CONNECTIONS_PER_CLIENT, RAG_WRITE_SECONDS
    .venv/bin/python benchmarks/slow_readers.py --per-client 0 --write-seconds 3600   # as before: no cap, no deadline

The server runs in a child process on the fake embedder of the tests (an index of one 3 MB
document, built first: about 15 s) with RAG_MAX_CONNECTIONS 256. Readers connect from
127.0.0.2 (or --addresses of 127.0.0.2 on), each with a 4 KiB receive buffer and 536-byte
segments, so that the kernel holds little and the server's own buffers hold the rest; at the
end one steady reader takes the document at about 250 KB/s, longer than the write deadline.
Everything stays on 127.0.0.1/8 and stops by itself."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DOCUMENT_MB = 3
LINE = "Sentence {} tells of the river Rhine, its barges and the many bridges of Basel.\n"


def serve(index_dir: Path, port: int, per_client: int, write_seconds: int) -> None:
    """The child: build the index (one 3 MB document) if needed and serve it as `rag serve` would."""
    import uvicorn

    from rag.engine import Engine
    from rag.http.app import create_app
    from rag.http.protocol import server_config
    from rag.settings import Settings
    from tests.conftest import FakeEmbedder

    seeds = index_dir.parent / "seeds"
    seeds.mkdir(exist_ok=True)
    lines = DOCUMENT_MB * 1024 * 1024 // len(LINE.format(0))
    (seeds / "rhine.txt").write_text("".join(LINE.format(number) for number in range(lines)))
    settings = Settings(
        embedding_model="fake",
        backend="fake",
        index_dir=index_dir,
        seeds_dir=seeds,
        max_connections_per_client=per_client,
        write_seconds=write_seconds,
    )
    engine = Engine(settings, embedder=FakeEmbedder())
    uvicorn.Server(server_config(create_app(engine), settings, "127.0.0.1", port)).run()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def ask(port: int, path: str = "/api/ask") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if path == "/api/ask":
            body = json.dumps({"question": "Which bridges does the Rhine pass?"})
            connection.request("POST", path, body, {"Content-Type": "application/json"})
        else:
            connection.request("GET", path)
        reply = connection.getresponse()
        reply.read()
        return reply.status
    except OSError:
        return 0
    finally:
        connection.close()


def slow_reader(port: int, address: str, document: str) -> socket.socket:
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    reader.bind((address, 0))
    reader.connect(("127.0.0.1", port))
    reader.sendall(f"GET /api/documents/{document} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return reader


def holding(readers: list[socket.socket]) -> int:
    """Readers whose connection is still open (TCP_INFO's state 1: established)."""
    return sum(reader.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == 1 for reader in readers)


def steady_read(port: int, document: str, per_second: int = 250_000) -> tuple[int, float]:
    """(bytes received, seconds) of one reader that takes ``per_second`` bytes a second until the end."""
    with slow_reader(port, "127.0.0.3", document) as reader:
        started, received, head, expected = time.monotonic(), 0, b"", None
        while expected is None or received < expected:
            try:
                chunk = reader.recv(16384)
            except OSError:  # reset: cut off
                break
            if not chunk:
                break
            received += len(chunk)
            if expected is None:
                head += chunk
                if b"\r\n\r\n" in head:
                    length = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
                    expected = head.index(b"\r\n\r\n") + 4 + int(length.split(b":")[1])
            time.sleep(max(0.0, started + received / per_second - time.monotonic()))
    return received, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=255)
    parser.add_argument("--addresses", type=int, default=1, help="client addresses the readers come from, 1 to 250")
    parser.add_argument("--per-client", type=int, default=64)
    parser.add_argument("--write-seconds", type=int, default=10)
    parser.add_argument("--serve", nargs=2, metavar=("INDEX_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(Path(args.serve[0]), int(args.serve[1]), args.per_client, args.write_seconds)

    with tempfile.TemporaryDirectory() as folder, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        options = ["--per-client", str(args.per_client), "--write-seconds", str(args.write_seconds)]
        command = [sys.executable, __file__, *options, "--serve", str(Path(folder) / "index"), str(port)]
        # Its log (a line a request) is left out.
        server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        readers: list[socket.socket] = []
        try:
            deadline = time.monotonic() + 300
            while ask(port, "/readyz") != 200:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
            listing = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            listing.request("GET", "/api/documents")
            document = json.loads(listing.getresponse().read())["documents"][0]["id"]
            listing.close()
            assert ask(port, f"/api/documents/{document}") == 200  # warm-up: the document read once
            print(f"per client {args.per_client or 'no cap'}, write deadline {args.write_seconds} s")
            print(f"RSS before: {rss_mib(server.pid):.0f} MiB")
            for number in range(args.readers):
                readers.append(slow_reader(port, f"127.0.0.{2 + number % args.addresses}", document))
            time.sleep(3)
            held = f"{args.readers} slow readers from {args.addresses} address(es)"
            print(f"RSS with {held}: {rss_mib(server.pid):.0f} MiB")
            print(f"  holding a connection: {holding(readers)}; /api/ask from 127.0.0.1: {ask(port)}")
            # The first check may see the kernel take a little more of the answer (its buffer
            # grows at first): cut off at the second, within twice the deadline; or 33 s.
            later = min(2 * args.write_seconds, 30) + 3
            time.sleep(later)
            print(f"RSS {later} s later: {rss_mib(server.pid):.0f} MiB")
            print(f"  holding a connection: {holding(readers)}; /api/ask from 127.0.0.1: {ask(port)}")
            if args.write_seconds < 60:
                received, seconds = steady_read(port, document)
                print(f"a steady reader at 250 KB/s: {received / 1e6:.2f} MB in {seconds:.1f} s")
        finally:
            for reader in readers:
                reader.close()
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
