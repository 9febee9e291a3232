"""Scoring the index's sentences for one question: candidates from the vector index,
late-interaction scores, and the background the answerability decision compares with."""
