"""The calibrated confidence and the three outcomes it chooses between: no model needed."""

import json

import numpy as np
import pytest

from rag.errors import RagError
from rag.retrieve.answerability import Bars, decide
from rag.retrieve.confidence import FEATURES, Calibration, Evidence, asks, cannot_state, holds_numeral
from rag.retrieve.late_interaction import Retrieval, Scored
from rag.settings import DEFAULT_MODEL, Settings


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("Le cessez-le-feu de 30 jours a été accepté.", True),
        ("وقعت الحادثة عام ٢٠١٩ في المدينة.", True),  # Arabic-Indic digits
        ("他在那里工作了三十年。", True),  # a Chinese numeral before a counter
        ("这是一些问题。", False),  # "一" inside a word is no number
        ("Trois pays ont signé.", False),  # number words are not numerals
        ("No number here.", False),
    ],
)
def test_a_numeral_is_found_in_any_script(text, holds):
    assert holds_numeral(text) is holds


@pytest.mark.parametrize(
    ("text", "language", "holds"),
    [
        ("depuis le début du second mandat de M. Trump, en janvier", "fr", True),
        ("Die Brücke wird im März gesperrt.", "de", True),
        ("He said it in May.", "en", True),
        ("Putin may agree to it.", "en", False),  # months are matched in their own case
        ("depuis janvier", None, False),  # no language, no month names
        ("depuis janvier", "not-a-language", False),
    ],
)
def test_a_month_counts_as_a_date_in_its_documents_language(text, language, holds):
    assert holds_numeral(text, language) is holds


def scored(score, threshold=0.70, coverage=(0.8, 0.7, 0.6)):
    return Scored(row=0, score=score, coverage=np.array(coverage), threshold=threshold)


def evidence(*ranked, text="Il a demandé 30 jours.", wants_number=0.1, same=1.0, question="Qu'a-t-il demandé ?"):
    found = Retrieval(np.zeros((3, 4)), list(ranked))
    return Evidence(question, found, text, "fr", same, wants_number)


@pytest.fixture(scope="module")
def shipped():
    calibration = Calibration.for_model(DEFAULT_MODEL)
    assert calibration is not None
    return calibration


def test_the_shipped_calibration_is_for_the_default_model_only(shipped):
    assert Calibration.for_model("another/model") is None
    assert set(shipped.features) <= set(FEATURES)
    assert len(shipped.weights) == len(shipped.features) == len(shipped.mean) == len(shipped.scale)
    assert shipped.number_weights.shape == (384,)


def test_a_higher_target_precision_never_answers_more(shipped):
    bars = [shipped.threshold(t) for t in np.arange(0.5, 0.86, 0.01)]
    assert bars == sorted(bars)
    assert shipped.closest_at < shipped.threshold(Settings().confident_precision) < 1


def test_a_target_above_what_was_calibrated_is_refused_in_one_line(shipped):
    too_high = max(shipped.confident_at) + 0.005
    with pytest.raises(RagError, match="RAG_CONFIDENT_PRECISION"):
        shipped.threshold(too_high)


def test_a_clear_lead_is_surer_than_a_near_tie(shipped):
    clear = shipped.probability(evidence(scored(0.82), scored(0.70), scored(0.69)))
    tied = shipped.probability(evidence(scored(0.82), scored(0.815), scored(0.81)))
    far = shipped.probability(evidence(scored(0.62), scored(0.61), scored(0.60)))
    assert 0 <= far < tied < clear <= 1


def test_the_lead_is_measured_against_the_best_clearance_of_the_others(shipped):
    """Ranked by raw score, the second candidate may stand under another language's higher
    threshold: the lead is over the candidate that clears best, wherever it ranks."""
    first = scored(0.653, threshold=0.673)
    higher_bar = scored(0.626, threshold=0.734)  # second by score, far below its own threshold
    close = scored(0.615, threshold=0.673)  # third by score, 0.038 behind in clearance
    alone = shipped.probability(evidence(first, close))
    assert shipped.probability(evidence(first, higher_bar, close)) == pytest.approx(alone, abs=0.02)


