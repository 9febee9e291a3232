"""rag's speed and memory beside txtai's, in one run; prints tables, writes JSON and a chart.

    .venv/bin/python benchmarks/performance.py [--scale 100000] [--requests 400]

1. Index build on seeds/: `rag index` in a new process, and the build alone with the model
   already loaded (median of 3): seconds and sentences per second.
2. Answers over HTTP: `rag serve` on a free 127.0.0.1 port, on that index; 1, 8 and 32
   concurrent clients, each request a question not asked before in this run (so no cache can
   answer); p50/p95/p99, throughput, errors; GET /healthz one at a time (the HTTP stack's own
   share); the server's resident memory when ready and at its peak. Then, in this process on
   the same index and questions, where an answer's time goes: embedding the question,
   identifying its language, the whole answer.
3. Baseline: txtai (sentence-transformers + FAISS) in this process, with the same model
   folder, prompts and sentences: `Embeddings.search` p50/p95/p99 on the same questions, one
   at a time; the ratio of rag's HTTP p50 to it.
4. Scale: --scale synthetic sentences (the article's, the background's and the questions'
   words, shuffled and mixed, in several languages) embedded with rag's model; FAISS flat
   against HNSW and IVF: build seconds, size, search p50 for one question, recall@10 against
   flat. --scale 0 skips it.

Writes benchmarks/results/performance.json and docs/performance.png (latency against
concurrency). Loopback only; everything stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent

from live_server import start_server  # noqa: E402
from load import Run, rss_mib  # noqa: E402

from rag.ingest.discover import load_documents  # noqa: E402
from rag.ingest.segment import split_sentences  # noqa: E402
from rag.settings import DEFAULT_MODEL, Settings  # noqa: E402

CONCURRENCY = (1, 8, 32)

SUBJECTS = {
    "en": ["Putin", "Witkoff", "Trump", "Zelensky", "the Kremlin", "Peskov", "Overchuk", "Ukraine", "Russia",
           "NATO", "the ceasefire", "the energy infrastructure", "the Black Sea", "Saint Petersburg",
           "the meeting", "the sanctions", "the peace talks", "Moscow", "Kyiv", "China", "the White House",
           "the envoy", "the war", "Europe", "the agreement"],
    "fr": ["Poutine", "Witkoff", "Trump", "Zelensky", "le Kremlin", "Peskov", "Overchuk", "l’Ukraine",
           "la Russie", "l’OTAN", "le cessez-le-feu", "les infrastructures énergétiques", "la mer Noire",
           "Saint-Pétersbourg", "la réunion", "les sanctions", "les pourparlers", "Moscou", "Kiev", "la Chine"],
    "de": ["Putin", "Witkoff", "Trump", "Selenskyj", "der Kreml", "Peskow", "die Ukraine", "Russland",
           "die NATO", "die Waffenruhe", "das Treffen", "die Sanktionen", "Moskau", "China"],
    "es": ["Putin", "Witkoff", "Trump", "Zelenski", "el Kremlin", "Ucrania", "Rusia", "la OTAN", "el alto el fuego",
           "la reunión", "las sanciones", "Moscú"],
}  # fmt: skip
TEMPLATES = {
    "en": ["What did {s} say?", "What did {s} demand?", "What happened with {s}?", "Who met {s}?",
           "Why is {s} mentioned?", "What is said about {s}?", "When did {s} act?", "What does {s} want?",
           "How did {s} react?", "What was agreed about {s}?", "Where was {s}?", "What did {s} refuse?",
           "{s}: what is new?", "What did {s} announce this week?", "Did {s} accept the proposal?",
           "What role does {s} play in the talks?"],
    "fr": ["Qu’a dit {s} ?", "Qu’a exigé {s} ?", "Que s’est-il passé avec {s} ?", "Qui a rencontré {s} ?",
           "Que dit l’article sur {s} ?", "Que veut {s} ?", "Comment {s} a-t-il réagi ?", "Où était {s} ?",
           "Qu’a annoncé {s} ?", "Quel rôle joue {s} ?"],
    "de": ["Was hat {s} gesagt?", "Was hat {s} gefordert?", "Wer hat {s} getroffen?", "Was will {s}?",
           "Was steht über {s} im Artikel?", "Wie reagierte {s}?"],
    "es": ["¿Qué dijo {s}?", "¿Qué exigió {s}?", "¿Quién se reunió con {s}?", "¿Qué quiere {s}?",
           "¿Qué pasó con {s}?"],
}  # fmt: skip
ENDINGS = ["", " Please cite the article.", " According to the article?", " In short?", " And why?"]


def distinct_questions() -> list[str]:
    """Some 3,800 different questions (subject x template x ending, four languages), shuffled."""
    questions = [
        template.format(s=subject) + ending
        for language, templates in TEMPLATES.items()
        for template in templates
        for subject in SUBJECTS[language]
        for ending in ENDINGS
    ]
    random.Random(6).shuffle(questions)
    return questions


def percentiles(seconds: list[float]) -> dict:
    cuts = statistics.quantiles(seconds, n=100)
    return {
        "p50_ms": round(1000 * statistics.median(seconds), 2),
        "p95_ms": round(1000 * cuts[94], 2),
        "p99_ms": round(1000 * cuts[98], 2),
    }


BUILD = """
import json, statistics, sys, time
from pathlib import Path
from rag.engine import Engine
from rag.retrieve.background import background_sentences
from rag.settings import Settings
engine = Engine(Settings(index_dir=Path(sys.argv[1])))
started = time.perf_counter()
engine.embedder
load = time.perf_counter() - started
builds = []
for _ in range(3):
    report = engine.build_index()
    builds.append(report.seconds)
