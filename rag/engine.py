"""The composition root: wires settings, embedder and index for the CLI and the server."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .documents import SEGMENTER, Skipped, load_documents, split_sentences
from .errors import IndexInvalidError
from .store import FIX, IndexContents, build_lock, load_index, write_index


@dataclass(frozen=True)
class BuildReport:
    documents: int
    sentences: int
    model: str
    seconds: float
    location: Path
    skipped: list[Skipped]


class Engine:
    def __init__(self, settings: Settings, embedder=None):
        self.settings = settings
        self._embedder = embedder  # tests pass a loaded one; otherwise built on first use

    @property
    def embedder(self):
        if self._embedder is None:
            from .embedding import Embedder  # heavy: torch and sentence-transformers

            settings = self.settings
            self._embedder = Embedder(settings.embedding_model, settings.cache_dir, settings.batch_size)
        return self._embedder

    def build_index(self, paths: Sequence[Path] = (), progress: bool = False) -> BuildReport:
        """Read, segment and embed the documents under ``paths`` (default: the seeds folder)
        and make them the live index. Bad input raises before the old index is touched."""
        started = time.perf_counter()
        documents, skipped = load_documents(list(paths) or [self.settings.seeds_dir])
        sentences = []
        texts = []
        for document in documents:
            for sentence in split_sentences(document):
                sentences.append(sentence)
                texts.append(document.text[sentence.start : sentence.end])
        with build_lock(self.settings.index_dir):
            vectors = self.embedder.embed_passages(texts, progress=progress)
            info = {
                "model": {
                    "name": self.settings.embedding_model,
                    "dimension": self.embedder.dimension,
                    "prompts": self.embedder.prompts,
                },
                "segmentation": {"segmenter": SEGMENTER, "paragraphs": "line breaks", "embedded_unit": "sentence"},
                "build_seconds": round(time.perf_counter() - started, 3),
            }
            location = write_index(self.settings.index_dir, documents, sentences, vectors, info)
        return BuildReport(
            documents=len(documents),
            sentences=len(sentences),
            model=self.settings.embedding_model,
            seconds=time.perf_counter() - started,
            location=location,
            skipped=skipped,
        )

    def load_index(self) -> IndexContents:
        """The live index, verified, and checked against the configured model."""
        contents = load_index(self.settings.index_dir)
        built_with = contents.manifest["model"]["name"]
        if built_with != self.settings.embedding_model:
            raise IndexInvalidError(
                f"the index was built with {built_with}, but the configured model is "
                f"{self.settings.embedding_model} (RAG_EMBEDDING_MODEL); {FIX}"
            )
        return contents
