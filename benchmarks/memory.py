"""Peak memory of `rag index` and `rag serve` against the size of the text indexed.

    .venv/bin/python benchmarks/memory.py [--sizes 1 5 20] [--questions 50] [--out FILE]

For each size (MB of UTF-8 text) it writes one .txt file of that size made of the SQuAD 2.0 and
XQuAD-R paragraphs in eval/ (English, German, Spanish; cycled when the size asks for more), runs
`rag index FILE` with the default model in a fresh process and reads that process's peak
resident memory (``wait4``'s ru_maxrss), then starts `rag serve` on that index, asks
``--questions`` questions over HTTP and reads the server's peak (VmHWM) and its anonymous
memory (RssAnon: the part no file backs; the memory-mapped vector index is in the page cache).
Also prints the build time and the index's size on disk. The folders are removed afterwards.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What did Putin demand?",
    "Who was the first president of the United States?",
    "Wann wurde die Universität gegründet?",
    "¿Cuál es la capital de Francia?",
    "How many people live in the city?",
]


def paragraphs() -> list[str]:
    """Every context paragraph of the public question sets in eval/, each once."""
    sources = [REPO / "eval/squad2/train-subset.json", *sorted((REPO / "eval/xquad-r").glob("*.json"))]
    found: dict[str, None] = {}
    for source in sources:
        for article in json.loads(source.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                found[" ".join(paragraph["context"].split())] = None
    return list(found)


def write_text(path: Path, megabytes: float) -> None:
    target = int(megabytes * 1_000_000)
    written = 0
    with open(path, "w", encoding="utf-8") as handle:
        for paragraph in itertools.cycle(paragraphs()):
            line = paragraph + "\n"
            handle.write(line)
            written += len(line.encode("utf-8"))
            if written >= target:
                return


def run_measured(argv: list[str], env: dict) -> tuple[int, float, str]:
    """Exit code, peak RSS in MiB and output of one process. (Linux counts in a child's peak the
    memory of the process it was forked from: this one, some 30 MiB, far below any figure here.)"""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024, output + f"\n({time.perf_counter() - started:.1f} s)"


def status_mib(pid: int, field: str = "VmHWM") -> float:
    """A memory figure of /proc/PID/status: VmHWM (peak resident), RssAnon (resident now, not
    backed by a file: what memory-mapped index files and the page cache do not count in)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def serve_peak(env: dict, port: int, questions: int) -> tuple[float, float, float]:
    """Peak RSS (MiB) of a server once ready and after ``questions`` questions, and its anonymous
    resident memory then."""
    server = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the server did not become ready")
        ready = status_mib(server.pid)
        for question in itertools.islice(itertools.cycle(QUESTIONS), questions):
            request = urllib.request.Request(
                base + "/api/ask",
                data=json.dumps({"question": question}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
        return ready, status_mib(server.pid), status_mib(server.pid, "RssAnon")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 5, 20], help="MB of text")
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--port", type=int, default=8131)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        work = Path(tempfile.mkdtemp(prefix="rag-memory-"))
        try:
            text = work / f"text-{size:g}mb.txt"
            write_text(text, size)
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX_DIR": str(work / "index")}
            code, build_mib, output = run_measured([sys.executable, "-m", "rag", "index", str(text)], env)
            if code != 0:
                raise SystemExit(f"rag index failed:\n{output}")
            disk = sum(p.stat().st_size for p in (work / "index").rglob("*") if p.is_file())
            ready_mib, serve_mib, anon_mib = serve_peak(env, args.port, args.questions)
            figures = {
                "text_mb": size,
                "build_peak_mib": round(build_mib),
                "serve_peak_ready_mib": round(ready_mib),
                "serve_peak_after_questions_mib": round(serve_mib),
                "serve_anonymous_after_questions_mib": round(anon_mib),
                "index_disk_mb": round(disk / 1e6),
                "build": [line for line in output.splitlines() if line.startswith(("Indexed", "("))],
            }
            print(json.dumps(figures), flush=True)
            results.append(figures)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print("\n| text | build peak | serve peak ready / after questions | serve anonymous | disk |")
    print("|---|---|---|---|---|")
    for f in results:
        print(
            f"| {f['text_mb']:g} MB | {f['build_peak_mib']} MiB | {f['serve_peak_ready_mib']} / "
            f"{f['serve_peak_after_questions_mib']} MiB | {f['serve_anonymous_after_questions_mib']} MiB | "
            f"{f['index_disk_mb'] / 1000:.1f} GB |"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
