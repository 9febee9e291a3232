"""The calibration's fitting steps on made-up cases: the bars per target precision and the labels.
The fit itself reads public sets kept outside the repository (docs/answer-quality.md)."""

import importlib.util

import numpy as np
import pytest

from .conftest import REPO


@pytest.fixture(scope="module")
def fitting():
    spec = importlib.util.spec_from_file_location("fitting", REPO / "training" / "confidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases(rng, count, precision_at):
    """Probabilities spread over (0, 1) and labels right with probability ``precision_at(p)``."""
    p = rng.uniform(0, 1, count)
    return p, (rng.uniform(0, 1, count) < precision_at(p)).astype(float)


def test_calibrated_probabilities_give_bars_that_hold_their_precision(fitting):
    rng = np.random.default_rng(0)
    p, y = cases(rng, 20_000, lambda p: p)
    bars = fitting.thresholds_for(p, y, np.ones_like(p))
    # Above a bar b the precision is (1 + b) / 2: the test keeps bars a little above 2 * target - 1.
    for target in (0.6, 0.75, 0.9):
        assert 2 * target - 1 <= bars[target] <= 2 * target - 1 + 0.05, (target, bars[target])
        fresh_p, fresh_y = cases(rng, 20_000, lambda p: p)
        assert fresh_y[fresh_p >= bars[target]].mean() >= target - 0.01
    assert list(bars.values()) == sorted(bars.values())


def test_a_target_the_cases_never_reach_gets_no_bar(fitting):
    rng = np.random.default_rng(1)
    p, y = cases(rng, 5_000, lambda p: np.full_like(p, 0.7))  # the probability says nothing
    bars = fitting.thresholds_for(p, y, np.ones_like(p))
    assert bars[0.9] == 1.0 and bars[0.8] == 1.0
    assert bars[0.6] < 0.05, "every bar is 70 % right"


def test_weights_count_as_their_effective_number_of_cases(fitting):
    rng = np.random.default_rng(2)
    p, y = cases(rng, 400, lambda p: p)
    few = np.where(np.arange(400) < 4, 100.0, 1e-6)  # four cases carry all the weight
    assert set(fitting.thresholds_for(p, y, few).values()) == {1.0}, "four cases test nothing"


def test_an_answer_text_found_in_another_sentence_makes_it_right(fitting):
    def record(kind, texts, answer_text="", question="When did it open?"):
        top = [{"text": text, "right": False} for text in texts]
        return {
            "dataset": "Set one document",
            "question": question,
            "kind": kind,
            "answer_text": answer_text,
            "top": top,
        }

    answerable = record("answerable", ["It opened in 1911.", "Nothing here."], "1911")
    removed = record("sentence-removed", ["Founded in 1911 too.", "No."])
    removed["dataset"] = "Set"
    short = record("answerable", ["Il y a un an."], "an", question="Depuis quand ?")
    fitting.relabel([answerable, removed, short])
    assert [c["right"] for c in answerable["top"]] == [True, False]
    assert removed["top"][0]["right"], "the same question in the whole set's corpus"
    assert not short["top"][0]["right"], "answers under 4 characters are not looked up"
