"""Scoring answers against a question file: hit@1, hit@3, MRR, abstention, latency."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .answer.base import Answer
from .answer.questions import Turn
from .errors import InputError


@dataclass(frozen=True)
class Question:
    text: str
    expect: list[str]  # substrings of a sentence that answers it; empty: the article does not answer it
    history: tuple[str, ...] = ()  # the user's earlier questions in the conversation, oldest first


@dataclass(frozen=True)
class Outcome:
    question: Question
    answer: Answer
    seconds: float

    @property
    def rank(self) -> int | None:
        """Position of the first citation holding an expected substring (1 = first), or None."""
        if self.answer.abstained:
            return None
        for position, citation in enumerate(self.answer.citations, start=1):
            if any(expected in citation.text for expected in self.question.expect):
                return position
        return None


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def answerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.question.expect]

    @property
    def unanswerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.question.expect]

    def hit_at(self, k: int) -> float:
        return _share(sum(o.rank is not None and o.rank <= k for o in self.answerable), len(self.answerable))

    @property
    def mrr(self) -> float:
        return _share(sum(1 / o.rank for o in self.answerable if o.rank), len(self.answerable))

    @property
    def answered(self) -> int:
        return sum(not o.answer.abstained for o in self.answerable)

    @property
    def confident(self) -> list[Outcome]:
        """Every question answered confidently, answerable or not."""
        return [o for o in self.outcomes if not o.answer.abstained]

    @property
    def confident_precision(self) -> float:
        """The share of confident answers whose first citation holds the answer."""
        return _share(sum(o.rank == 1 for o in self.confident), len(self.confident))

    @property
    def shown_right(self) -> int:
        """Answerable questions whose first citation holds the answer, answered or offered as the closest passage."""
        return sum(
            bool(o.answer.citations) and any(e in o.answer.citations[0].text for e in o.question.expect)
            for o in self.answerable
        )

    @property
    def abstention_precision(self) -> float:
        abstained = [o for o in self.outcomes if o.answer.abstained]
        return _share(sum(not o.question.expect for o in abstained), len(abstained))

    @property
    def abstention_recall(self) -> float:
        return _share(sum(o.answer.abstained for o in self.unanswerable), len(self.unanswerable))

    @property
    def seconds(self) -> list[float]:
        return [o.seconds for o in self.outcomes]

    @property
    def misses(self) -> list[Outcome]:
        """Answerable questions whose first citation is wrong, and unanswerable ones answered."""
        return [o for o in self.answerable if o.rank != 1] + [o for o in self.unanswerable if not o.answer.abstained]

    def figures(self) -> dict:
        return {
            "questions": len(self.answerable),
            "offtopic_questions": len(self.unanswerable),
            "hit1": self.hit_at(1),
            "hit3": self.hit_at(3),
            "mrr": self.mrr,
            "answered": self.answered,
            "coverage": _share(self.answered, len(self.answerable)),
            "confident_precision": self.confident_precision,
            "shown_right": _share(self.shown_right, len(self.answerable)),
            "abstention_precision": self.abstention_precision,
            "abstention_recall": self.abstention_recall,
            "latency_mean_ms": 1000 * statistics.fmean(self.seconds) if self.seconds else 0.0,
            "latency_median_ms": 1000 * statistics.median(self.seconds) if self.seconds else 0.0,
        }


def _share(part: float, whole: int) -> float:
    return part / whole if whole else 1.0  # nothing to get wrong counts as perfect


def read_questions(path: Path) -> list[Question]:
    """Lines of {"question": ..., "expect": [...], "history": [...]}; a line without "expect" is a
    question the article does not answer; "history" holds the user's earlier questions of a
    conversation, oldest first. Blank lines are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise InputError(f"{path}:{number} is not a JSON object") from None
        expect = item.get("expect", []) if isinstance(item, dict) else None
        history = item.get("history", []) if isinstance(item, dict) else None
        if not (
            isinstance(item, dict)
            and isinstance(item.get("question"), str)
            and isinstance(expect, list)
            and all(isinstance(e, str) and e for e in expect)
            and isinstance(history, list)
            and all(isinstance(h, str) and h for h in history)
        ):
            raise InputError(
                f'{path}:{number} needs "question" (text) and optionally "expect" and "history" (lists of text)'
            )
        questions.append(Question(text=item["question"], expect=expect, history=tuple(history)))
    if not questions:
        raise InputError(f"{path} holds no questions")
    return questions


