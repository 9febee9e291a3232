"""The answerer registry: ``RAG_ANSWERER`` names the implementation. With ``RAG_LLM_URL`` set, an
LLM server writes the answers it gives (rag.answer.generative)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import RagError
from ..settings import Settings, choose
from .base import Answerer
from .extractive import ExtractiveAnswerer

if TYPE_CHECKING:
    from .generative import AnswerWriter

ANSWERERS: dict[str, Callable[[Settings], Answerer]] = {"extractive": lambda settings: ExtractiveAnswerer()}


def create_answerer(settings: Settings) -> Answerer:
    return ANSWERERS[choose("RAG_ANSWERER", settings.answerer, ANSWERERS)](settings)


def create_writer(settings: Settings) -> AnswerWriter | None:
    """The writer of answers through the LLM server at ``RAG_LLM_URL``; None when it is unset."""
    if not settings.llm_url:
        return None
    if not settings.llm_model:
        raise RagError("RAG_LLM_MODEL must name the model RAG_LLM_URL serves (e.g. llama3.2 for Ollama)")
    from .generative import AnswerWriter, OpenAIChat

    chat = OpenAIChat(
        settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout, settings.llm_max_running
    )
    return AnswerWriter(chat)