background = len(background_sentences()[0])
print(json.dumps({"model_load_s": load, "build_s": statistics.median(builds), "sentences": report.sentences,
                  "background_sentences": background}))
"""


def index_build(index_dir: Path) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rag", "index", "--quiet"], cwd=REPO, check=True, capture_output=True)
    command = time.perf_counter() - started
    result = subprocess.run(
        [sys.executable, "-c", BUILD, str(index_dir)], cwd=REPO, check=True, capture_output=True, text=True
    )
    figures = json.loads(result.stdout)
    return {
        "rag_index_command_s": round(command, 2),
        "model_load_s": round(figures["model_load_s"], 2),
        "build_s": round(figures["build_s"], 3),
        "sentences": figures["sentences"],
        "background_sentences": figures["background_sentences"],
        # Every build embeds the background sentences too (rag/retrieve/background.py): all count.
        "sentences_per_s": round((figures["sentences"] + figures["background_sentences"]) / figures["build_s"], 1),
    }


def http_latency(questions: list[str], requests: int) -> tuple[dict, dict]:
    server, port = start_server()
    try:
        memory = {"ready_mib": round(rss_mib(server.pid), 1)}
        Run(port, clients=2, total=20, items=questions[-20:])  # warm-up, not counted
        results, used = {}, 0
        for clients in CONCURRENCY:
            total = requests * (1 if clients == 1 else 2)
            run = Run(port, clients=clients, total=total, items=questions[used : used + total])
            used += total
            results[f"clients_{clients}"] = {
                "clients": clients,
                "requests": len(run.latencies),
                "throughput_per_s": round(len(run.latencies) / run.seconds, 1),
                "errors": run.errors,
                **percentiles(run.latencies),
            }
        results["healthz"] = healthz_latency(port, requests)
        memory["after_load_mib"] = round(rss_mib(server.pid), 1)
        memory["peak_mib"] = round(rss_mib(server.pid, "VmHWM"), 1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results, memory


def healthz_latency(port: int, requests: int) -> dict:
    """GET /healthz one at a time on one kept-alive connection: the HTTP stack's own share."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        seconds.append(time.perf_counter() - started)
    connection.close()
    return {"requests": requests, **percentiles(seconds)}


def in_process(questions: list[str]) -> dict:
    """Where one answer's time goes, in this process on the same index, one question at a time
    (medians): embedding the question, identifying its language, and the whole Engine.answer."""
    from rag.engine import Engine
    from rag.ingest.language import probabilities

    engine = Engine(Settings.from_env())  # RAG_INDEX_DIR: the index the server answered from
    for question in questions[:20]:  # warm-up, not counted
        engine.answer(question)
    stages = {
        "embed_question": lambda q: engine.embedder.encode_queries([q]),
        "language": probabilities,
        "whole_answer": engine.answer,
    }
    return {
        name: percentiles([timed(stage, question) for question in questions])["p50_ms"]
        for name, stage in stages.items()
    }


def timed(function, argument) -> float:
    started = time.perf_counter()
    function(argument)
    return time.perf_counter() - started


def model_folder() -> Path:
    from rag.embed.default_model import ensure_default_model

    return ensure_default_model(Settings.from_env().cache_dir)


def seed_sentences() -> list[str]:
    documents, _ = load_documents([REPO / "seeds"])
    return [d.text[s.start : s.end] for d in documents for s in split_sentences(d)]


