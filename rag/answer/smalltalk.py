"""Messages that are not questions about the documents: no content at all ("????", a row of
emoji), or chit-chat ("hello", "merci !", "wer bist du?"). They get a short plain answer saying
what the product does, never a citation.

Chit-chat is told by a logistic head over the pooled question vector (trained by
``training/chitchat.py``, weights in ``rag/data/chitchat-head.json``), for the model it was
trained on only. Three guards keep real questions out: any digit; a text of several parts
("Hi, what did Putin demand?") counts only if every part is chit-chat; a text of one or two
words counts only if none of its words occurs in the documents ("NATO", "Gaza").
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ingest.words import words
from .base import Answer

HEAD_FILE = Path(__file__).resolve().parent.parent / "data" / "chitchat-head.json"
THRESHOLD = 0.9  # probability of chit-chat from which the head says so
# After a question, a fragment ("et pour les vélos ?": 0.90-0.97 on eval/followups) is a follow-up;
# most thanks and goodbyes still reach this (docs/answer-quality.md, "Follow-up questions").
THRESHOLD_AFTER_QUESTION = 0.98
SHORT_WORDS = 2
MAX_PARTS = 8  # a longer message is not chit-chat
_APOSTROPHES = "'’ʼ·"

NO_CONTENT = "That holds no words to look up. Ask a question about the documents, in any language."
CHITCHAT = (
    "Hello! Ask me a question about the documents, in any language: I answer with their own "
    "sentences, each cited, or tell you plainly when they do not say."
)


def has_content(text: str) -> bool:
    """Whether the text holds a letter or a digit of any script."""
    return any(unicodedata.category(char)[0] in "LN" for char in unicodedata.normalize("NFKC", text))


@dataclass(frozen=True)
class ChitChatHead:
    weights: np.ndarray
    bias: float
    threshold: float

    @classmethod
    def for_model(cls, model: str, dimension: int, path: Path = HEAD_FILE) -> ChitChatHead | None:
        """The head trained on this model's vectors, or None (then nothing is taken for chit-chat)."""
        spec = json.loads(path.read_text(encoding="utf-8"))
        if spec["model"] != model or spec["dimension"] != dimension:
            return None
        return cls(np.asarray(spec["weights"], dtype=np.float32), float(spec["bias"]), float(spec["threshold"]))

    def probability(self, vectors: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(vectors @ self.weights + self.bias)))

    def is_chitchat(
        self,
        text: str,
        vector: np.ndarray,
        encode: Callable[[list[str]], np.ndarray],
        vocabulary: Collection[str],
        after_question: bool = False,
    ) -> bool:
        """``vector`` is the text's pooled vector; ``encode`` gives the pooled vectors of other
        texts; ``vocabulary`` holds the documents' words, case-folded; ``after_question``: the
        conversation asked a question before, so a fragment is more likely a follow-up."""
        if any(unicodedata.category(char) == "Nd" for char in text):
            return False
        threshold = max(self.threshold, THRESHOLD_AFTER_QUESTION) if after_question else self.threshold
        if self.probability(vector) < threshold:
            return False
        said = words(text)
        if len(said) <= SHORT_WORDS and any(word in vocabulary for word in said):
            return False
        parts = [part for part in split_parts(text) if has_content(part)]
        if len(parts) > MAX_PARTS:
            return False
        return len(parts) <= 1 or bool(np.all(self.probability(encode(parts)) >= threshold))


def split_parts(text: str) -> list[str]:
    """The text cut at punctuation of any script (Unicode "Po": ,.!?;: ، ؟ । 。 …), apostrophes apart."""
    parts, current = [], []
    for char in text:
        if unicodedata.category(char) == "Po" and char not in _APOSTROPHES:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def plain_answer(question: str, text: str) -> Answer:
    return Answer(question=question, abstained=True, answer=text, citations=[])
