"""Whether the index answers a question, from its retrieval.

The best late-interaction score must reach a threshold. Scores run lower when the question and
the sentence are in different languages (about 0.06 on XQuAD-R), so there are two thresholds,
fitted offline for the model (``training/answerability.py``, ``rag/data/answerability.json``):
one for a question in the language of the document of the sentence it matches best (detected
from the document's first characters at index time), one for another language; between them by
the probability that the languages agree (0.5 when either is not known). Measured on SQuAD 2.0 and XQuAD-R
(README, "Answerability"), a threshold fitted on some corpora holds on others; a margin over
background sentences, the corpus's own score distribution, IDF-weighted coverage or a logistic
combination did no better.

A model without fitted thresholds falls back to the margin over the background sentences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Thresholds:
    same_language: float
    other_language: float

    @classmethod
    def for_model(cls, model: str, path: Path = THRESHOLDS_FILE) -> Thresholds | None:
        """The thresholds fitted for ``model`` (on one backend: the others' scores differ by less
        than 0.01), or None."""
        spec = json.loads(path.read_text(encoding="utf-8"))
        if spec["model"] != model:
            return None
        return cls(float(spec["same_language"]), float(spec["other_language"]))

    def threshold(self, same: float) -> float:
        """``same``: the probability that the question is in the language of the best sentence's document."""
        return self.other_language + same * (self.same_language - self.other_language)


def decide(retrieval: Retrieval, thresholds: Thresholds | None, same: float) -> Decision:
    if not retrieval.ranked:
        return Decision(answer=False, show_closest=False)
    if thresholds is None:
        return Decision(retrieval.margin >= ANSWER_MARGIN, retrieval.margin >= CLOSEST_MARGIN)
    best, threshold = retrieval.best, thresholds.threshold(same)
    return Decision(answer=best >= threshold, show_closest=best >= threshold - CLOSEST_GAP)
