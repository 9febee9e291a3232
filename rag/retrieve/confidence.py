"""How sure an answer is: the calibrated probability that its first citation answers the question.

A logistic model reads what the retrieval found (how far the first sentence clears its answer
threshold, its lead over the next ones, how evenly it covers the question's words, whether the
question and the sentence share a language) and whether the
sentence holds what the question asks for: a head over the question's pooled vector gives the
probability that the answer is a number, a date or a quantity, in any language the model reads,
and the sentence holds a numeral (or a month's name in its document's language) or not, and the
question's own numbers or not. Both are fitted by ``training/confidence.py`` on public question
sets in seven languages with their answer sentences present, removed, or their documents not
indexed (``rag/data/confidence.json`` names them); never on the bundled article.

From the probability come three outcomes: an answer when it reaches the bar chosen for a target
precision of confident answers (``RAG_CONFIDENT_PRECISION``: fixed-sequence testing of each bar's
error rate on out-of-fold fitting cases, so that the precision holds with 90 % confidence on
cases like those), the closest passage when it reaches a lower bar that keeps nearly every
answerable question's right sentence in view, and "not in the documents" below that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import RagError
from .late_interaction import Retrieval

CONFIDENCE_FILE = Path(__file__).resolve().parent.parent / "data" / "confidence.json"
RIVAL_GAP = 0.02  # candidates clearing within this of the first are its rivals

# A numeral in any script: decimal digits of every script (\d is Unicode-aware), and Chinese
# numerals before a counter or unit ("三十年", "五个"), since "一" alone is in many words.
_NUMERAL = re.compile(r"\d|[零〇一二三四五六七八九十百千万萬亿億两兩]+[年月日号號个個人名位次岁歲种種座元万萬亿億%％]")


@lru_cache(maxsize=64)
def _month_names(language: str | None) -> re.Pattern | None:
    """The month names of ``language`` as CLDR writes them (Babel), in their own case: a date
    such as "en janvier" or "im März" answers "when" as well as a year does."""
    if not language:
        return None
    from babel import Locale, UnknownLocaleError

    try:
        months = Locale.parse(language.replace("-", "_")).months
    except (UnknownLocaleError, ValueError):
        return None
    names = {name for context in ("format", "stand-alone") for name in months[context]["wide"].values()}
    return re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")


_DIGITS = re.compile(r"\d+")
# A sentence that ends as a question (in any script: ? ？ ؟ and the Greek ;), closing quotes aside, asks; it does
# not state an answer, however well it matches ("Comment pouvez-vous nous aider ?" under an article).
_ASKS = re.compile(r"[?？؟\u037e][\s\"'«»“”‘’)\]）」』]*$")


def asks(text: str) -> bool:
    return _ASKS.search(text) is not None


def cannot_state(question: str, sentence: str) -> bool:
    """Whether ``sentence`` cannot state the answer to ``question``, however well it matches: it
    asks a question itself, or it lacks a number the question names ("5.2" asked, "5.3" stated;
    "in 2020" asked, 2025 stated). Measured on the cases kept for reporting, the confident answers
    lacking one of the question's numbers were wrong 26 times in 28 (docs/answer-quality.md)."""
    return asks(sentence) or bool(missing_numbers(question, sentence))


def numbers(text: str) -> set[int]:
    """The runs of digits in ``text``, as numbers (any script's digits): "5.3.2" is {5, 3, 2}."""
    return {int(run) for run in _DIGITS.findall(text)}


def missing_numbers(question: str, sentence: str) -> set[int]:
    """The question's numbers that ``sentence`` does not hold."""
    return numbers(question) - numbers(sentence)


def holds_numeral(text: str, language: str | None = None) -> bool:
    """Whether ``text`` holds a numeral, or a month's name in ``language`` (its document's)."""
    if _NUMERAL.search(text) is not None:
        return True
    months = _month_names(language)
    return months is not None and months.search(text) is not None


@dataclass(frozen=True)
class Evidence:
    """What the calibration reads of one question's retrieval."""

    question: str
    retrieval: Retrieval  # ranked, at least one candidate
    first_text: str  # the first candidate's sentence
    first_language: str | None  # the language of its document, if known
    same_language: float  # the probability that the question is in that sentence's document's language
    wants_number: float  # the probability that the question's answer is a number, date or quantity


