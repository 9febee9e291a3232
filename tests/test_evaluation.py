"""`rag eval`: reading question files and the figures it reports. No model."""

import pytest

from rag.answer.base import Answer, Citation
from rag.errors import InputError
from rag.evaluation import Question, describe, evaluate, read_questions


def cite(*texts):
    return [
        Citation(id=i, document="d", sentence=i, start=0, end=len(t), text=t, score=0.5)
        for i, t in enumerate(texts, start=1)
    ]


def test_figures_count_ranks_abstentions_and_misses():
    questions = [
        Question("first right", ["alpha"]),
        Question("second right", ["beta"]),
        Question("none right", ["gamma"]),
        Question("wrongly abstained", ["delta"]),
        Question("off topic, abstained", []),
        Question("off topic, answered", []),
    ]
    replies = {
        "first right": Answer("", False, "", cite("x alpha x", "y")),
        "second right": Answer("", False, "", cite("y", "a beta")),
        "none right": Answer("", False, "", cite("y", "z")),
        "wrongly abstained": Answer("", True, "", cite("delta")),
        "off topic, abstained": Answer("", True, "", []),
        "off topic, answered": Answer("", False, "", cite("y")),
    }
    report = evaluate(questions, lambda text, history: replies[text])
    figures = report.figures()
    assert figures["questions"] == 4 and figures["offtopic_questions"] == 2
    assert figures["hit1"] == 1 / 4 and figures["hit3"] == 2 / 4
    assert figures["mrr"] == pytest.approx((1 + 1 / 2) / 4)
    assert report.answered == 3
    assert figures["abstention_precision"] == 1 / 2 and figures["abstention_recall"] == 1 / 2
    # Four confident answers (three answerable, one off-topic): one right.
    assert figures["coverage"] == 3 / 4 and figures["confident_precision"] == 1 / 4
    # The abstained "delta" citation is the closest passage, and it is right.
    assert report.shown_right == 2 and figures["shown_right"] == 2 / 4
    missed = [o.question.text for o in report.misses]
    assert missed == ["second right", "none right", "wrongly abstained", "off topic, answered"]
    text = describe(report)
    assert "hit@1                 0.250  (1/4)" in text
    assert "miss: 'none right' wanted 'gamma', rank -; got [1] sentence 1: y…; [2] sentence 2: z…" in text
    assert "confident precision   0.250  (1/4 confident answers right)" in text
    assert "miss: 'wrongly abstained' wanted 'delta', rank -; got closest passage: [1] sentence 1: delta…" in text


def test_question_files_are_read_and_bad_lines_named(tmp_path):
    good = tmp_path / "q.jsonl"
    good.write_text('{"question": "A?", "expect": ["a"]}\n\n{"question": "B?"}\n', encoding="utf-8")
    assert read_questions(good) == [Question("A?", ["a"]), Question("B?", [])]
    for content, message in [
        ('{"question": "A?"}\nnot json\n', r"q2.jsonl:2 is not a JSON object"),
        ('{"expect": ["a"]}\n', r'q2.jsonl:1 needs "question"'),
        ('{"question": "A?", "expect": "a"}\n', r'q2.jsonl:1 needs "question"'),
        ('{"question": "A?", "expect": [""]}\n', r'q2.jsonl:1 needs "question"'),
        ("[1, 2]\n", r'q2.jsonl:1 needs "question"'),
        ("\n", "holds no questions"),
    ]:
        bad = tmp_path / "q2.jsonl"
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(InputError, match=message):
            read_questions(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_questions(tmp_path / "missing.jsonl")
