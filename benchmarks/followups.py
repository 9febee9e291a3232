"""Follow-up questions read with their conversation, measured.

    .venv/bin/python benchmarks/followups.py [--json FILE] [--docs tune|check|all]

The bundled article and eval/own's six documents are indexed together. Each conversation of
eval/followups/conversations.jsonl is played as a client plays it: its earlier questions asked in
turn, each with the conversation so far (questions and the answers given), then the follow-up.
Per kind it prints, over the answerable follow-ups: the first citation right (whatever the
outcome), confident and right, shown right (confident or closest, first citation right); over the
unanswerable ones, how many got a confident answer; and the same follow-ups asked alone, without
the conversation.

Self-contained questions must not be pulled toward the conversation: every question of
eval/own/questions.jsonl and eval/dev.jsonl is also asked after an earlier question about another
document (the "switch" row) and after one about the same document ("same doc"), and compared
with the same question asked alone: how often the first citation and the outcome stay the same,
and the first citation right and confident precision either way.

--docs splits the conversations by document: "tune" (the article, Tidewater, Falkenbrück, La
Encina) is what resolution was developed on; "check" (Palazzo Varani, Vila Serena, Belvaux) was
looked at only to report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
EVAL = REPO / "eval"

from rag.answer.base import Answer  # noqa: E402
from rag.answer.questions import Turn  # noqa: E402
from rag.answer.smalltalk import CHITCHAT  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.evaluation import read_questions  # noqa: E402
from rag.settings import Settings  # noqa: E402

KINDS = ("ellipsis", "pronoun", "and-x", "why", "topic-switch", "unanswerable")
CHECK_DOCS = {
    "museo_palazzo_varani_guida.md",
    "uvs_bolsas_merito_2027.html",
    "ligne_belvaux_saint_aubin_bilan_2025.pdf",
}
ARTICLE = "000_8cb13a5d0c7818f1.txt"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def right(answer: Answer, expect: list[str]) -> bool:
    return bool(answer.citations) and any(e in answer.citations[0].text for e in expect)


def play(engine: Engine, index, earlier: list[str], question: str) -> Answer:
    """The follow-up's answer after its earlier questions were asked in turn, as a client sends them."""
    history: list[Turn] = []
    for asked in earlier:
        answer = engine.answer(asked, index=index, history=history)
        history += [Turn("user", asked), Turn("assistant", answer.answer)]
    return engine.answer(question, index=index, history=history)


def share(hits: int, n: int) -> str:
    return f"{hits}/{n}"


def followups(engine: Engine, index, docs: str) -> tuple[str, dict]:
    rows: dict[str, list[tuple[Answer, Answer, dict]]] = defaultdict(list)
    for item in lines(EVAL / "followups" / "conversations.jsonl"):
        held = item["doc"] in CHECK_DOCS
        if (docs == "tune" and held) or (docs == "check" and not held):
            continue
        read = play(engine, index, item["history"], item["question"])
        alone = engine.answer(item["question"], index=index)
        rows[item["kind"]].append((read, alone, item))
    out = [
        f"{'kind':<14} {'n':>3} {'first right':>12} {'alone':>6} {'confident right':>16} {'alone':>6} "
        f"{'shown right':>12} {'confident wrong':>16}"
    ]
    figures = {}
    for kind in KINDS:
        cases = rows.get(kind, [])
        n = len(cases)
        if kind == "unanswerable":
            wrong = sum(read.outcome == "answer" for read, _, _ in cases)
            wrong_alone = sum(alone.outcome == "answer" for _, alone, _ in cases)
            out.append(
                f"{kind:<14} {n:>3} {'':>12} {'':>6} {'':>16} {'':>6} {'':>12} {share(wrong, n):>10} "
                f"(alone {wrong_alone})"
            )
            figures[kind] = {"n": n, "confident": wrong, "confident_alone": wrong_alone}
            continue
        first = sum(right(read, item["expect"]) for read, _, item in cases)
        first_alone = sum(right(alone, item["expect"]) for _, alone, item in cases)
        sure = sum(read.outcome == "answer" and right(read, item["expect"]) for read, _, item in cases)
        sure_alone = sum(alone.outcome == "answer" and right(alone, item["expect"]) for _, alone, item in cases)
        shown = sum(read.outcome != "none" and right(read, item["expect"]) for read, _, item in cases)
        wrong = sum(read.outcome == "answer" and not right(read, item["expect"]) for read, _, item in cases)
        out.append(
            f"{kind:<14} {n:>3} {share(first, n):>12} {first_alone:>6} {share(sure, n):>16} {sure_alone:>6} "
            f"{share(shown, n):>12} {share(wrong, n):>16}"
        )
        figures[kind] = {
            "n": n,
            "first_right": first,
            "first_right_alone": first_alone,
            "confident_right": sure,
            "confident_right_alone": sure_alone,
            "shown_right": shown,
            "confident_wrong": wrong,
        }
    for group, on_article in (("the bundled article", True), ("own documents", False)):
        cases = [(read, alone, item) for kind in KINDS[:-1] for read, alone, item in rows.get(kind, [])]
        cases = [case for case in cases if (case[2]["doc"] == ARTICLE) == on_article]
        first = sum(right(read, item["expect"]) for read, _, item in cases)
        first_alone = sum(right(alone, item["expect"]) for _, alone, item in cases)
        out.append(f"answerable follow-ups on {group}: first right {first}/{len(cases)} (alone {first_alone})")
        figures[group] = {"n": len(cases), "first_right": first, "first_right_alone": first_alone}
    smalltalk = sum(read.answer == CHITCHAT for cases in rows.values() for read, _, _ in cases)
    smalltalk_alone = sum(alone.answer == CHITCHAT for cases in rows.values() for _, alone, _ in cases)
    out.append(f"follow-ups taken for small talk: {smalltalk} (alone {smalltalk_alone})")
    figures["taken_for_small_talk"] = {"read": smalltalk, "alone": smalltalk_alone}
    return "\n".join(out), figures


