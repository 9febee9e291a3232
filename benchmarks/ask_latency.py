"""`rag ask` as a newcomer meets it: each run a new process, started from a sub-folder of a
project whose index/ was built first (`rag index`). Prints the median wall time of N runs,
then where one process's time goes (medians of N more): imports, loading the index, the
model and the language identifier, the answer, and the rest (the interpreter's start and exit).

    .venv/bin/python benchmarks/ask_latency.py [--runs 5] [--question "Who met Vladimir Putin?"]

Needs the default model (built into the cache once); the project is a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# One process's time, as `rag ask` spends it, measured from inside.
SPLIT = """
import json, sys, time
times = [time.perf_counter()]
from rag.engine import Engine
from rag.ingest.language import probabilities
from rag.settings import Settings
times.append(time.perf_counter())
engine = Engine(Settings.from_env())
engine.index
times.append(time.perf_counter())
engine.embedder
times.append(time.perf_counter())
probabilities("a question")
times.append(time.perf_counter())
engine.answer(sys.argv[1])
times.append(time.perf_counter())
names = ["import", "load the index", "load the model", "load the language identifier", "answer"]
print(json.dumps({name: end - start for name, start, end in zip(names, times, times[1:])}))
"""


def run(command: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return seconds, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default="Who met Vladimir Putin?")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "RAG_INDEX_DIR"}  # found as git finds .git
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", RAG_SEEDS_DIR=str(REPO / "seeds"))
    with tempfile.TemporaryDirectory(prefix="rag-ask-") as folder:
        project = Path(folder)
        below = project / "notes" / "drafts"
        below.mkdir(parents=True)
        seconds, _ = run([sys.executable, "-m", "rag", "index", "-q"], project, env)
        print(f"rag index: {seconds:.2f} s")
        asks = [run([sys.executable, "-m", "rag", "ask", args.question], below, env)[0] for _ in range(args.runs)]
        print(f"rag ask from a sub-folder, median of {args.runs}: {statistics.median(asks):.2f} s")
        print("  runs: " + " ".join(f"{s:.2f}" for s in asks))
        walls, parts = [], []
        for _ in range(args.runs):
            seconds, out = run([sys.executable, "-c", SPLIT, args.question], below, env)
            walls.append(seconds)
            parts.append(json.loads(out))
        split = {name: statistics.median(p[name] for p in parts) for name in parts[0]}
        split["start, exit"] = statistics.median(walls) - sum(split.values())
        print("where one process's time goes (medians; the split exits as Python does, `rag` skips the freeing):")
        for name, seconds in split.items():
            print(f"  {name:30} {seconds:.3f} s")


if __name__ == "__main__":
    main()