def test_a_question_that_wants_a_number_is_less_sure_of_a_sentence_without_one(shipped):
    ranked = (scored(0.80), scored(0.74))
    with_number = shipped.probability(evidence(*ranked, text="Il a demandé 30 jours.", wants_number=0.95))
    without = shipped.probability(evidence(*ranked, text="Il a demandé une trêve.", wants_number=0.95))
    assert without < with_number


def test_the_probability_chooses_between_three_outcomes():
    found = Retrieval(np.zeros((1, 4)), [scored(0.8)])
    bars = Bars(answer=0.5, closest=0.1)
    assert decide(found, True, 0.7, bars).answer
    closest = decide(found, True, 0.3, bars)
    assert not closest.answer and closest.show_closest and closest.confidence == 0.3
    none = decide(found, True, 0.05, bars)
    assert not none.answer and not none.show_closest
    assert not decide(Retrieval(np.zeros((1, 4)), []), True, None, bars).show_closest


def test_a_calibration_naming_an_unknown_feature_is_refused(tmp_path):
    from rag.retrieve.confidence import CONFIDENCE_FILE

    spec = json.loads(CONFIDENCE_FILE.read_text(encoding="utf-8"))
    spec["features"][0] = "telepathy"
    path = tmp_path / "confidence.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(RagError, match="telepathy"):
        Calibration.for_model(DEFAULT_MODEL, path)


@pytest.mark.parametrize("raw", ["0", "1", "1.5", "-0.2", "high", "nan"])
def test_the_target_precision_setting_is_checked(monkeypatch, raw):
    monkeypatch.setenv("RAG_CONFIDENT_PRECISION", raw)
    with pytest.raises(RagError, match="RAG_CONFIDENT_PRECISION must be a number between 0 and 1"):
        Settings.from_env()


def test_the_target_precision_setting_is_read(monkeypatch):
    monkeypatch.setenv("RAG_CONFIDENT_PRECISION", "0.8")
    assert Settings.from_env().confident_precision == 0.8


@pytest.mark.parametrize(
    ("text", "asking"),
    [
        ("Comment pouvez-vous nous aider à vous tenir informés ?", True),
        ("Was kostet die Brücke?“", True),
        ("这座桥什么时候建成？", True),
        ("متى بني الجسر؟", True),
        ("Il a demandé pourquoi ? Personne ne le sait.", False),
        ("The bridge was built in 1964; it is closed.", False),
    ],
)
def test_a_sentence_that_asks_is_told(text, asking):
    assert asks(text) is asking


@pytest.mark.parametrize(
    ("question", "sentence", "cannot"),
    [
        ("Which features came with Notes 5.2?", "Notes 5.3 is a feature release.", True),
        ("¿Cuántos socios tenía en 2020?", "En 2025 contaba con 412 socios.", True),
        ("How many passengers in 2025?", "En 2025, la ligne a transporté 612 000 voyageurs.", False),
        ("What did Putin demand?", "M. Poutine a demandé que l’Ukraine soit exclue de l’OTAN.", False),
        ("Was kostet das?", "Wie viel kostet das?", True),  # it asks
        ("Wann wurde die Brücke 1964 gebaut?", "Die Brücke wurde ١٩٦٤ gebaut.", False),  # digits of any script
    ],
)
def test_a_sentence_that_asks_or_lacks_the_questions_number_cannot_state_the_answer(question, sentence, cannot):
    assert cannot_state(question, sentence) is cannot


def test_a_first_sentence_that_cannot_state_the_answer_is_at_most_the_closest_passage():
    found = Retrieval(np.zeros((1, 4)), [scored(0.8)])
    bars = Bars(answer=0.5, closest=0.1)
    decision = decide(found, True, 0.9, bars, cannot_state=True)
    assert not decision.answer and decision.show_closest


def test_an_engine_with_an_unreached_target_precision_is_refused_before_it_reads_anything(tmp_path):
    from rag.engine import Engine

    from .conftest import FakeEmbedder

    settings = Settings(index_dir=tmp_path / "index", confident_precision=0.97)
    with pytest.raises(RagError, match=r"RAG_CONFIDENT_PRECISION=0\.97 is above what the calibration reaches"):
        Engine(settings, embedder=FakeEmbedder())
    assert not (tmp_path / "index").exists()
    assert Engine(Settings(index_dir=tmp_path / "index"), embedder=FakeEmbedder()).answering.bars.answer < 1
