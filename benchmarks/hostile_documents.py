"""Time and peak memory of `rag index` on documents built to be costly: one line of words with
no sentence end, a Markdown table 100,000 columns wide, and one 10 MB line (an upload's size).

    .venv/bin/python benchmarks/hostile_documents.py [--cases line-2mb table-100k line-10mb] [--timeout 300]

Each case is written to a temporary folder and indexed by `rag index FILE` with the default
model, in a fresh process with its own temporary RAG_INDEX_DIR; prints the seconds it took, its
peak resident memory (``wait4``'s ru_maxrss) and the last line it printed (the summary, or the
one-line refusal). A process still running after ``--timeout`` seconds is killed and reported.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORDS = "the river city council budget report water station north market school year people".split()


def words(characters: int, seed: int = 0) -> str:
    """Words separated by spaces, about ``characters`` long, with no sentence end."""
    rng = random.Random(seed)
    out: list[str] = []
    length = 0
    while length < characters:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)


def write_line(path: Path, megabytes: float) -> Path:
    path.write_text(words(int(megabytes * 1_000_000)) + "\n", encoding="utf-8")
    return path


def write_table(path: Path, columns: int) -> Path:
    """A header row, its delimiter row and one row of words, ``columns`` cells each."""
    rng = random.Random(0)
    header = "| " + " | ".join(f"c{number}" for number in range(columns)) + " |"
    delimiter = "|" + "---|" * columns
    row = "| " + " | ".join(rng.choice(WORDS) for _ in range(columns)) + " |"
    path.write_text(f"{header}\n{delimiter}\n{row}\n", encoding="utf-8")
    return path


CASES = {
    "line-2mb": lambda folder: write_line(folder / "line-2mb.txt", 2),
    "table-100k": lambda folder: write_table(folder / "table-100k.md", 100_000),
    "line-10mb": lambda folder: write_line(folder / "line-10mb.txt", 10),
}


def run_measured(argv: list[str], env: dict, timeout: float) -> tuple[str, float, float, str]:
    """How the process ended, its seconds, its peak RSS in MiB and the last line it printed."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                process.send_signal(signal.SIGKILL)
                _, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        lines = [line.strip() for line in output.read().splitlines() if line.strip()]
    ended = f"killed after {timeout:.0f} s" if process.returncode == -signal.SIGKILL else f"exit {process.returncode}"
    return ended, seconds, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a run is killed")
    args = parser.parse_args()
    for case in args.cases:
        with tempfile.TemporaryDirectory() as folder:
            path = CASES[case](Path(folder))
            env = {**os.environ, "RAG_INDEX_DIR": str(Path(folder) / "index"), "HF_HUB_OFFLINE": "1"}
            ended, seconds, peak, last = run_measured(
                [sys.executable, "-m", "rag", "index", str(path)], env, args.timeout
            )
            size = path.stat().st_size / 1_000_000
            print(f"{case} ({size:.1f} MB): {ended}, {seconds:.1f} s, peak RSS {peak:.0f} MiB | {last[:160]}")


if __name__ == "__main__":
    main()