def small_talk(engine: Engine, index) -> tuple[str, dict]:
    """eval/chitchat_test.jsonl alone and after a question about the article: still small talk?"""
    earlier = lines(EVAL / "dev.jsonl")[0]["question"]
    texts = [question.text for question in read_questions(EVAL / "chitchat_test.jsonl")]
    alone = sum(engine.answer(text, index=index).answer == CHITCHAT for text in texts)
    answers = [play(engine, index, [earlier], text) for text in texts]
    after = sum(answer.answer == CHITCHAT for answer in answers)
    confident = sum(answer.outcome == "answer" for answer in answers)
    line = (
        f"small talk (eval/chitchat_test.jsonl) told as such: alone {alone}/{len(texts)}, after a question "
        f"{after}; answered confidently after a question: {confident}"
    )
    return line, {"n": len(texts), "alone": alone, "after_question": after, "confident_after_question": confident}


def self_contained(engine: Engine, index) -> tuple[str, dict]:
    """Each question asked alone, after a question about another document and after one about the same."""
    questions = lines(EVAL / "own" / "questions.jsonl") + [
        {**item, "doc": ARTICLE, "kind": "answerable" if item.get("expect") else "off-topic"}
        for item in lines(EVAL / "dev.jsonl")
    ]
    by_doc = defaultdict(list)
    for item in questions:
        if item.get("expect"):
            by_doc[item["doc"]].append(item["question"])
    docs = sorted(by_doc)
    out = [
        f"{'asked after':<12} {'n':>4} {'same first':>11} {'same outcome':>13} {'first right':>12} {'alone':>6} "
        f"{'precision':>10} {'alone':>6}"
    ]
    figures = {}
    alone = {item["question"]: engine.answer(item["question"], index=index) for item in questions}
    for name in ("another doc", "same doc"):
        same_first = same_outcome = first = first_alone = n = 0
        sure = [0, 0]
        sure_alone = [0, 0]
        for number, item in enumerate(questions):
            if name == "another doc":
                doc = item.get("doc")
                other = docs[(docs.index(doc) + 1) % len(docs)] if doc in by_doc else docs[number % len(docs)]
                pool = by_doc[other]
            else:
                pool = [q for q in by_doc.get(item.get("doc"), []) if q != item["question"]]
                if not pool:
                    continue
            earlier = pool[number % len(pool)]
            read = play(engine, index, [earlier], item["question"])
            single = alone[item["question"]]
            n += 1
            cited = [a.citations[0].text if a.citations else None for a in (read, single)]
            same_first += cited[0] == cited[1]
            same_outcome += read.outcome == single.outcome
            expect = item.get("expect") or []
            first += right(read, expect)
            first_alone += right(single, expect)
            for counts, answer in ((sure, read), (sure_alone, single)):
                if answer.outcome == "answer":
                    counts[0] += 1
                    counts[1] += right(answer, expect)
        precision = sure[1] / sure[0] if sure[0] else 0.0
        precision_alone = sure_alone[1] / sure_alone[0] if sure_alone[0] else 0.0
        out.append(
            f"{name:<12} {n:>4} {same_first:>11} {same_outcome:>13} {first:>12} {first_alone:>6} "
            f"{precision:>10.3f} {precision_alone:>6.3f}"
        )
        figures[name] = {
            "n": n,
            "same_first": same_first,
            "same_outcome": same_outcome,
            "first_right": first,
            "first_right_alone": first_alone,
            "precision": precision,
            "precision_alone": precision_alone,
            "confident": sure[0],
            "confident_alone": sure_alone[0],
        }
    return "\n".join(out), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--docs", choices=("tune", "check", "all"), default="all")
    parser.add_argument("--skip-self-contained", action="store_true", help="only the follow-up table")
    args = parser.parse_args()
    started = time.perf_counter()
    base = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="rag-followups-") as tmp:
        engine = Engine(dataclasses.replace(base, index_dir=Path(tmp) / "index"))
        engine.build_index([REPO / "seeds", EVAL / "own" / "docs"])
        index = engine.load_index()
        text, figures = followups(engine, index, args.docs)
        print(f"follow-ups ({args.docs} documents), played with their conversation:\n{text}\n")
        results = {"followups": figures}
        text, results["small_talk"] = small_talk(engine, index)
        print(text + "\n")
        if not args.skip_self_contained:
            text, figures = self_contained(engine, index)
            print(f"self-contained questions inside a conversation, against the same asked alone:\n{text}\n")
            results["self_contained"] = figures
    print(f"{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
