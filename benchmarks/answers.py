"""Answer latency, in process and over HTTP, on the question sets; prints a table.

    .venv/bin/python benchmarks/answers.py [--rounds 3]

Starts `rag serve` on a free port of 127.0.0.1 (index: RAG_INDEX_DIR, built if missing), asks
every question of eval/*.jsonl one at a time, --rounds times, and times each answer; then does
the same in this process through the engine. Prints median and 95th percentile of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request
from pathlib import Path

from live_server import start_server

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def questions() -> list[str]:
    return [json.loads(line)["question"] for path in sorted((REPO / "eval").glob("*.jsonl")) for line in path.open()]


def post(url: str, question: str) -> None:
    request = urllib.request.Request(url, data=json.dumps({"question": question}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def timed(call, items: list[str], rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        for item in items:
            started = time.perf_counter()
            call(item)
            seconds.append(time.perf_counter() - started)
    return seconds


def summary(label: str, seconds: list[float]) -> str:
    p95 = statistics.quantiles(seconds, n=20)[-1]
    return f"{label:42s} {1000 * statistics.median(seconds):8.1f} {1000 * p95:8.1f} {len(seconds):6d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    items = questions()
    server, port = start_server()
    base = f"http://127.0.0.1:{port}"
    try:
        over_http = timed(lambda q: post(base + "/api/ask", q), items, rounds)
    finally:
        server.terminate()
        server.wait(timeout=30)

    from rag.engine import Engine
    from rag.settings import Settings

    engine = Engine(Settings.from_env())
    engine.answer("warm-up")
    in_process = timed(engine.answer, items, rounds)
    print(f"{'what':42s} {'p50 ms':>8s} {'p95 ms':>8s} {'n':>6s}")
    print(summary("one answer in process (engine.answer)", in_process))
    print(summary("one answer over HTTP, one client", over_http))


if __name__ == "__main__":
    main()
