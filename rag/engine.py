"""The façade the edges (the command line, the server) call: the settings, the embedder they
ask for (loaded once, on first use), the index's life (``library.py``) and the answering
pipeline (``answering.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .answer.base import Answer, Citation
from .answer.questions import Turn
from .answering import Answering
from .embed.base import Embedder
from .embed.factory import check_backend, create_embedder
from .library import BuildReport, Library
from .settings import Settings
from .store.index import LoadedIndex

if TYPE_CHECKING:
    from .answer.generative import AnswerWriter


class Engine:
    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        from threadpoolctl import threadpool_limits

        # Every named implementation exists, before anything is read or written.
        if embedder is None:
            check_backend(settings)
        self.settings = settings
        self._embedder = embedder  # tests pass a loaded one; otherwise built on first use
        self.library = Library(settings, lambda: self.embedder, self._backend)
        self.answering = Answering(settings, lambda: self.embedder, lambda: self.library.index)
        # NumPy's BLAS threads keep spinning after each of our small products and slow the next
        # forward pass of the model by half (47 -> 25 ms per answer with torch); one is plenty.
        threadpool_limits(limits=1, user_api="blas")

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = create_embedder(self.settings)
        return self._embedder

    def _backend(self) -> str:
        """The backend questions are embedded with, without loading the model for it."""
        return self._embedder.backend if self._embedder is not None else self.settings.backend

    @property
    def writer(self) -> AnswerWriter | None:
        """What writes answers when RAG_LLM_URL names an LLM server, else None."""
        return self.answering.writer

    # The index's life.

    def build_index(
        self, paths: Sequence[Path] = (), progress: bool = False, language: str | None = None
    ) -> BuildReport:
        return self.library.build_index(paths, progress, language)

    def add_documents(self, paths: Sequence[Path], progress: bool = False, language: str | None = None) -> BuildReport:
        return self.library.add_documents(paths, progress, language)

    def add_upload(self, filename: str, data: bytes, language: str | None = None) -> BuildReport:
        return self.library.add_upload(filename, data, language)

    def remove_documents(self, ids: Sequence[str]) -> BuildReport:
        return self.library.remove_documents(ids)

    def sweep(self) -> None:
        self.library.sweep()

    def documents(self) -> list[dict]:
        return self.library.documents()

    def document(self, document_id: str) -> dict:
        return self.library.document(document_id)

    def load_index(self) -> LoadedIndex:
        return self.library.load_index()

    def refresh(self) -> bool:
        return self.library.refresh()

    @property
    def index(self) -> LoadedIndex:
        """The index answers are drawn from, loaded on first use."""
        return self.library.index

    # Answering.

    def warm_up(self) -> None:
        """Load the model, the index, the language model and the thresholds, and pay first-call
        costs, with a question that has a digit (so never small talk) and never reaches an LLM server."""
        self.answering.extract("What happened in 2024?")

    def answer(
        self,
        question: str,
        top_k: int | None = None,
        index: LoadedIndex | None = None,
        history: Sequence[Turn] = (),
        on_text: Callable[[str], None] | None = None,
    ) -> Answer:
        return self.answering.answer(question, top_k, index, history, on_text)

    def search(self, question: str, top_k: int | None = None, index: LoadedIndex | None = None) -> list[Citation]:
        return self.answering.search(question, top_k, index)

    def extract(
        self, question: str, top_k: int | None = None, index: LoadedIndex | None = None, history: Sequence[Turn] = ()
    ) -> Answer:
        return self.answering.extract(question, top_k, index, history)
