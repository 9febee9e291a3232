"""Answer quality with the real default model on the bundled article, in process."""

import dataclasses
import itertools
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.answer.questions import Turn
from rag.engine import Engine
from rag.evaluation import evaluate, read_questions
from rag.settings import Settings

from .conftest import REPO, SEEDS, model_cache_dir, retrain

pytestmark = pytest.mark.model
EVAL = REPO / "eval"
ARTICLE = "000_8cb13a5d0c7818f1.txt"
# Measured on eval/followups' 15 conversations on the article: the first sentence right for 6 of
# the 12 answerable follow-ups (3 alone); 1 of the 3 unanswerable answered confidently ("¿y qué le
# contestó Macron?" after a question on Zelensky cites Zelensky).
FOLLOW_UPS_RIGHT = 6
UNANSWERABLE_FOLLOW_UPS_ANSWERED = 1
SELF_CONTAINED_CHANGED = 1  # measured: "Welche Waffenruhen wurden vereinbart?", not answered confidently alone


@pytest.fixture(scope="module")
def engine(seeds_engine):
    return seeds_engine


@pytest.fixture(scope="module")
def dev_report(engine):
    return evaluate(read_questions(EVAL / "dev.jsonl") + read_questions(EVAL / "dev_offtopic.jsonl"), engine.answer)


def first_is_expected(outcome) -> bool:
    """The first citation holds an expected substring, whatever the outcome (answer or closest passage)."""
    citations = outcome.answer.citations
    return bool(citations) and any(e in citations[0].text for e in outcome.question.expect)


def test_dev_questions_are_answered_from_the_right_sentence_or_offered_as_the_closest(dev_report):
    """Floors are what was measured with the shipped calibration (training/confidence.py, which
    never reads these sets) at the default target precision: 13 of 18 answered confidently, each
    from the right sentence; the right sentence first for 17 of 18, answered or offered as the
    closest passage; no off-topic question answered."""
    answerable = dev_report.answerable
    assert len(answerable) == 18 and len(dev_report.unanswerable) == 6
    assert dev_report.answered >= 13
    assert all(o.rank == 1 for o in answerable if not o.answer.abstained), "every answer cites the right sentence"
    assert sum(first_is_expected(o) for o in answerable) >= 17
    assert all(o.answer.abstained for o in dev_report.unanswerable)
    assert all(o.answer.confidence is not None and 0 <= o.answer.confidence <= 1 for o in dev_report.outcomes)


def test_the_confidence_orders_the_outcomes(dev_report, engine):
    """A confident answer's confidence reaches the bar for the target precision; a closest passage's
    lies between the two bars; "not in the documents" cites nothing."""
    bars = engine.answering.bars
    for outcome in dev_report.outcomes:
        answer = outcome.answer
        if answer.outcome == "answer":
            assert answer.confidence >= bars.answer
        elif answer.outcome == "closest":
            assert bars.closest <= answer.confidence < bars.answer
            assert answer.answer.startswith("The documents may not say this directly; the closest passage is: ")
        else:
            assert answer.citations == [] and answer.answer.startswith("The documents do not say.")
    assert {o.answer.outcome for o in dev_report.outcomes} == {"answer", "closest", "none"}


def test_near_topic_questions_are_not_answered_confidently(engine):
    """eval/dev_neartopic.jsonl: about the article's people and places, not answered by it."""
    report = evaluate(read_questions(EVAL / "dev_neartopic.jsonl"), engine.answer)
    assert sum(o.answer.abstained for o in report.unanswerable) >= 9  # measured: 9 of 10 (8 before the calibration)


def test_our_own_questions_hold_their_measured_level(engine):
    """eval/extra.jsonl: 27 questions in 8 languages and 16 off-topic ones, written without
    looking at the scores; the floors are what was measured when the calibration was fitted."""
    report = evaluate(read_questions(EVAL / "extra.jsonl"), engine.answer)
    assert sum(first_is_expected(o) for o in report.answerable) >= 24
    assert report.answered >= 23
    assert sum(o.rank == 1 for o in report.answerable) >= 22
    assert all(o.answer.abstained for o in report.unanswerable)


def test_follow_ups_are_resolved_by_the_conversation(engine):
    """eval/dev_followups.jsonl: the expected sentence first for 7 of 8 with the history (as
    answer, or as the closest passage), 5 of 8 for the question alone. Whether to answer is decided
    on the reading with the conversation: 4 answered, each from the right sentence."""
    questions = read_questions(EVAL / "dev_followups.jsonl")
    report = evaluate(questions, engine.answer)
    assert sum(first_is_expected(o) for o in report.outcomes) >= 7
    assert report.answered >= 4
    assert all(o.rank == 1 for o in report.outcomes if not o.answer.abstained)
    alone = evaluate([dataclasses.replace(q, history=()) for q in questions], engine.answer)
    assert sum(first_is_expected(o) for o in alone.outcomes) <= 5, "the history did it"


def play(engine, earlier: list[str], question: str):
    """The answer to ``question`` after ``earlier`` were asked in turn, as a client sends them."""
    history = []
    for asked in earlier:
        history += [Turn("user", asked), Turn("assistant", engine.answer(asked, history=history).answer)]
    return engine.answer(question, history=history)


