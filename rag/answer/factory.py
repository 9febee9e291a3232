"""The answerer registry: ``RAG_ANSWERER`` names the implementation; with ``RAG_LLM_URL`` set,
an LLM server writes its answers (rag.answer.generative)."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import RagError
from ..settings import Settings, choose
from .base import Answerer
from .extractive import ExtractiveAnswerer

ANSWERERS: dict[str, Callable[[Settings], Answerer]] = {"extractive": lambda settings: ExtractiveAnswerer()}


def create_answerer(settings: Settings) -> Answerer:
    answerer = ANSWERERS[choose("RAG_ANSWERER", settings.answerer, ANSWERERS)](settings)
    if not settings.llm_url:
        return answerer
    if not settings.llm_model:
        raise RagError("RAG_LLM_MODEL must name the model RAG_LLM_URL serves (e.g. llama3.2 for Ollama)")
    from .generative import GenerativeAnswerer, OpenAIChat

    chat = OpenAIChat(settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout)
    return GenerativeAnswerer(answerer, chat)
