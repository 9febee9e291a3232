"""Collect the cases the confidence calibration is fitted on and reported on: for each question,
what the product's retrieval finds (its first candidates, their scores, thresholds, dense places,
per-token coverage and text), whether each candidate holds the answer, and the question's pooled
vector. Writes WORK/cases.jsonl and WORK/questions.npy; training/confidence.py fits on them.

    .venv/bin/python training/confidence_data.py --train-dir DIR --work WORK   # about 3 minutes

DIR holds the public QA sets described in the team's shared train/README.md (PIAF, MLQA de,
CMRC 2018, DRCD, ARCD; each folder's SOURCE.md names its origin and licence). The repository's
own eval/ sets are read too: SQuAD 2.0's even articles and XQuAD-R's articles 12-23 are fitted on,
SQuAD 2.0's odd articles, XQuAD-R's articles 0-11 (all but Normans) and the bundled article's
question sets only reported on (``split`` of each case).

Kinds of case, for every set: ``answerable`` (the question over the corpus that holds its answer);
``sentence-removed`` (the same question with every sentence that holds the answer left out: the
corpus still discusses the subject); ``out-of-corpus`` (a question about a document that is not
indexed); SQuAD 2.0's ``adversarial`` questions; the bundled article's ``near-topic`` and
``off-topic`` ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from rag.engine import Engine  # noqa: E402
from rag.evaluation import Article, article_id, read_questions, read_squad, write_articles  # noqa: E402
from rag.retrieve.late_interaction import retrieve  # noqa: E402
from rag.settings import DEFAULT_MODEL, Settings  # noqa: E402
from rag.store.faiss_index import FaissIndex  # noqa: E402
from rag.store.index import LoadedIndex  # noqa: E402
from rag.store.tokens import TokenVectors  # noqa: E402

EVAL = REPO / "eval"
KEPT = 6  # candidates recorded per case
NORMANS = 2  # XQuAD-R's article 3 (0-based 2): an outside evaluation's article, never fitted on
SEED = 29


@dataclasses.dataclass(frozen=True)
class Case:
    dataset: str
    split: str  # "fit" or "report"
    kind: str
    question: str
    answers: tuple[tuple[int, int, int], ...] = ()  # (document number, start, end) of each answer
    expect: tuple[str, ...] = ()  # for the bundled article: substrings of an answering sentence
    removed: tuple[tuple[int, int, int], ...] = ()  # spans whose sentences are left out
    answer_text: str = ""  # the first answer's text (what kind of answer the question wants)
    alone: int | None = None  # the number of the one document indexed, when the others are left out


def squad_like(path: Path) -> list[Article]:
    """A SQuAD-format file's articles, each answer's offsets checked against its text (CMRC 2018
    has some off: the answer text is looked up in its paragraph then; one not found is dropped)."""
    articles = []
    for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
        text, spans, questions = "", [], []
        for number, paragraph in enumerate(entry["paragraphs"]):
            context = paragraph["context"]
            start = len(text) + (1 if text else 0)
            text = (text + "\n" if text else "") + context
            spans.append((start, len(text)))
            for qa in paragraph["qas"]:
                answers = []
                for a in qa["answers"]:
                    at = a["answer_start"]
                    if context[at : at + len(a["text"])] != a["text"]:
                        at = context.find(a["text"])
                    if at >= 0 and a["text"].strip():
                        answers.append((start + at, start + at + len(a["text"])))
                if answers:
                    questions.append({"question": qa["question"].strip(" -"), "paragraph": number, "answers": answers})
        articles.append(Article(text, spans, questions))
    return articles


def mlqa(folder: Path) -> list[Article]:
    """MLQA's German dev set (Arrow): its contexts grouped eight to a document."""
    import pyarrow.ipc

    with (folder / "validation" / "data-00000-of-00001.arrow").open("rb") as stream:
        rows = pyarrow.ipc.open_stream(stream).read_all().to_pylist()
    by_context: dict[str, list[dict]] = {}
    for row in rows:
        by_context.setdefault(row["context"], []).append(row)
    contexts = list(by_context)
    data = []
    for first in range(0, len(contexts), 8):
        paragraphs = []
        for context in contexts[first : first + 8]:
            qas = [
                {
                    "question": row["question"],
                    "answers": [
                        {"text": t, "answer_start": s}
                        for t, s in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True)
                    ],
                }
                for row in by_context[context]
            ]
            paragraphs.append({"context": context, "qas": qas})
        data.append({"paragraphs": paragraphs})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as out:
        json.dump({"data": data}, out, ensure_ascii=False)
    try:
        return squad_like(Path(out.name))
    finally:
        os.unlink(out.name)


