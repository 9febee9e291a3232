"""What one question may cost: read up to QUESTION_TOKENS tokens, its closing token kept."""

import numpy as np
import pytest

from rag.embed.base import QUESTION_TOKENS, shorten_questions


def test_long_questions_keep_their_first_tokens_and_their_closing_one():
    pad = 1
    short = [0, 10, 11, 2]
    long = [0, *range(100, 100 + 300), 2]
    width = len(long)
    ids = np.full((2, width), pad)
    mask = np.zeros((2, width), dtype=np.int64)
    for row, tokens in enumerate((short, long)):
        ids[row, : len(tokens)], mask[row, : len(tokens)] = tokens, 1
    cut_ids, cut_mask = shorten_questions(ids, mask, pad)
    assert cut_ids.shape == cut_mask.shape == (2, QUESTION_TOKENS)
    assert cut_ids[0, :4].tolist() == short and cut_mask[0].sum() == 4 and (cut_ids[0, 4:] == pad).all()
    assert cut_ids[1].tolist() == [*long[: QUESTION_TOKENS - 1], 2] and cut_mask[1].all()
    assert shorten_questions(ids[:1, :4], mask[:1, :4], pad)[0].shape == (1, 4), "short batches stay as they are"


@pytest.mark.model
def test_a_question_of_a_thousand_random_characters_is_read_up_to_the_limit(embedder):
    rng = np.random.default_rng(0)
    question = "".join(chr(c) for c in rng.integers(0x4E00, 0x9FFF, size=1000))
    encoded = embedder.encode_queries([question])
    assert 0 < len(encoded.tokens[0]) <= QUESTION_TOKENS
    assert np.isclose(np.linalg.norm(encoded.vectors[0]), 1.0, atol=1e-5)
