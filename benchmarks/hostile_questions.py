"""Memory and time under questions no one would ask: 1,000 random CJK, Hangul or Cyrillic
characters each, embedded one after another by the default embedder, as the server would.

    .venv/bin/python benchmarks/hostile_questions.py [--questions 400]

Prints the process's resident memory (RSS) before and every 100 questions, and the time taken.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.embed.factory import create_embedder
from rag.settings import Settings

SCRIPTS = [(0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x0400, 0x04FF)]  # CJK, Hangul, Cyrillic


def rss_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def hostile_questions(count: int, seed: int = 0) -> list[str]:
    """``count`` questions of 1,000 random characters each, the scripts in turn."""
    rng = random.Random(seed)
    return [
        "".join(chr(rng.randint(*SCRIPTS[number % len(SCRIPTS)])) for _ in range(1000))
        for number in range(1, count + 1)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=400)
    args = parser.parse_args()
    embedder = create_embedder(Settings.from_env())
    embedder.encode_queries(["What did Putin demand?"])  # loaded and warm
    print(f"before: {rss_mib()} MiB")
    started = time.perf_counter()
    for number, question in enumerate(hostile_questions(args.questions), start=1):
        embedder.encode_queries([question])
        if number % 100 == 0 or number == args.questions:
            print(f"after {number}: {rss_mib()} MiB, {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
