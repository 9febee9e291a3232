"""Right or honestly silent, measured: one table per system over several corpora and languages.

    .venv/bin/python benchmarks/answerability.py [--per-article 40] [--json FILE]

Every answer has one of three outcomes: a confident answer, the closest passage (abstained, with
citations), or "not in the documents" (abstained, none). For each data set (rows) it prints, over
the answerable questions: hit@1 (the first citation holds the answer, whatever the outcome),
covered (answered confidently), shown right (a citation is shown, confident or closest, and the
first holds the answer); over all the set's questions, the precision of confident answers (the
first citation holds the answer; unanswerable questions answered count as wrong); and for each kind
of unanswerable question its outcome mix, confident / closest / none.

None of these questions was fitted on (training/confidence.py fits on other articles and sets):

- bundled: eval/dev.jsonl and extra.jsonl (answerable, expected substrings), dev_offtopic.jsonl,
  the off-topic lines of extra.jsonl and dev_neartopic.jsonl, on the bundled French article;
- XQuAD-R en→de, en→es, en→en: articles 0-19 of eval/xquad-r/{de,es,en}.json indexed but for 2
  and 11; English questions about 0-10 (answerable; 12-19 are the calibration's) and about 2
  and 11 (out of corpus);
- Normans alone (en): XQuAD-R's article 2, SQuAD 2.0's dev article "Normans", indexed alone;
  its English questions (answerable) and article 11's (out of corpus);
- SQuAD 2.0: the 10 articles of eval/squad2/train-subset.json indexed together; --per-article
  answerable questions of each odd-numbered article (the even ones are fitted on), asked as they
  are, then with their paragraph removed from the index (near-topic), then with their whole
  article removed (out of corpus); and every question of those articles written to look
  answerable that its paragraph does not answer (adversarial);
- own documents: eval/own/docs (Markdown, HTML, plain text and PDF in English, German, Spanish,
  Italian, Portuguese and French) indexed beside the bundled article; eval/own/questions.jsonl's
  answerable questions (in the documents' languages, English and across), near-topic and
  off-topic ones, written blind before any scoring;
- chit-chat: eval/chitchat_test.jsonl (never trained on) on the bundled article; "none" there
  means a plain answer without a citation.

Systems: rag as configured (the engine's answer), and plain dense retrieval (the nearest pooled
vector) answering when its cosine reaches a fixed cut-off, set to answer 90 % of the SQuAD 2.0
answerable questions reported (so its SQuAD row is fitted on itself); it has no closest passage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
EVAL = REPO / "eval"

import numpy as np  # noqa: E402

from rag.answer.base import Answer, Citation  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.evaluation import article_id, read_questions, read_squad, write_articles  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store.faiss_index import FaissIndex  # noqa: E402
from rag.store.index import LoadedIndex  # noqa: E402
from rag.store.tokens import TokenVectors  # noqa: E402

KINDS = ("off-topic", "near-topic", "out-of-corpus", "paragraph-removed", "adversarial", "chit-chat")
XQUAD_INDEXED = 20  # articles 0-19 indexed, but for the out-of-corpus ones
XQUAD_OUT = (2, 11)  # not indexed: their questions are out of corpus
XQUAD_ASKED = 11  # questions about articles below this are asked (12-19 are the calibration's)
NORMANS = 2  # XQuAD-R's article 2 is SQuAD 2.0's dev article "Normans"


@dataclasses.dataclass(frozen=True)
class Case:
    dataset: str
    question: str
    kind: str  # "answerable" or one of KINDS
    index: str  # key into the run's indexes
    right: Callable[[Citation], bool] | None = None  # does a citation answer it (answerable only)
    removed: tuple[str, int, int] | None = None  # (document, start, end) taken out of the index first
    language: str = ""  # the question's language, where its set says (--by-language)


def holds_answer(document: str, spans: list[tuple[int, int]]) -> Callable[[Citation], bool]:
    return lambda c: c.document == document and any(s < c.end and c.start < e for s, e in spans)


def holds_substring(expected: list[str]) -> Callable[[Citation], bool]:
    return lambda c: any(e in c.text for e in expected)


def build(engine_for: Callable[[Path], Engine], name: str, texts: list[str], work: Path) -> LoadedIndex:
    engine = engine_for(work / f"index-{name}")
    engine.build_index([write_articles(texts, work / f"docs-{name}")])
    return engine.load_index()


def without(index: LoadedIndex, removed: tuple[str, int, int]) -> LoadedIndex:
    """The index without the sentences of ``removed`` = (document, start, end), nothing re-embedded."""
    document, start, end = removed
    drop = [s.document == document and start <= s.start < end for s in index.sentences]
    rows = [row for row, dropped in enumerate(drop) if not dropped]
    vectors = FaissIndex.create(index.vectors.dimension(), len(rows), "flat")
    vectors.add(index.vectors.index.reconstruct_n(0, index.vectors.count())[rows])
    tokens = TokenVectors.join([index.tokens.of(row) for row in rows], index.tokens.dimension)
    return dataclasses.replace(index, sentences=[index.sentences[r] for r in rows], vectors=vectors, tokens=tokens)


def bundled_cases() -> list[Case]:
    cases = []
    for name in ("dev.jsonl", "dev_offtopic.jsonl", "extra.jsonl", "dev_neartopic.jsonl"):
        for line in (EVAL / name).read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            language = item.get("lang", "")
            if item.get("expect"):
                right = holds_substring(item["expect"])
                cases.append(Case("bundled (fr)", item["question"], "answerable", "bundled", right, language=language))
            else:
                kind = "near-topic" if name == "dev_neartopic.jsonl" else "off-topic"
                cases.append(Case("bundled (fr)", item["question"], kind, "bundled", language=language))
    for question in read_questions(EVAL / "chitchat_test.jsonl"):
        cases.append(Case("bundled (fr)", question.text, "chit-chat", "bundled"))
    return cases


def own_cases() -> list[Case]:
    """eval/own/questions.jsonl: questions on six documents of six formats and languages (indexed
    beside the bundled article), written blind; each line's "kind" says whether it is answerable."""
    cases = []
    for line in (EVAL / "own" / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        right = holds_substring(item["expect"]) if item.get("expect") else None
        cases.append(Case("own documents", item["question"], item["kind"], "own", right, language=item["lang"]))
    return cases


def xquad_cases(corpus: str) -> tuple[list[str], list[Case]]:
    articles = read_squad(EVAL / "xquad-r" / f"{corpus}.json")
    english = {q["id"]: q["question"] for a in read_squad(EVAL / "xquad-r" / "en.json") for q in a.questions}
    dataset = f"XQuAD-R en→{corpus}"
    cases = []
    indexed = [n for n in range(XQUAD_INDEXED) if n not in XQUAD_OUT]
    for number, article in enumerate(articles):
        for q in article.questions:
            if number in XQUAD_OUT:
                cases.append(Case(dataset, english[q["id"]], "out-of-corpus", dataset))
            elif number < XQUAD_ASKED:
                right = holds_answer(article_id(indexed.index(number)), q["answers"])
                cases.append(Case(dataset, english[q["id"]], "answerable", dataset, right))
    return [articles[n].text for n in indexed], cases


def normans_cases() -> tuple[list[str], list[Case]]:
    """XQuAD-R's article 2, SQuAD 2.0's dev article "Normans" (an outside evaluation's; never
    fitted on), indexed alone in English: its English questions, and article 11's (out of corpus)."""
    articles = read_squad(EVAL / "xquad-r" / "en.json")
    dataset = "Normans alone (en)"
    cases = [
        Case(dataset, q["question"], "answerable", "normans", holds_answer(article_id(0), q["answers"]))
        for q in articles[NORMANS].questions
    ]
    cases += [Case(dataset, q["question"], "out-of-corpus", "normans") for q in articles[11].questions]
    return [articles[NORMANS].text], cases


def squad_cases(per_article: int) -> tuple[list[str], list[Case]]:
    dataset = "SQuAD 2.0 odd (en)"
    articles = read_squad(EVAL / "squad2" / "train-subset.json")
    cases = []
    for number, article in enumerate(articles):
        if number % 2 == 0:  # the thresholds were fitted on these
            continue
        document = article_id(number)
        answerable = [q for q in article.questions if not q["impossible"]]
        step = max(1, len(answerable) // per_article)
        for q in answerable[::step][:per_article]:
            cases.append(Case(dataset, q["question"], "answerable", "squad", holds_answer(document, q["answers"])))
            paragraph = (document, *article.paragraphs[q["paragraph"]])
            cases.append(Case(dataset, q["question"], "paragraph-removed", "squad", removed=paragraph))
            whole = (document, 0, len(article.text))
            cases.append(Case(dataset, q["question"], "out-of-corpus", "squad", removed=whole))
        cases += [Case(dataset, q["question"], "adversarial", "squad") for q in article.questions if q["impossible"]]
    return [a.text for a in articles], cases


def dense_answer(engine: Engine, index: LoadedIndex, question: str) -> tuple[float, Citation]:
    """The nearest sentence by pooled cosine, as a citation, and that cosine."""
    vector = engine.embedder.encode_queries([question]).vectors
    scores, rows = index.vectors.search(vector, 1)
    sentence = index.sentences[int(rows[0][0])]
    citation = Citation(
        1, sentence.document, sentence.index, sentence.start, sentence.end, index.sentence_text(sentence), 0.0
    )
    return float(scores[0][0]), citation


def table(results: list[tuple[Case, str, bool, float]], by_language: bool = False) -> tuple[str, dict]:
    """Rows by data set (and question language, where the set says); each result is (case,
    outcome, first citation right, seconds)."""
    by_dataset: dict[str, list] = defaultdict(list)
    for result in results:
        case = result[0]
        by_dataset[case.dataset + (f", {case.language} questions" if by_language and case.language else "")].append(
            result
        )
    header = f"{'data set':<22} {'n':>5} {'hit@1':>6} {'covered':>8} {'precision':>9} {'shown right':>11}" + "".join(
        f" {kind:>20}" for kind in KINDS
    )
    lines, figures = [header, "-" * len(header)], {}
    for dataset, rows in by_dataset.items():
        answerable = [(outcome, right) for case, outcome, right, _ in rows if case.kind == "answerable"]
        confident = [(case, right) for case, outcome, right, _ in rows if outcome == "answer"]
        n = len(answerable)

        def share(count: int, whole: int) -> float | None:
            return count / whole if whole else None

        row = {
            "answerable": n,
            "hit1": share(sum(r for _, r in answerable), n),
            "covered": share(sum(o == "answer" for o, _ in answerable), n),
            "precision": share(sum(r and c.kind == "answerable" for c, r in confident), len(confident)),
            "confident": len(confident),
            "shown_right": share(sum(r and o != "none" for o, r in answerable), n),
            "ms_per_question": 1000 * float(np.median([seconds for *_, seconds in rows])),
        }
        cells = []
        for kind in KINDS:
            outcomes = [o for case, o, _, _ in rows if case.kind == kind]
            if not outcomes:
                row[kind] = None
                cells.append(f" {'–':>20}")
                continue
            mix = {o: outcomes.count(o) / len(outcomes) for o in ("answer", "closest", "none")}
            row[kind] = {**mix, "n": len(outcomes)}
            cells.append(f" {mix['answer']:.2f}/{mix['closest']:.2f}/{mix['none']:.2f} ({len(outcomes):>4})")
        figures[dataset] = row
        shown = {key: "–" if row[key] is None else f"{row[key]:.3f}" for key in ("hit1", "covered", "precision")}
        right = "–" if row["shown_right"] is None else f"{row['shown_right']:.3f}"
        lines.append(
            f"{dataset:<22} {n:>5} {shown['hit1']:>6} {shown['covered']:>8} {shown['precision']:>9} {right:>11}"
            + "".join(cells)
        )
    return "\n".join(lines), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-article", type=int, default=40, help="answerable SQuAD 2.0 questions per article")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--by-language", action="store_true", help="rows by question language where a set says")
    args = parser.parse_args()
    started = time.perf_counter()
    base = Settings.from_env()
    embedder = Engine(base).embedder

    def engine_for(index_dir: Path) -> Engine:
        return Engine(dataclasses.replace(base, index_dir=index_dir), embedder=embedder)

    with tempfile.TemporaryDirectory(prefix="rag-answerability-") as tmp:
        work = Path(tmp)
        engine = engine_for(work / "unused")
        article = next((REPO / "seeds").glob("*.txt")).read_text(encoding="utf-8")
        indexes = {"bundled": build(engine_for, "bundled", [article], work)}
        cases = bundled_cases() + own_cases()
        own = engine_for(work / "index-own")
        own.build_index([REPO / "seeds", EVAL / "own" / "docs"])
        indexes["own"] = own.load_index()
        for corpus in ("de", "es", "en"):
            texts, more = xquad_cases(corpus)
            indexes[f"XQuAD-R en→{corpus}"] = build(engine_for, f"xquad-{corpus}", texts, work)
            cases += more
        texts, more = normans_cases()
        indexes["normans"] = build(engine_for, "normans", texts, work)
        cases += more
        texts, more = squad_cases(args.per_article)
        indexes["squad"] = build(engine_for, "squad", texts, work)
        cases += more
        built = time.perf_counter() - started

        ours, dense, seconds = [], [], []
        reduced: tuple = (None, None)  # one reduced index at a time: each is a copy of its token vectors
        for case in sorted(cases, key=lambda c: (c.index, c.removed or ("",))):
            index = indexes[case.index]
            if case.removed:
                if reduced[0] != (case.index, case.removed):
                    reduced = ((case.index, case.removed), without(index, case.removed))
                index = reduced[1]
            begun = time.perf_counter()
            answer: Answer = engine.answer(case.question, index=index)
            took = time.perf_counter() - begun
            seconds.append(took)
            first = answer.citations[0] if answer.citations else None
            ours.append((case, answer.outcome, bool(first and case.right and case.right(first)), took))
            cosine, citation = dense_answer(engine, index, case.question)
            dense.append((case, cosine, bool(case.right and case.right(citation))))

    calibration = sorted(c for case, c, _ in dense if case.dataset.startswith("SQuAD") and case.kind == "answerable")
    cut = calibration[int(0.10 * len(calibration))]
    dense_results = [(case, "none" if cosine < cut else "answer", right, 0.0) for case, cosine, right in dense]
    ours_text, ours_figures = table(ours, args.by_language)
    dense_text, dense_figures = table(dense_results, args.by_language)
    print(
        f"rag ({base.backend}, {base.answerer}, target precision {base.confident_precision});"
        " each unanswerable kind: confident/closest/none (n)"
    )
    print(ours_text)
    print(f"\nplain dense retrieval, answering when the nearest sentence's cosine >= {cut:.4f}")
    print(dense_text)
    print(
        f"\n{len(cases)} questions; indexes built in {built:.0f} s; rag's answer p50 "
        f"{1000 * float(np.median(seconds)):.1f} ms in process"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"rag": ours_figures, "dense": dense_figures, "dense_cut": cut}, indent=2) + "\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
