"""The answering pipeline: a question (and the conversation before it) embedded, read against
the index, decided on, and answered with cited sentences, or written by an LLM server from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property, partial
from typing import TYPE_CHECKING

import numpy as np

from .answer.base import Answer, Answerer, Citation
from .answer.citations import citations
from .answer.factory import create_answerer, create_writer
from .answer.questions import Turn, check_citation_limit, check_question, earlier_questions, fit_history
from .answer.smalltalk import CHITCHAT, NO_CONTENT, ChitChatHead, has_content, plain_answer
from .embed.base import Embedder
from .errors import InputError
from .ingest.language import english_name, probabilities, sure_language
from .retrieve.answerability import Bars, Decision, Thresholds, decide
from .retrieve.confidence import Calibration, Evidence, cannot_state
from .retrieve.late_interaction import LanguageSplit, Retrieval, retrieve
from .settings import Settings
from .store.index import LoadedIndex

if TYPE_CHECKING:  # asyncio and the openai client load only with an LLM server (RAG_LLM_URL)
    from .answer.generative import AnswerWriter

EARLIER_LOOKED_AT = 3  # the user's last turns searched for the question a follow-up leans on


@dataclass(frozen=True)
class Query:
    text: str
    vector: np.ndarray  # pooled
    tokens: np.ndarray  # one row per token


@dataclass(frozen=True)
class Reading:
    text: str  # the question as it was searched: alone, or after the earlier question
    retrieval: Retrieval
    decision: Decision

    @property
    def sureness(self) -> float:
        """How sure the first sentence is: its calibrated confidence, else its clearance."""
        confidence = self.decision.confidence
        return confidence if confidence is not None else self.retrieval.clearance


class Answering:
    """Answers from an index: ``live_index`` gives the live one, ``embedder`` the embedder,
    each loaded on first call."""

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder], live_index: Callable[[], LoadedIndex]):
        self.answerer: Answerer = create_answerer(settings)
        self.writer: AnswerWriter | None = create_writer(settings)  # RAG_LLM_URL: an LLM server writes answers
        self.settings = settings
        self._embedder = embedder
        self._live_index = live_index
        _ = self.bars  # a target precision the calibration does not reach is refused at once

    @property
    def embedder(self) -> Embedder:
        return self._embedder()

    @cached_property
    def thresholds(self) -> Thresholds | None:
        """The answerability thresholds fitted for the configured model, if any."""
        return Thresholds.for_model(self.settings.embedding_model)

    @cached_property
    def calibration(self) -> Calibration | None:
        """The confidence calibration for the configured model (it reads the fitted thresholds)."""
        return Calibration.for_model(self.settings.embedding_model) if self.thresholds else None

    @cached_property
    def bars(self) -> Bars | None:
        """The calibrated probabilities that answer and show the closest passage."""
        if self.calibration is None:
            return None
        return Bars(self.calibration.threshold(self.settings.confident_precision), self.calibration.closest_at)

    @cached_property
    def chitchat(self) -> ChitChatHead | None:
        """The chit-chat head for the configured model, if one was trained for it."""
        return ChitChatHead.for_model(self.settings.embedding_model, self.embedder.dimension)

    def answer(
        self,
        question: str,
        top_k: int | None = None,
        index: LoadedIndex | None = None,
        history: Sequence[Turn] = (),
        on_text: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer one question as ``extract`` does; with RAG_LLM_URL set, the LLM server writes
        the answer from the cited sentences (``on_text`` gets its checked text as it comes).
        Async code would rather await ``extract`` in a worker thread and then ``writer.stream``."""
        found = self.extract(question, top_k, index, history)
        if self.writer is None:
            return found
        import asyncio

        writing = partial(asyncio.run, self.writer.written(found, fit_history(history).turns, on_text))
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # none in this thread, as in the command line
            return writing()
        with ThreadPoolExecutor(1) as thread:  # a notebook's (or Playwright's) loop runs in this one
            return thread.submit(writing).result()

    def extract(
        self,
        question: str,
        top_k: int | None = None,
        index: LoadedIndex | None = None,
        history: Sequence[Turn] = (),
    ) -> Answer:
        """Answer one question from the index (the live one unless ``index`` is given) with cited
        sentences, or abstain; ``history`` holds the conversation's earlier turns, oldest first."""
        text = check_question(question)
        limit = check_citation_limit(top_k)
        fitted = fit_history(history)
        index = self._live_index() if index is None else index
        answer = self._extract(text, limit, index, fitted.turns)
        return replace(answer, resolved_question=answer.resolved_question or text, history_cut=fitted.cut)

    def search(self, question: str, top_k: int | None = None, index: LoadedIndex | None = None) -> list[Citation]:
        """The ``top_k`` sentences of the index (the live one unless ``index`` is given) that match
        ``question`` best, best first, as ``answer`` ranks them, with no decision whether they answer."""
        text = check_question(question)
        limit = check_citation_limit(top_k)
        index = self._live_index() if index is None else index
        query = self._query(text) if has_content(text) else None
        if query is None or not len(query.tokens):  # what extract answers with NO_CONTENT
            raise InputError("the question holds no words to look up")
        retrieval = self._retrieve(query, index)
        return citations([scored.row for scored in retrieval.ranked[:limit]], retrieval, index)

    def _extract(self, text: str, limit: int, index: LoadedIndex, history: list[Turn]) -> Answer:
        if not has_content(text):
            return plain_answer(text, NO_CONTENT)
        question = self._query(text)
        asked_before = any(has_content(earlier) for earlier in earlier_questions(history))
        if self.chitchat and self.chitchat.is_chitchat(
            text, question.vector, self._encode_alone, index.vocabulary, after_question=asked_before
        ):
            return plain_answer(text, CHITCHAT)
        if not len(question.tokens):
            raise InputError("the question has no words to search for")
        reading = self._read(question, index)
        # A follow-up ("and when was that?") is read with the conversation unless it is answered
        # on its own: a self-contained question keeps its own answer.
        if asked_before and not reading.decision.answer:
            earlier = self._earlier_question(history, index)
            if earlier is not None:
                reading = self._follow_up(question, earlier, history, index, reading)
        answer = self.answerer.answer(text, reading.retrieval, reading.decision, index, limit, history)
        return replace(answer, resolved_question=reading.text)

    def _follow_up(
        self, question: Query, earlier: Query, history: list[Turn], index: LoadedIndex, alone: Reading
    ) -> Reading:
        """A follow-up read with the conversation: rewritten as a question that stands alone by
        the LLM server when one is configured, else (or when it fails) read after ``earlier``
        where that makes its first sentence surer than ``alone`` does."""
        if self.writer is not None:
            language = english_name(index.main_language) or "the language of the documents"
            standalone = self.writer.standalone(question.text, history, language)
            if standalone is not None:
                rewritten = self._query(standalone)
                if len(rewritten.tokens):
                    return self._read(rewritten, index)
        followed = self._read(question, index, earlier)
        return followed if followed.sureness >= alone.sureness else alone

    def _query(self, text: str) -> Query:
        encoded = self.embedder.encode_queries([text])
        return Query(text, encoded.vectors[0], encoded.tokens[0])

    def _read(self, question: Query, index: LoadedIndex, earlier: Query | None = None) -> Reading:
        """The question's retrieval and decision, read alone or with the ``earlier`` question."""
        retrieval = self._retrieve(question, index, earlier)
        first = index.sentence_text(index.sentences[retrieval.ranked[0].row]) if retrieval.ranked else ""
        confidence = self._confidence(question.text, retrieval, first, question.vector, index)
        decision = decide(
            retrieval, self.thresholds is not None, confidence, self.bars, cannot_state(question.text, first)
        )
        text = question.text if earlier is None else f"{earlier.text} {question.text}"
        return Reading(text, retrieval, decision)

    def _retrieve(self, question: Query, index: LoadedIndex, earlier: Query | None = None) -> Retrieval:
        # The background is scored only for the fallback decision (a model without thresholds).
        background = index.background if self.thresholds is None else None
        context = None if earlier is None else (earlier.vector, earlier.tokens)
        return retrieve(
            question.vector,
            question.tokens,
            index.vectors,
            index.tokens,
            background,
            context,
            *self._calibration(question.text, index),
        )

    def _earlier_question(self, history: list[Turn], index: LoadedIndex) -> Query | None:
        """The user's most recent earlier question that was a question: one without a letter or
        digit, or small talk ("thanks!"), tells a follow-up nothing; the last few are looked at."""
        for text in earlier_questions(history)[:EARLIER_LOOKED_AT]:
            if not has_content(text):
                continue
            earlier = self._query(text)
            if not len(earlier.tokens):
                continue
            if self.chitchat and self.chitchat.is_chitchat(text, earlier.vector, self._encode_alone, index.vocabulary):
                continue
            return earlier
        return None

    def _confidence(
        self, question: str, retrieval: Retrieval, first_text: str, question_vector: np.ndarray, index: LoadedIndex
    ) -> float | None:
        """The calibrated probability that the first candidate (its sentence ``first_text``) answers
        (None without a calibration)."""
        if self.calibration is None or self.thresholds is None or not retrieval.ranked:
            return None
        first = retrieval.ranked[0]
        evidence = Evidence(
            question,
            retrieval,
            first_text,
            index.holders([first.row])[0].language,
            self.thresholds.same_share(first.threshold),
            self.calibration.wants_number(question_vector),
        )
        return self.calibration.probability(evidence)

    def _encode_alone(self, texts: list[str]) -> np.ndarray:
        """Pooled vectors of texts each encoded alone, as the chit-chat head was trained."""
        return np.concatenate([self.embedder.encode_queries([text]).vectors for text in texts])

    def _calibration(
        self, text: str, index: LoadedIndex
    ) -> tuple[Callable[[list[int]], np.ndarray] | None, LanguageSplit | None]:
        """Each row's answer threshold, by whether the question is in its document's language,
        and the split of dense search between the rows in the question's language and the others."""
        if self.thresholds is None:
            return None, None
        found = probabilities(text)
        language = sure_language(found)
        question = found if language is not None else {}
        thresholds = self.thresholds
        split = None
        if language is not None and thresholds.dense_gap > 0:
            same, other = index.rows_by_language(language)
            if len(same) and len(other):
                split = LanguageSplit(same, other, thresholds.dense_gap * found[language])
        return lambda rows: thresholds.for_languages(question, [held.language for held in index.holders(rows)]), split
