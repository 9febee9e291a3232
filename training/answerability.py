"""Fit the answerability thresholds: the best late-interaction score from which the product
answers, for a question in the language of the sentence it matches and for one in another
language; and the same two for the best pooled cosine of dense search, whose difference is how
much the dense candidates in the question's language are handicapped. Writes
rag/data/answerability.json.

    .venv/bin/python training/answerability.py [--out FILE]     # about a minute on 2 cores

Each threshold lets ANSWERED of the answerable questions of its fitting set be answered:
- same language: SQuAD 2.0's even-numbered articles (0, 2, 4, 6, 8 of eval/squad2), English
  questions, all ten articles indexed; the odd-numbered ones are kept for reporting;
- other language: XQuAD-R's German and Spanish questions on its English articles (all 24
  indexed); reports use the other direction (English questions on German and Spanish articles).
The bundled article's question sets are never read here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from rag.engine import Engine  # noqa: E402
from rag.evaluation import Article, read_squad, write_articles  # noqa: E402
from rag.retrieve.answerability import THRESHOLDS_FILE  # noqa: E402
from rag.retrieve.late_interaction import retrieve  # noqa: E402
from rag.settings import DEFAULT_MODEL, Settings  # noqa: E402

EVAL = REPO / "eval"
ANSWERED = 0.92  # share of answerable questions answered on the fitting sets
PER_ARTICLE = 60  # SQuAD 2.0 answerable questions per fitting article
EVERY = 4  # every 4th XQuAD-R question, in each of German and Spanish


def best_scores(
    engine: Engine, corpus: list[str], questions: list[str], work: Path, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Each question's best late-interaction score and best pooled cosine."""
    engine = Engine(dataclasses.replace(engine.settings, index_dir=work / f"index-{name}"), embedder=engine.embedder)
    engine.build_index([write_articles(corpus, work / name)])
    index = engine.load_index()
    scores, cosines = [], []
    for question in questions:
        encoded = engine.embedder.encode_queries([question])
        found = retrieve(encoded.vectors[0], encoded.tokens[0], index.vectors, index.tokens)
        scores.append(found.best)
        cosines.append(float(index.vectors.search(encoded.vectors[:1], 1)[0][0, 0]))
    return np.array(scores), np.array(cosines)


def fitting_questions(squad: list[Article]) -> tuple[list[str], list[str]]:
    """The questions each threshold is fitted on: up to PER_ARTICLE answerable questions of each
    even-numbered SQuAD 2.0 article (same language), and every EVERY-th German and Spanish
    XQuAD-R question, asked of the English articles (other language)."""
    same = []
    for article in squad[::2]:
        answerable = [q["question"] for q in article.questions if not q["impossible"]]
        same += answerable[:: max(1, len(answerable) // PER_ARTICLE)][:PER_ARTICLE]
    other = [
        q["question"]
        for language in ("de", "es")
        for article in read_squad(EVAL / "xquad-r" / f"{language}.json")
        for q in article.questions
    ][::EVERY]
    return same, other


def fit() -> dict:
    engine = Engine(Settings(embedding_model=DEFAULT_MODEL, backend="onnx"))
    squad = read_squad(EVAL / "squad2" / "train-subset.json")
    same_questions, other_questions = fitting_questions(squad)
    english = read_squad(EVAL / "xquad-r" / "en.json")
    with tempfile.TemporaryDirectory(prefix="rag-fit-") as tmp:
        work = Path(tmp)
        same, same_dense = best_scores(engine, [a.text for a in squad], same_questions, work, "squad")
        other, other_dense = best_scores(engine, [a.text for a in english], other_questions, work, "xquad-en")
    return {
        "model": DEFAULT_MODEL,
        "backend": "onnx",
        "same_language": round(float(np.quantile(same, 1 - ANSWERED)), 4),
        "other_language": round(float(np.quantile(other, 1 - ANSWERED)), 4),
        "dense_same_language": round(float(np.quantile(same_dense, 1 - ANSWERED)), 4),
        "dense_other_language": round(float(np.quantile(other_dense, 1 - ANSWERED)), 4),
        "fitted_on": {
            "answered": ANSWERED,
            "same_language": f"SQuAD 2.0 articles 0, 2, 4, 6, 8: {len(same)} answerable questions",
            "other_language": f"XQuAD-R German and Spanish questions on English articles: {len(other)}",
            "script": "training/answerability.py",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=THRESHOLDS_FILE, help=f"where to write (default {THRESHOLDS_FILE})")
    args = parser.parse_args()
    fitted = fit()
    args.out.write_text(json.dumps(fitted, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"wrote {args.out}: same language {fitted['same_language']}, other language {fitted['other_language']};"
        f" dense: {fitted['dense_same_language']}, {fitted['dense_other_language']}"
    )


if __name__ == "__main__":
    main()
