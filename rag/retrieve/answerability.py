"""Whether the index answers a question, from its retrieval: the best sentence must beat the
best background sentence by a margin. Thresholds in late-interaction score units, set on our
own question sets."""

from __future__ import annotations

from .late_interaction import Retrieval

ANSWER_MARGIN = 0.01  # answer only if the best sentence beats the best background sentence by this
CLOSEST_MARGIN = -0.04  # when abstaining, still show the nearest sentences if the margin is above this


def answerable(retrieval: Retrieval) -> bool:
    return bool(retrieval.ranked) and retrieval.margin >= ANSWER_MARGIN


def worth_showing(retrieval: Retrieval) -> bool:
    """When abstaining: whether the nearest sentences are close enough for a reader to judge."""
    return bool(retrieval.ranked) and retrieval.margin >= CLOSEST_MARGIN
