"""The answerer registry: ``RAG_ANSWERER`` names the implementation."""

from __future__ import annotations

from collections.abc import Callable

from ..settings import Settings, choose
from .base import Answerer
from .extractive import ExtractiveAnswerer

ANSWERERS: dict[str, Callable[[Settings], Answerer]] = {"extractive": lambda settings: ExtractiveAnswerer()}


def create_answerer(settings: Settings) -> Answerer:
    return ANSWERERS[choose("RAG_ANSWERER", settings.answerer, ANSWERERS)](settings)