def split_sets(name: str, articles: list[Article], indexed: int, per_kind: int) -> tuple[list[str], list[Case]]:
    """The first ``indexed`` articles as the corpus; up to ``per_kind`` answerable questions about
    them (and the same with their answer sentences removed), and up to half as many about the
    articles after them (out of corpus). All fitted on."""
    rng = random.Random(SEED)
    inside = [(n, q) for n, a in enumerate(articles[:indexed]) for q in a.questions]
    outside = [q for a in articles[indexed:] for q in a.questions]
    cases = []
    for n, q in rng.sample(inside, min(per_kind, len(inside))):
        answers = tuple((n, s, e) for s, e in q["answers"])
        first = articles[n].text[answers[0][1] : answers[0][2]]
        cases.append(Case(name, "fit", "answerable", q["question"], answers, answer_text=first))
        cases.append(Case(name, "fit", "sentence-removed", q["question"], removed=answers))
    for q in rng.sample(outside, min(per_kind // 2, len(outside))):
        cases.append(Case(name, "fit", "out-of-corpus", q["question"]))
    return [a.text for a in articles[:indexed]], with_alone(cases)


def with_alone(cases: list[Case], share: float = 0.5) -> list[Case]:
    """``cases`` and, for a ``share`` of the answerable ones, the same question asked of its
    document alone, with its answer sentences removed from it, and another document's question
    asked of it (out of corpus): the case of a reader with one document of their own."""
    rng = random.Random(SEED + 1)
    answerable = [c for c in cases if c.kind == "answerable" and c.answers]
    alone = []
    for case in answerable:
        if rng.random() >= share:
            continue
        number = case.answers[0][0]
        dataset = f"{case.dataset} one document"
        alone.append(dataclasses.replace(case, dataset=dataset, alone=number))
        alone.append(
            dataclasses.replace(
                case, dataset=dataset, kind="sentence-removed", removed=case.answers, answers=(), alone=number
            )
        )
        other = rng.choice(answerable)
        if other.answers[0][0] != number:
            alone.append(Case(dataset, case.split, "out-of-corpus", other.question, alone=number))
    return cases + alone


def squad_sets() -> tuple[list[str], list[Case]]:
    """SQuAD 2.0's ten articles indexed together; even ones fitted on, odd ones reported."""
    articles = read_squad(EVAL / "squad2" / "train-subset.json")
    rng = random.Random(SEED)
    cases = []
    for n, article in enumerate(articles):
        split = "fit" if n % 2 == 0 else "report"
        answerable = [q for q in article.questions if not q["impossible"]]
        for q in rng.sample(answerable, min(60, len(answerable))):
            answers = tuple((n, s, e) for s, e in q["answers"])
            first = article.text[answers[0][1] : answers[0][2]]
            cases.append(Case("SQuAD 2.0", split, "answerable", q["question"], answers, answer_text=first))
            cases.append(Case("SQuAD 2.0", split, "sentence-removed", q["question"], removed=answers))
            if rng.random() < 0.5:
                whole = ((n, 0, len(article.text)),)
                cases.append(Case("SQuAD 2.0", split, "out-of-corpus", q["question"], removed=whole))
        cases += [Case("SQuAD 2.0", split, "adversarial", q["question"]) for q in article.questions if q["impossible"]]
    return [a.text for a in articles], with_alone(cases, 0.3)


def xquad_sets(corpus: str) -> tuple[list[str], list[Case]]:
    """XQuAD-R's articles in ``corpus``'s language indexed but for 11 and 23, questions in each of
    English, German and Spanish: articles 0-10 reported (not Normans), 12-22 fitted; questions
    about 11 and 23 are out of corpus."""
    articles = read_squad(EVAL / "xquad-r" / f"{corpus}.json")
    asked = {
        lang: {q["id"]: q["question"] for a in read_squad(EVAL / "xquad-r" / f"{lang}.json") for q in a.questions}
        for lang in ("en", "de", "es")
    }
    rng = random.Random(SEED + len(corpus) + ord(corpus[0]))
    dropped = {11, 23}
    numbers = [n for n in range(len(articles)) if n not in dropped]
    cases = []
    for lang in ("en", "de", "es"):
        dataset = f"XQuAD-R {lang}→{corpus}"
        for n, article in enumerate(articles):
            if n == NORMANS:
                continue
            split = "report" if n < 12 else "fit"
            for q in article.questions:
                if rng.random() >= 0.25:
                    continue
                question = asked[lang][q["id"]]
                if n in dropped:
                    cases.append(Case(dataset, split, "out-of-corpus", question))
                    continue
                row = numbers.index(n)
                answers = tuple((row, s, e) for s, e in q["answers"])
                first = article.text[answers[0][1] : answers[0][2]]
                cases.append(Case(dataset, split, "answerable", question, answers, answer_text=first))
                cases.append(Case(dataset, split, "sentence-removed", question, removed=answers))
    return [articles[n].text for n in numbers], with_alone(cases)


def bundled_sets() -> tuple[list[str], list[Case]]:
    article = next((REPO / "seeds").glob("*.txt")).read_text(encoding="utf-8")
    cases = []
    for name, kind in (
        ("dev.jsonl", None),
        ("extra.jsonl", None),
        ("dev_offtopic.jsonl", "off-topic"),
        ("dev_neartopic.jsonl", "near-topic"),
    ):
        for q in read_questions(EVAL / name):
            if q.expect:
                cases.append(Case("bundled (fr)", "report", "answerable", q.text, expect=tuple(q.expect)))
            else:
                cases.append(Case("bundled (fr)", "report", kind or "off-topic", q.text))
    return [article], cases


def sets(train_dir: Path) -> Iterator[tuple[str, Callable[[], tuple[list[str], list[Case]]]]]:
    yield "bundled", bundled_sets
    yield "squad", squad_sets
    for corpus in ("en", "de", "es"):
        yield f"xquad-{corpus}", lambda corpus=corpus: xquad_sets(corpus)
    yield "piaf", lambda: split_sets("PIAF (fr)", squad_like(train_dir / "piaf-fr" / "piaf-v1.0.json"), 24, 240)
    yield "mlqa", lambda: split_sets("MLQA (de)", mlqa(train_dir / "mlqa-de"), 36, 200)
    yield (
        "cmrc",
        lambda: split_sets("CMRC 2018 (zh)", squad_like(train_dir / "cmrc2018-zh" / "cmrc2018_dev.json"), 120, 200),
    )
    yield "drcd", lambda: split_sets("DRCD (zh-tw)", squad_like(train_dir / "drcd-zh-tw" / "DRCD_dev.json"), 24, 200)
    yield "arcd", lambda: split_sets("ARCD (ar)", squad_like(train_dir / "arcd-ar" / "arcd-train.json"), 40, 200)


def holding(index: LoadedIndex, spans: tuple[tuple[int, int, int], ...]) -> set[int]:
    """The rows of the sentences overlapping any of ``spans``."""
    rows = set()
    for row, sentence in enumerate(index.sentences):
        if any(article_id(n) == sentence.document and s < sentence.end and sentence.start < e for n, s, e in spans):
            rows.add(row)
    return rows


def alone(index: LoadedIndex, number: int) -> LoadedIndex:
    """The index with only document ``number``'s sentences, nothing re-embedded."""
    rows = [row for row, s in enumerate(index.sentences) if s.document == article_id(number)]
    vectors = FaissIndex.create(index.vectors.dimension(), len(rows), "flat")
    vectors.add(index.vectors.reconstruct(np.array(rows)))
    tokens = TokenVectors.join([index.tokens.of(row) for row in rows], index.tokens.dimension)
    return dataclasses.replace(index, sentences=[index.sentences[r] for r in rows], vectors=vectors, tokens=tokens)


def record(engine: Engine, index: LoadedIndex, case: Case, vector: np.ndarray, tokens: np.ndarray) -> dict:
    thresholds, split = engine.answering._calibration(case.question, index)
    removed = holding(index, case.removed) if case.removed else set()
    found = retrieve(vector, tokens, index.vectors, index.tokens, None, (), thresholds, split)
    ranked = [s for s in found.ranked if s.row not in removed]
    right = holding(index, case.answers) if case.answers else set()
    kept = []
    for scored in ranked[:KEPT]:
        text = index.sentence_text(index.sentences[scored.row])
        holds = scored.row in right or (bool(case.expect) and any(e in text for e in case.expect))
        kept.append(
            {
                "score": round(scored.score, 5),
                "threshold": round(scored.threshold, 5),
                "coverage": [round(float(c), 4) for c in scored.coverage],
                "text": text,
                "right": holds,
            }
        )
    return {
        "dataset": case.dataset,
        "split": case.split,
        "kind": case.kind,
        "question": case.question,
        "answer_text": case.answer_text,
        "candidates": len(ranked),
        "top": kept,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", type=Path, required=True, help="the folder of the public QA sets")
    parser.add_argument("--work", type=Path, required=True, help="where cases.jsonl and questions.npy go")
    parser.add_argument("--only", nargs="*", help="collect these sets only (bundled squad xquad-en ...)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base = Settings(embedding_model=DEFAULT_MODEL, backend="onnx")
    embedder = Engine(base).embedder
    records, vectors = [], []
    with tempfile.TemporaryDirectory(prefix="rag-confidence-") as tmp:
        for name, make in sets(args.train_dir):
            if args.only and name not in args.only:
                continue
            started = time.perf_counter()
            texts, cases = make()
            engine = Engine(dataclasses.replace(base, index_dir=Path(tmp) / f"index-{name}"), embedder=embedder)
            engine.build_index([write_articles(texts, Path(tmp) / name)])
            index = engine.load_index()
            questions = sorted({c.question for c in cases})
            # One at a time, as the product encodes a question: a batch pads, which moves the vectors a little.
            encoded = [embedder.encode_queries([question]) for question in questions]
            at = {q: i for i, q in enumerate(questions)}
            reduced: tuple = (None, index)
            for case in sorted(cases, key=lambda c: -1 if c.alone is None else c.alone):
                i = at[case.question]
                vector, tokens = encoded[i].vectors[0], encoded[i].tokens[0]
                if not len(tokens):
                    continue
                if reduced[0] != case.alone:
                    reduced = (case.alone, index if case.alone is None else alone(index, case.alone))
                row = record(engine, reduced[1], case, vector, tokens)
                row["vector"] = len(vectors)
                vectors.append(vector)
                records.append(row)
            print(
                f"{name}: {len(texts)} documents, {len(index.sentences)} sentences, {len(cases)} cases,"
                f" {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    suffix = "-" + "-".join(args.only) if args.only else ""
    with (args.work / f"cases{suffix}.jsonl").open("w", encoding="utf-8") as out:
        for row in records:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    np.save(args.work / f"questions{suffix}.npy", np.stack(vectors).astype(np.float32))


if __name__ == "__main__":
    main()
