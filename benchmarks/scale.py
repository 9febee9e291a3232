"""A corpus of 100,000+ sentences of real multilingual text, end to end, in FAISS and in Milvus.

    .venv/bin/python benchmarks/scale.py [--sentences 100000] [--questions 200] [--out FILE]

The corpus: the bundled article once, as it is, among the SQuAD 2.0 and XQuAD-R articles in
eval/ (English, German, Spanish), each article a .txt document, repeated until the corpus holds
``--sentences`` sentences; every repetition changes each sentence (two neighbouring words
swapped, or a word left out), and a sentence that would still repeat one already written is
left out, so nothing is an exact duplicate.

For each vector store it runs, in fresh processes: `rag index CORPUS` with its progress bar
(time, sentences per second, peak RSS), then `rag eval` on the bundled article's dev questions
(eval/dev.jsonl with eval/dev_offtopic.jsonl, and eval/dev_neartopic.jsonl) from inside the
corpus, then `rag serve`, where ``--questions`` questions (the dev questions and XQuAD-R's, in
turn, after one untimed pass over them all, so that the token vectors they read are in the page
cache for every store alike) are asked one at a time over HTTP for the /api/ask latency and
the server's memory (peak, and RssAnon: what no file backs). The stores: FAISS exact (flat),
FAISS HNSW, embedded Milvus (milvus-lite, in the server's process) flat and HNSW; each HNSW
index is built second, in the same folder as the flat one, so its vectors are reused, not
embedded again. The same evaluation of the article alone (the seeds, FAISS) is the reference.
Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from live_server import start_server
from memory import run_measured, status_mib

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "eval/squad2/train-subset.json", *sorted((REPO / "eval/xquad-r").glob("*.json"))]
STORES = {
    "FAISS flat": {"RAG_VECTOR_STORE": "faiss", "RAG_INDEX_TYPE": "flat"},
    "FAISS HNSW": {"RAG_VECTOR_STORE": "faiss", "RAG_INDEX_TYPE": "hnsw"},
    "Milvus flat (embedded)": {"RAG_VECTOR_STORE": "milvus", "RAG_INDEX_TYPE": "flat"},
    "Milvus HNSW (embedded)": {"RAG_VECTOR_STORE": "milvus", "RAG_INDEX_TYPE": "hnsw"},
}


def articles() -> list[tuple[str, list[str]]]:
    """(name, paragraphs) of every article of the question sets in eval/."""
    found = []
    for source in SOURCES:
        for number, article in enumerate(json.loads(source.read_text(encoding="utf-8"))["data"]):
            paragraphs = [" ".join(p["context"].split()) for p in article["paragraphs"]]
            found.append((f"{source.stem}-{number:03d}", paragraphs))
    return found


def split(path: Path) -> list[list[str]]:
    """The sentences of each paragraph of a text file, as rag segments them."""
    from rag.ingest.discover import read_document
    from rag.ingest.segment import split_sentences

    document = read_document(path)
    paragraphs: dict[int, list[str]] = {}
    for sentence in split_sentences(document):
        paragraphs.setdefault(sentence.paragraph, []).append(document.text[sentence.start : sentence.end])
    return list(paragraphs.values())


def changed(sentence: str, rng: random.Random) -> str:
    words = sentence.split(" ")
    if len(words) < 3:
        return sentence + " " + words[-1]
    position = rng.randrange(len(words) - 1)
    if rng.random() < 0.5:
        words[position], words[position + 1] = words[position + 1], words[position]
    else:
        del words[position]
    return " ".join(words)


def write_corpus(folder: Path, target: int) -> int:
    """The corpus in ``folder``; returns the number of sentences written."""
    folder.mkdir(parents=True)
    written = set()
    for seed in (REPO / "seeds").iterdir():
        shutil.copy(seed, folder / seed.name)
        written.update(sentence for paragraph in split(seed) for sentence in paragraph)
    originals = []
    for name, paragraphs in articles():
        path = folder / f"{name}-0.txt"
        path.write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
        originals.append((name, split(path)))
        path.unlink()
    rng = random.Random(20261124)  # a reproducible corpus
    copy = 0
    while len(written) < target:
        for name, paragraphs in originals:
            lines = []
            for sentences in paragraphs:
                kept = []
                for sentence in sentences:
                    variant = sentence if copy == 0 else changed(sentence, rng)
                    if variant not in written:
                        written.add(variant)
                        kept.append(variant)
                lines.append(" ".join(kept))
            (folder / f"{name}-{copy}.txt").write_text("\n".join(line for line in lines if line) + "\n", "utf-8")
            if len(written) >= target:
                break
        copy += 1
    return len(written)


def evaluate(env: dict) -> dict:
    """hit@1 and abstentions on the bundled article's dev questions, from the index of ``env``."""
    figures = {}
    for key, files in {
        "dev": ["eval/dev.jsonl", "--offtopic", "eval/dev_offtopic.jsonl"],
        "neartopic": ["eval/dev_neartopic.jsonl"],
    }.items():
        done = subprocess.run(
            [sys.executable, "-m", "rag", "eval", *files, "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        figures[key] = json.loads(done.stdout)
    dev, near = figures["dev"], figures["neartopic"]
    return {
        "hit1": f"{round(dev['hit1'] * dev['questions'])}/{dev['questions']}",
        "offtopic_abstained": _abstained(dev),
        "neartopic_abstained": _abstained(near),
    }


def _abstained(figures: dict) -> str:
    return f"{round(figures['abstention_recall'] * figures['offtopic_questions'])}/{figures['offtopic_questions']}"


def latency_questions() -> list[str]:
    questions = [json.loads(line)["question"] for line in (REPO / "eval/dev.jsonl").read_text().splitlines() if line]
    for source in sorted((REPO / "eval/xquad-r").glob("*.json")):
        for article in json.loads(source.read_text(encoding="utf-8"))["data"][:5]:
            questions += [q["question"] for p in article["paragraphs"] for q in p["qas"]][:10]
    return questions


def serve(env: dict, questions: int) -> dict:
    """/api/ask latency over HTTP, one question at a time, and the server's memory."""
    server, port = start_server(env)
    try:
        ready = status_mib(server.pid)
        pool = latency_questions()
        seconds = []
        for number in range(len(pool) + questions):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/ask",
                data=json.dumps({"question": pool[number % len(pool)]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
            if number >= len(pool):
                seconds.append(time.perf_counter() - started)
        cuts = statistics.quantiles(seconds, n=20)
        return {
            "p50_ms": round(1000 * statistics.median(seconds), 1),
            "p95_ms": round(1000 * cuts[18], 1),
            "rss_ready_mib": round(ready),
            "rss_peak_mib": round(status_mib(server.pid)),
            "rss_anonymous_mib": round(status_mib(server.pid, "RssAnon")),
        }
    finally:
        server.terminate()
        server.wait(timeout=60)


def build(env: dict, corpus: Path) -> dict:
    code, peak_mib, output = run_measured([sys.executable, "-m", "rag", "index", str(corpus)], env)
    if code != 0:
        raise SystemExit(f"rag index failed:\n{output[-3000:]}")
    found = re.search(r"Indexed (\d+) documents?, (\d+) sentences .* in ([\d.]+) s", output)
    embedded = re.search(r"Embedded (\d+);", output)
    sentences, seconds = int(found.group(2)), float(found.group(3))
    progress = [line for line in output.replace("\r", "\n").splitlines() if line.startswith("Embedding:")]
    return {
        "documents": int(found.group(1)),
        "sentences": sentences,
        "embedded": int(embedded.group(1)) if embedded else sentences,
        "build_s": seconds,
        "sentences_per_s": round(sentences / seconds, 1),
        "build_peak_mib": round(peak_mib),
        "progress_bar": progress[-1] if progress else "",
    }


def disk_mb(index_dir: Path) -> float:
    """The live generation's folder and, with Milvus, the embedded database."""
    live = sorted(index_dir.glob("gen-*"))[-1]
    paths = [*live.rglob("*"), *(index_dir / "milvus.db").rglob("*")]
    return round(sum(p.stat().st_size for p in paths if p.is_file()) / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=200, help="timed /api/ask calls per store")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rag-scale-"))
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_SEEDS_DIR": str(REPO / "seeds")}
    results = []
    try:
        corpus = work / "corpus"
        print(f"corpus: {write_corpus(corpus, args.sentences)} sentences in {len(list(corpus.iterdir()))} files")
        alone = {**base, "RAG_INDEX_DIR": str(work / "alone")}
        build(alone, REPO / "seeds")
        reference = {"store": "article alone (FAISS flat)", **evaluate(alone), **serve(alone, args.questions)}
        print(json.dumps(reference), flush=True)
        for name, settings in STORES.items():
            index_dir = work / settings["RAG_VECTOR_STORE"]
            env = {**base, **settings, "RAG_INDEX_DIR": str(index_dir)}
            figures = {"store": name, **build(env, corpus), "disk_mb": disk_mb(index_dir)}
            figures.update(evaluate(env))
            figures.update(serve(env, args.questions))
            print(json.dumps(figures), flush=True)
            results.append(figures)
            if settings["RAG_INDEX_TYPE"] == "hnsw":  # the store's last build: its disk is free again
                shutil.rmtree(index_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        "\n| store | sentences | build | sentences/s | build peak | disk | server RSS peak / anonymous "
        "| /api/ask p50 / p95 | dev hit@1 | off-topic / near-topic abstained |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for f in results:
        print(
            f"| {f['store']} | {f['sentences']:,} | {f['build_s']:.0f} s ({f['embedded']:,} embedded) | "
            f"{f['sentences_per_s']:.0f} | {f['build_peak_mib']} MiB | {f['disk_mb'] / 1000:.1f} GB | "
            f"{f['rss_peak_mib']} / {f['rss_anonymous_mib']} MiB | {f['p50_ms']} / {f['p95_ms']} ms | {f['hit1']} | "
            f"{f['offtopic_abstained']} / {f['neartopic_abstained']} |"
        )
    print(
        f"| {reference['store']} | | | | | | {reference['rss_peak_mib']} / {reference['rss_anonymous_mib']} MiB | "
        f"{reference['p50_ms']} / {reference['p95_ms']} ms | {reference['hit1']} | "
        f"{reference['offtopic_abstained']} / {reference['neartopic_abstained']} |"
    )
    if args.out:
        args.out.write_text(json.dumps({"reference": reference, "stores": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