def txtai_search(questions: list[str], sentences: list[str]) -> dict:
    from txtai import Embeddings

    embeddings = Embeddings(
        path=str(model_folder()),
        method="sentence-transformers",
        backend="faiss",
        content=False,
        instructions={"query": "query: ", "data": "passage: "},
    )
    embeddings.index(list(enumerate(sentences)))
    for question in questions[:20]:  # warm-up, not counted
        embeddings.search(question, 10)
    seconds = []
    for question in questions:
        started = time.perf_counter()
        embeddings.search(question, 10)
        seconds.append(time.perf_counter() - started)
    return {"searches": len(seconds), **percentiles(seconds)}


def synthetic_sentences(count: int, questions: list[str]) -> list[str]:
    """Sentences made of the article's, the background's and the questions' words: each takes
    two source sentences (any language), keeps a random run of each, and shuffles a few words."""
    from rag.retrieve.background import background_sentences

    sources = seed_sentences() + background_sentences()[0] + questions[:500]
    words = [sentence.split() for sentence in sources]
    rng = random.Random(100_000)
    out = []
    for _ in range(count):
        first, second = rng.choice(words), rng.choice(words)
        a, b = rng.randrange(len(first)), rng.randrange(len(second))
        mixed = first[a : a + rng.randint(4, 14)] + second[b : b + rng.randint(2, 10)]
        for _ in range(rng.randint(0, 3)):
            i, j = rng.randrange(len(mixed)), rng.randrange(len(mixed))
            mixed[i], mixed[j] = mixed[j], mixed[i]
        out.append(" ".join(mixed) + rng.choice([".", ".", ".", " ?", " !"]))
    return out


def scale(count: int, questions: list[str]) -> dict:
    import faiss
    import numpy as np

    from rag.embed.onnx_embedder import OnnxEmbedder
    from rag.embed.onnx_export import ensure_onnx_model
    from rag.store.faiss_index import FaissIndex
    from rag.store.vector_index import HNSW_EF_SEARCH

    sentences = synthetic_sentences(count, questions)
    embedder = OnnxEmbedder(ensure_onnx_model(DEFAULT_MODEL, Settings.from_env().cache_dir), batch_size=64, threads=2)
    started = time.perf_counter()
    vectors = np.concatenate([embedder.encode_passages(sentences[i : i + 4096]).vectors for i in range(0, count, 4096)])
    embed_seconds = time.perf_counter() - started
    queries = embedder.encode_queries(questions[:1000]).vectors
    faiss.omp_set_num_threads(1)  # one question at a time, as the server searches

    def measure(name: str, index, build_seconds: float, exact: np.ndarray | None) -> dict:
        seconds, found = [], []
        for query in queries:
            started = time.perf_counter()
            _, rows = index.search(query.reshape(1, -1), 10)
            seconds.append(time.perf_counter() - started)
            found.append(rows[0])
        found = np.array(found)
        recall = (
            1.0
            if exact is None
            else float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)]))
        )
        figures = {
            "index": name,
            "build_s": round(build_seconds, 2),
            "size_mib": round(faiss.serialize_index(index).nbytes / 2**20, 1),
            "recall_at_10": round(recall, 4),
            **percentiles(seconds),
        }
        return figures, found

    faiss.omp_set_num_threads(2)
    started = time.perf_counter()
    flat = FaissIndex.create(vectors.shape[1], len(vectors), "flat").index
    flat.add(vectors)
    flat_seconds = time.perf_counter() - started
    started = time.perf_counter()
    hnsw = FaissIndex.create(vectors.shape[1], len(vectors), "hnsw").index
    hnsw.add(vectors)
    hnsw_seconds = time.perf_counter() - started
    started = time.perf_counter()
    lists = 1024
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors)
    ivf.add(vectors)
    ivf_seconds = time.perf_counter() - started
    faiss.omp_set_num_threads(1)

    rows = []
    flat_figures, exact = measure("flat (exact)", flat, flat_seconds, None)
    rows.append(flat_figures)
    for ef in (64, HNSW_EF_SEARCH, 256):
        hnsw.hnsw.efSearch = ef
        rows.append(measure(f"HNSW M=32 efSearch={ef}", hnsw, hnsw_seconds, exact)[0])
    for probes in (8, 32):
        ivf.nprobe = probes
        rows.append(measure(f"IVF{lists} nprobe={probes}", ivf, ivf_seconds, exact)[0])
    return {
        "sentences": count,
        "embed_s": round(embed_seconds, 1),
        "embed_sentences_per_s": round(count / embed_seconds, 1),
        "queries": len(queries),
        "indexes": rows,
    }


