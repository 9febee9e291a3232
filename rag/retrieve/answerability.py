"""Whether the index answers a question, from its retrieval.

A sentence answers when its late-interaction score reaches a threshold. Scores run lower when the
question and the sentence are in different languages (about 0.06 on XQuAD-R), so there are two
thresholds, fitted offline for the model (``training/answerability.py``,
``rag/data/answerability.json``): one for a question in the language of the sentence's document
(detected from its first characters at index time), one for another language; between them by the
probability that the languages agree (0.5 when either is not known). Each candidate sentence gets
its own threshold, candidates are ranked by how far they clear it, and the question is answered
when the best one clears it. Pooled cosines have the same bias (0.047 at the same quantile), so in
a corpus of several languages dense search proposes its candidates with that handicap on the
documents in the question's language; without it, an English question about the bundled French
article inside benchmarks/scale.py's 100,000 mostly English sentences found the right sentence
first for 14 of 18 dev questions, with it 16 (docs/performance.md, "A 100,000-sentence corpus end to end").

Measured on SQuAD 2.0 and XQuAD-R (docs/answer-quality.md, "Earlier findings"), a threshold fitted on some corpora
holds on others; a margin over background sentences, the corpus's own score distribution,
IDF-weighted coverage or a logistic combination did no better.

Whether to answer is then decided by a calibrated probability that the first candidate answers
(``confidence.py``): an answer when it reaches the bar for the target precision, the closest
passage when it reaches a lower one. A model without a calibration decides by the clearance alone;
one without fitted thresholds falls back to the margin over the background sentences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .late_interaction import Retrieval

THRESHOLDS_FILE = Path(__file__).resolve().parent.parent / "data" / "answerability.json"
CLOSEST_GAP = 0.05  # when abstaining, the nearest sentences are shown if they score within this of answering
# The fallback for a model without fitted thresholds, in score units over the background.
ANSWER_MARGIN = 0.01
CLOSEST_MARGIN = -0.04


@dataclass(frozen=True)
class Decision:
    answer: bool
    show_closest: bool  # when abstaining: the nearest sentences are close enough for a reader to judge
    confidence: float | None = None  # the calibrated probability that the first candidate answers


@dataclass(frozen=True)
class Thresholds:
    same_language: float
    other_language: float
    dense_gap: float = 0.0  # how much higher pooled cosines run in the question's language, fitted the same way

    @classmethod
    def for_model(cls, model: str, path: Path = THRESHOLDS_FILE) -> Thresholds | None:
        """The thresholds fitted for ``model`` (on one backend: the others' scores differ by less
        than 0.01), or None."""
        spec = json.loads(path.read_text(encoding="utf-8"))
        if spec["model"] != model:
            return None
        dense_gap = float(spec["dense_same_language"]) - float(spec["dense_other_language"])
        return cls(float(spec["same_language"]), float(spec["other_language"]), dense_gap)

    def same_share(self, threshold: float) -> float:
        """The probability of a shared language that gave a candidate ``threshold``."""
        span = self.same_language - self.other_language
        return (threshold - self.other_language) / span if span else 0.5

    def threshold(self, same: float) -> float:
        """``same``: the probability that the question is in the language of the sentence's document."""
        return self.other_language + same * (self.same_language - self.other_language)

    def for_languages(self, question: dict[str, float], languages: list[str | None]) -> np.ndarray:
        """The threshold of each sentence, given the languages of their documents and the
        question's language probabilities (empty when its language is not known)."""
        return np.array(
            [self.threshold(question.get(found, 0.0) if question and found else 0.5) for found in languages]
        )


@dataclass(frozen=True)
class Bars:
    """The calibrated probabilities from which the product answers, and shows the closest passage."""

    answer: float
    closest: float


def decide(
    retrieval: Retrieval,
    fitted: bool,
    confidence: float | None = None,
    bars: Bars | None = None,
    cannot_state: bool = False,
) -> Decision:
    """``fitted``: the retrieval was ranked against fitted thresholds; else the margin over the
    background sentences decides. With a ``confidence`` and its ``bars``, they decide, except
    that a first sentence that ``cannot_state`` the answer is the closest passage at most."""
    if not retrieval.ranked:
        return Decision(answer=False, show_closest=False)
    if not fitted:
        return Decision(retrieval.margin >= ANSWER_MARGIN, retrieval.margin >= CLOSEST_MARGIN)
    if confidence is not None and bars is not None:
        return Decision(confidence >= bars.answer and not cannot_state, confidence >= bars.closest, confidence)
    clearance = retrieval.clearance
    return Decision(answer=clearance >= 0, show_closest=clearance >= -CLOSEST_GAP)