def test_follow_ups_on_the_article_are_read_with_the_conversation(engine):
    """eval/followups' conversations on the bundled article (played with the answers given): the
    right sentence first more often than for the follow-up alone, no unanswerable follow-up answered
    confidently, and the topic switches answered as when asked alone."""
    items = [json.loads(line) for line in (EVAL / "followups" / "conversations.jsonl").read_text().splitlines()]
    items = [item for item in items if item["doc"] == ARTICLE]
    asked = [(item, play(engine, item["history"], item["question"]), engine.answer(item["question"])) for item in items]
    answerable = [(item, read, alone) for item, read, alone in asked if item.get("expect")]
    right = sum(
        any(e in read.citations[0].text for e in item["expect"]) for item, read, _ in answerable if read.citations
    )
    right_alone = sum(
        any(e in alone.citations[0].text for e in item["expect"]) for item, _, alone in answerable if alone.citations
    )
    assert right >= FOLLOW_UPS_RIGHT and right > right_alone, (right, right_alone)
    sure = [item["question"] for item, read, _ in asked if not item.get("expect") and read.outcome == "answer"]
    assert len(sure) <= UNANSWERABLE_FOLLOW_UPS_ANSWERED, sure
    for item, read, alone in asked:
        if item["kind"] == "topic-switch":
            assert (read.citations[:1], read.outcome) == (alone.citations[:1], alone.outcome), item["question"]
        if read.resolved_question != item["question"]:
            assert read.resolved_question == f"{item['history'][-1]} {item['question']}"


def test_a_self_contained_question_after_another_keeps_its_answer(engine):
    """Each dev question asked after the one before it: answered as when asked alone."""
    questions = [q.text for q in read_questions(EVAL / "dev.jsonl")]
    changed = []
    for earlier, question in itertools.pairwise(questions):
        read, alone = play(engine, [earlier], question), engine.answer(question)
        if (read.citations[:1], read.outcome) != (alone.citations[:1], alone.outcome):
            changed.append(question)
    assert len(changed) <= SELF_CONTAINED_CHANGED, changed


def _figures(engine):
    questions = [read_questions(EVAL / name) for name in ("dev.jsonl", "dev_offtopic.jsonl", "extra.jsonl")]
    report = evaluate([q for group in questions for q in group], engine.answer)
    return {key: value for key, value in report.figures().items() if not key.startswith("latency")}


def test_the_fast_path_scores_as_well_as_the_torch_model(engine, torch_embedder, tmp_path):
    """The int8 ONNX export must not cost retrieval quality: every figure at least torch's."""
    settings = Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS, cache_dir=model_cache_dir(), backend="torch")
    reference = Engine(settings, embedder=torch_embedder)
    reference.build_index()
    fast, torch = _figures(engine), _figures(reference)
    assert {key: fast[key] >= value for key, value in torch.items()} == dict.fromkeys(torch, True), (fast, torch)


def test_an_hnsw_index_gives_the_same_answers_as_the_exact_one(engine, tmp_path):
    settings = Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS, cache_dir=model_cache_dir(), index_type="hnsw")
    graph = Engine(settings, embedder=engine.embedder)
    graph.build_index()
    assert graph.index.manifest["vector_index"]["type"] == "IndexHNSWFlat"
    questions = [q.text for q in read_questions(EVAL / "extra.jsonl")]
    assert [graph.answer(q).to_dict() for q in questions] == [engine.answer(q).to_dict() for q in questions]


def test_every_citation_is_the_documents_own_text(engine, dev_report):
    for outcome in dev_report.outcomes:
        answer = outcome.answer
        assert 0 <= len(answer.citations) <= 3
        assert [c.id for c in answer.citations] == list(range(1, len(answer.citations) + 1))
        for citation in answer.citations:
            text = engine.index.documents[citation.document].text
            assert citation.text == text[citation.start : citation.end]
            if not answer.abstained:
                assert f"{citation.text} [{citation.id}]" in answer.answer


def test_concurrent_answers_equal_sequential_ones(engine):
    questions = [q.text for q in read_questions(EVAL / "extra.jsonl")][:24]
    one_by_one = [engine.answer(q).to_dict() for q in questions]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda q: engine.answer(q).to_dict(), questions))
    assert together == one_by_one


def test_rag_eval_prints_the_figures_and_exits_non_zero_below_a_bar(engine):
    env = {
        **os.environ,
        "RAG_INDEX_DIR": str(engine.settings.index_dir),
        "RAG_CACHE_DIR": str(model_cache_dir()),
        "HF_HUB_OFFLINE": "1",
    }
    bars = ["--min-hit1", "1", "--min-hit3", "1", "--min-abstention-recall", "1", "--min-abstention-precision", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "rag", "eval", "eval/dev.jsonl", "--offtopic", "eval/dev_offtopic.jsonl", *bars],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "questions             18 answerable, 6 off-topic" in result.stdout
    labels = ("hit@1", "hit@3", "MRR", "answered", "confident precision", "shown right", "abstention precision")
    for label in (*labels, "abstention recall", "latency"):
        assert re.search(rf"^{label} +\S", result.stdout, re.MULTILINE), label
    misses = re.findall(
        r"^miss: (['\"]).+?\1 wanted .+; got (?:not in the documents$|(?:closest passage: )?\[1\] sentence \d+: )",
        result.stdout,
        re.MULTILINE,
    )
    hit1 = float(re.search(r"^hit@1 +([\d.]+)", result.stdout, re.MULTILINE).group(1))
    assert len(misses) == round((1 - hit1) * 18), "each miss is listed with what was cited instead"
    if hit1 < 1:
        assert result.returncode == 3 and f"hit@1 {hit1:.3f} < 1.0" in result.stderr.strip().splitlines()[-1]
    else:
        assert result.returncode == 0


def test_the_fitting_script_reproduces_the_shipped_thresholds(tmp_path):
    again = retrain("answerability.py", tmp_path / "thresholds.json")
    shipped = json.loads((REPO / "rag" / "data" / "answerability.json").read_text(encoding="utf-8"))
    assert again["fitted_on"] == shipped["fitted_on"] and again["model"] == shipped["model"]
    for key in ("same_language", "other_language"):
        assert abs(again[key] - shipped[key]) <= 1e-3, (key, again[key], shipped[key])