@dataclass(frozen=True)
class Article:
    text: str
    paragraphs: list[tuple[int, int]]  # (start, end) of each paragraph in text
    questions: list[dict]  # {"id", "question", "paragraph", "answers": [(start, end)], "impossible"}


def read_squad(path: Path) -> list[Article]:
    """The articles of a SQuAD-format file (SQuAD 2.0, XQuAD-R), paragraphs joined by line breaks,
    with each question's answers as offsets into the article."""
    articles = []
    for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
        text, spans, questions = "", [], []
        for number, paragraph in enumerate(entry["paragraphs"]):
            start = len(text) + (1 if text else 0)
            text = (text + "\n" if text else "") + paragraph["context"]
            spans.append((start, len(text)))
            for qa in paragraph["qas"]:
                answers = [
                    (start + a["answer_start"], start + a["answer_start"] + len(a["text"])) for a in qa["answers"]
                ]
                questions.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "paragraph": number,
                        "answers": answers,
                        "impossible": bool(qa.get("is_impossible")),
                    }
                )
        articles.append(Article(text, spans, questions))
    return articles


def article_id(number: int) -> str:
    return f"article-{number:02d}"


def write_articles(texts: list[str], folder: Path) -> Path:
    """Each text as one document of a new ``folder`` (``article-NN.txt``, in order), to be indexed."""
    folder.mkdir()
    for number, text in enumerate(texts):
        (folder / f"{article_id(number)}.txt").write_text(text, encoding="utf-8")
    return folder


def evaluate(questions: list[Question], answer: Callable[..., Answer]) -> Report:
    """``answer(text, history=turns)`` for each question."""
    report = Report()
    for question in questions:
        started = time.perf_counter()
        result = answer(question.text, history=[Turn("user", earlier) for earlier in question.history])
        report.outcomes.append(Outcome(question=question, answer=result, seconds=time.perf_counter() - started))
    return report


def describe(report: Report) -> str:
    """The report for a person: the figures, then each miss with what was cited instead."""
    figures = report.figures()
    answerable, offtopic = len(report.answerable), len(report.unanswerable)
    abstained = [o for o in report.outcomes if o.answer.abstained]
    right = sum(not o.question.expect for o in abstained)
    lines = [
        f"questions             {answerable} answerable, {offtopic} off-topic",
        f"hit@1                 {figures['hit1']:.3f}  ({sum(o.rank == 1 for o in report.answerable)}/{answerable})",
        f"hit@3                 {figures['hit3']:.3f}  ({sum(bool(o.rank) for o in report.answerable)}/{answerable})",
        f"MRR                   {figures['mrr']:.3f}",
        f"answered              {report.answered}/{answerable} confidently",
        f"confident precision   {figures['confident_precision']:.3f}"
        f"  ({sum(o.rank == 1 for o in report.confident)}/{len(report.confident)} confident answers right)",
        f"shown right           {report.shown_right}/{answerable}  (first citation right, answered or closest passage)",
        f"abstention precision  {figures['abstention_precision']:.3f}  ({right}/{len(abstained)} abstentions right)",
        f"abstention recall     {figures['abstention_recall']:.3f}  ({right}/{offtopic} off-topic abstained)",
        f"latency               mean {figures['latency_mean_ms']:.0f} ms, median {figures['latency_median_ms']:.0f} ms",
    ]
    for outcome in report.misses:
        question, answer = outcome.question, outcome.answer
        wanted = " or ".join(repr(e) for e in question.expect) or "an abstention"
        cited = "; ".join(f"[{c.id}] sentence {c.sentence}: {c.text[:70]}…" for c in answer.citations)
        got = {"answer": cited, "closest": f"closest passage: {cited}", "none": "not in the documents"}[answer.outcome]
        lines.append(f"miss: {question.text!r} wanted {wanted}, rank {outcome.rank or '-'}; got {got}")
    return "\n".join(lines)
