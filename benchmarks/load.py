"""Load and soak of `rag serve` on 127.0.0.1; prints a table (and --json figures).

    .venv/bin/python benchmarks/load.py [--seconds 20] [--soak 5000]

Starts `rag serve` on a free loopback port (index: RAG_INDEX_DIR, built if missing). For 8
and then 32 concurrent clients, each with its own keep-alive connection, asks the questions
of eval/*.jsonl in turn for --seconds and reports throughput, p50, p99 and errors (any status
but 200, or a failed connection). Then a soak: --soak requests from 8 clients while the
server's resident memory is sampled; RSS after warm-up (the first tenth) is compared with
the highest and the last sample. Then --hostile questions of 1,000 random CJK, Hangul or
Cyrillic characters, from 8 clients, measured the same way. Everything stops by itself;
nothing leaves 127.0.0.1.

    .venv/bin/python benchmarks/load.py --seconds 10 --soak 0 --hostile 400   # hostile run only
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import threading
import time
from pathlib import Path

from hostile_questions import hostile_questions
from live_server import start_server

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def questions() -> list[str]:
    return [json.loads(line)["question"] for path in sorted((REPO / "eval").glob("*.jsonl")) for line in path.open()]


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process now (VmRSS) or at its peak (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


class Run:
    """``clients`` threads asking until ``deadline`` or until ``total`` requests were made;
    request n asks ``items[n % len(items)]`` (default: the eval questions)."""

    def __init__(
        self,
        port: int,
        clients: int,
        seconds: float | None = None,
        total: int | None = None,
        items: list[str] | None = None,
    ):
        self.port, self.items = port, items or questions()
        self.latencies: list[float] = []
        self.errors = 0
        self.issued = 0
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + seconds if seconds else None
        self.total = total
        started = time.perf_counter()
        threads = [threading.Thread(target=self.client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.seconds = time.perf_counter() - started

    def next_number(self) -> int | None:
        with self.lock:
            if (self.total is not None and self.issued >= self.total) or (
                self.deadline is not None and time.monotonic() >= self.deadline
            ):
                return None
            self.issued += 1
            return self.issued - 1

    def client(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while (count := self.next_number()) is not None:
            body = json.dumps({"question": self.items[count % len(self.items)]})
            started = time.perf_counter()
            try:
                connection.request("POST", "/api/ask", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            with self.lock:
                self.latencies.append(time.perf_counter() - started)
                self.errors += not ok
        connection.close()

    def figures(self) -> dict:
        cuts = statistics.quantiles(self.latencies, n=100)
        return {
            "requests": len(self.latencies),
            "seconds": round(self.seconds, 2),
            "throughput_per_s": round(len(self.latencies) / self.seconds, 1),
            "p50_ms": round(1000 * statistics.median(self.latencies), 1),
            "p99_ms": round(1000 * cuts[98], 1),
            "errors": self.errors,
        }


def soak(server: subprocess.Popen, port: int, total: int, items: list[str] | None = None) -> dict:
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append(rss_mib(server.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run = Run(port, clients=8, total=total, items=items)
    finally:
        done.set()
        sampler.join()
    warm = samples[max(1, len(samples) // 10)]
    return {
        **run.figures(),
        "rss_after_warmup_mib": round(warm, 1),
        "rss_max_mib": round(max(samples), 1),
        "rss_last_mib": round(samples[-1], 1),
        "rss_growth_percent": round(100 * (max(samples[len(samples) // 10 :]) - warm) / warm, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="length of each concurrency run")
    parser.add_argument("--soak", type=int, default=5000, help="requests in the soak (0: no soak)")
    parser.add_argument("--hostile", type=int, default=400, help="hostile questions (0: none)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    server, port = start_server()
    results: dict = {}
    try:
        Run(port, clients=2, total=20)  # warm-up, not counted
        for clients in (8, 32):
            results[f"clients_{clients}"] = Run(port, clients=clients, seconds=args.seconds).figures()
        if args.soak:
            results["soak"] = soak(server, port, args.soak)
        if args.hostile:
            results["hostile"] = soak(server, port, args.hostile, hostile_questions(args.hostile))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"{'run':12s} {'requests':>8s} {'req/s':>7s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>6s}")
    for name, figures in results.items():
        print(
            f"{name:12s} {figures['requests']:8d} {figures['throughput_per_s']:7.1f} "
            f"{figures['p50_ms']:8.1f} {figures['p99_ms']:8.1f} {figures['errors']:6d}"
        )
    for name in ("soak", "hostile"):
        if name in results:
            s = results[name]
            print(
                f"{name} RSS: {s['rss_after_warmup_mib']} MiB after warm-up, max {s['rss_max_mib']}, "
                f"last {s['rss_last_mib']} ({s['rss_growth_percent']:+.1f}% at most)"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