def _coverage(evidence: Evidence) -> np.ndarray:
    return np.asarray(evidence.retrieval.ranked[0].coverage, dtype=np.float64)


def _gap(evidence: Evidence) -> float:
    """How far the first candidate clears its threshold beyond the best of the others. Not the
    second in rank: candidates are ranked by raw score, and one in another language under a higher
    threshold would make a lead that is not there (an off-topic question over six languages)."""
    ranked = evidence.retrieval.ranked
    return ranked[0].clearance - max(s.clearance for s in ranked[1:]) if len(ranked) > 1 else 0.1


def _numbers_missing(evidence: Evidence) -> float:
    """The share of the question's numbers that the first sentence does not hold ("5.2" asked,
    "5.3" stated; "in 2020" asked, 2025 stated): 0 for a question without a number."""
    asked = numbers(evidence.question)
    return len(missing_numbers(evidence.question, evidence.first_text)) / len(asked) if asked else 0.0


def _rivals(evidence: Evidence) -> float:
    ranked = evidence.retrieval.ranked
    return float(np.log1p(sum(s.clearance >= ranked[0].clearance - RIVAL_GAP for s in ranked[1:])))


FEATURES: dict[str, Callable[[Evidence], float]] = {
    "clearance": lambda e: e.retrieval.ranked[0].clearance,
    "score": lambda e: e.retrieval.ranked[0].score,
    "gap": _gap,
    "rivals": _rivals,
    "weakest_token": lambda e: float(_coverage(e).min() - _coverage(e).mean()),
    "weak_quarter": lambda e: float(np.quantile(_coverage(e), 0.25) - _coverage(e).mean()),
    "question_tokens": lambda e: float(np.log(len(_coverage(e)))),
    "same_language": lambda e: e.same_language,
    "wants_number": lambda e: e.wants_number,
    "has_numeral": lambda e: float(holds_numeral(e.first_text, e.first_language)),
    "numbers_missing": _numbers_missing,
    "numeral_missing": lambda e: e.wants_number * (1.0 - float(holds_numeral(e.first_text, e.first_language))),
}


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


@dataclass(frozen=True)
class Calibration:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    number_weights: np.ndarray  # the head over the question's pooled vector: does it want a number?
    number_bias: float
    confident_at: dict[float, float]  # target precision -> the least probability that answers
    closest_at: float  # the least probability for which the closest passage is shown
    fitted_on: dict

    @classmethod
    def for_model(cls, model: str, path: Path = CONFIDENCE_FILE) -> Calibration | None:
        """The calibration fitted for ``model``, or None (answers then have no confidence)."""
        spec = json.loads(path.read_text(encoding="utf-8"))
        if spec["model"] != model:
            return None
        unknown = set(spec["features"]) - set(FEATURES)
        if unknown:
            raise RagError(f"{path} names features this version does not compute: {sorted(unknown)}")
        return cls(
            features=tuple(spec["features"]),
            mean=np.array(spec["mean"]),
            scale=np.array(spec["scale"]),
            weights=np.array(spec["weights"]),
            bias=float(spec["bias"]),
            number_weights=np.array(spec["number_head"]["weights"], dtype=np.float32),
            number_bias=float(spec["number_head"]["bias"]),
            confident_at={float(k): float(v) for k, v in spec["confident_at"].items()},
            closest_at=float(spec["closest_at"]),
            fitted_on=spec["fitted_on"],
        )

    def wants_number(self, question_vector: np.ndarray) -> float:
        return _sigmoid(float(question_vector @ self.number_weights) + self.number_bias)

    def vector(self, evidence: Evidence) -> np.ndarray:
        return np.array([FEATURES[name](evidence) for name in self.features])

    def probability(self, evidence: Evidence) -> float:
        standard = (self.vector(evidence) - self.mean) / self.scale
        return _sigmoid(float(standard @ self.weights) + self.bias)

    def threshold(self, precision: float) -> float:
        """The least probability that answers for a target ``precision`` of confident answers: the
        one fitted for the nearest target at or above it."""
        targets = sorted(t for t in self.confident_at if t >= precision - 1e-9)
        if not targets:
            raise RagError(
                f"RAG_CONFIDENT_PRECISION={precision} is above what the calibration reaches"
                f" ({max(self.confident_at)}); choose a lower target"
            )
        return self.confident_at[targets[0]]