def chart(results: dict, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    http = results["http"]
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^:")):
        axes.plot(CONCURRENCY, [http[f"clients_{c}"][key] for c in CONCURRENCY], style, label=f"rag HTTP {key[:3]}")
    axes.axhline(results["txtai"]["p50_ms"], color="grey", linewidth=1, label="txtai in-process p50")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(CONCURRENCY, [str(c) for c in CONCURRENCY])
    axes.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xlabel("concurrent clients")
    axes.set_ylabel("latency per answer (ms)")
    axes.set_title("/api/ask latency against concurrency (2 cores)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def report(results: dict) -> str:
    build, http, txtai = results["build"], results["http"], results["txtai"]
    lines = [
        f"index build (seeds/, {build['sentences']} sentences + {build['background_sentences']} background): "
        f"rag index {build['rag_index_command_s']} s (new process), model load {build['model_load_s']} s, "
        f"build {build['build_s']} s = {build['sentences_per_s']} sentences embedded/s",
        "",
        f"{'':22s} {'requests':>8s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'errors':>6s}",
    ]
    for clients in CONCURRENCY:
        row = http[f"clients_{clients}"]
        lines.append(
            f"{'rag HTTP, ' + str(clients) + ' client(s)':22s} {row['requests']:8d} {row['throughput_per_s']:7.1f} "
            f"{row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['p99_ms']:8.1f} {row['errors']:6d}"
        )
    lines.append(
        f"{'txtai in-process':22s} {txtai['searches']:8d} {'':>7s} {txtai['p50_ms']:8.1f} "
        f"{txtai['p95_ms']:8.1f} {txtai['p99_ms']:8.1f}"
    )
    stages, ask = results["in_process"], http["clients_1"]["p50_ms"]
    rest = stages["whole_answer"] - stages["embed_question"] - stages["language"]
    lines += [
        "",
        f"where a 1-client answer's {ask:.2f} ms go (p50s): embedding the question {stages['embed_question']:.2f} ms, "
        f"its language {stages['language']:.2f} ms, retrieval, scoring and the answerer {rest:.2f} ms "
        f"(the whole answer in process {stages['whole_answer']:.2f} ms); HTTP, validation and the worker thread "
        f"{ask - stages['whole_answer']:.2f} ms, of which GET /healthz alone {http['healthz']['p50_ms']:.2f} ms",
        "",
        f"rag HTTP p50 (1 client) / txtai in-process p50 = {results['ratio_p50']:.2f} (target at most 0.35)",
        f"server RSS: {results['memory']['ready_mib']} MiB when ready, {results['memory']['after_load_mib']} MiB "
        f"after the runs, peak {results['memory']['peak_mib']} MiB (target at most 600 MB = 572 MiB)",
    ]
    if "scale" in results:
        s = results["scale"]
        lines += [
            "",
            f"scale: {s['sentences']} synthetic sentences embedded in {s['embed_s']} s "
            f"({s['embed_sentences_per_s']}/s, 2 threads); {s['queries']} questions, one at a time",
            f"{'index':28s} {'build s':>8s} {'MiB':>7s} {'recall@10':>9s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s}",
        ]
        for row in s["indexes"]:
            lines.append(
                f"{row['index']:28s} {row['build_s']:8.2f} {row['size_mib']:7.1f} {row['recall_at_10']:9.4f} "
                f"{row['p50_ms']:8.2f} {row['p95_ms']:8.2f} {row['p99_ms']:8.2f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests with 1 client (twice as many with 8, 32)")
    parser.add_argument("--scale", type=int, default=100_000, help="synthetic sentences for the scale runs (0: none)")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "performance.json")
    parser.add_argument("--chart", type=Path, default=REPO / "docs" / "performance.png")
    args = parser.parse_args()
    questions = distinct_questions()
    needed = 20 + args.requests * (1 + 2 * (len(CONCURRENCY) - 1))
    if needed > len(questions):
        parser.error(f"--requests {args.requests} needs {needed} distinct questions; there are {len(questions)}")
    with tempfile.TemporaryDirectory() as index_dir:
        os.environ["RAG_INDEX_DIR"] = index_dir  # the user's index/ is left alone
        results: dict = {"build": index_build(Path(index_dir))}
        results["http"], results["memory"] = http_latency(questions, args.requests)
        results["in_process"] = in_process(questions[: args.requests])
    results["txtai"] = txtai_search(questions[: args.requests], seed_sentences())
    results["ratio_p50"] = round(results["http"]["clients_1"]["p50_ms"] / results["txtai"]["p50_ms"], 3)
    if args.scale:
        results["scale"] = scale(args.scale, questions)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    print(report(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    chart(results, args.chart)
    print(f"\nwrote {args.json} and {args.chart}")


if __name__ == "__main__":
    main()
