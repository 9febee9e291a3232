"""What the routes share while the server runs: the engine, whether it is ready, why not, the
admission line, and answering through it.

The model and the index load in a background thread at start-up, so /healthz answers at once
and /readyz says 503 until answers can be given. The same thread then watches the index folder
and switches to a new build within a second or so; a build that fails to load is logged and
the one in use stays. An index found damaged while serving (``IndexDamagedError``) makes the
server not ready until a new build has loaded.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from contextvars import ContextVar
from time import perf_counter
from typing import Annotated

from fastapi import Depends, Request

from ..answer.base import Answer
from ..answer.questions import Turn, fit_history
from ..engine import Engine
from ..errors import IndexDamagedError, IndexInvalidError, IndexMissingError, RagError
from ..store.index import LoadedIndex
from .admission import Admission
from .metrics import Metrics
from .schemas import problem

RELOAD_SECONDS = 1.0  # how often the index folder is checked for a new build
# When the question being answered in this context came: a streamed answer ends in another task,
# which starts with a copy of the request's context.
_asked: ContextVar[float] = ContextVar("asked")

log = logging.getLogger("rag.http")


class Runtime:
    def __init__(self, engine: Engine, on_fatal: Callable[[], None] | None = None):
        settings = engine.settings
        self.engine = engine
        self.admission = Admission(settings.max_running, settings.max_waiting, settings.queue_seconds)
        self.ready = threading.Event()
        self.failure: RagError | None = None  # why the engine could not be made ready
        self.damage: IndexDamagedError | None = None  # why the index in use can no longer answer
        # What the start-up thread is doing, for the page and /readyz to say while getting ready.
        self.step = "starting"
        self._damage_lock = threading.Lock()  # a damaged index is never marked after its successor loaded
        self._on_fatal = on_fatal
        self._stopping = threading.Event()
        self.metrics = Metrics(self.ready.is_set, self._loaded_index)

    def start(self) -> None:
        threading.Thread(target=self._prepare_then_watch, name="rag-index", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()

    def _prepare_then_watch(self) -> None:
        engine = self.engine
        try:
            try:
                self.step = "loading the index"
                engine.load_index()
            except IndexMissingError:
                log.info("no index yet; building it from %s", engine.settings.seeds_dir)
                self.step = f"building the index from {engine.settings.seeds_dir.name}/ (first run)"
                with self.metrics.build("build"):
                    engine.build_index()
            self.step = "loading the model and warming up"
            engine.warm_up()
            self._sweep()
            self.ready.set()
            log.info("ready")
        except RagError as exc:
            self.failure = exc
            if self._on_fatal:  # it says why (rag serve: one line as it exits)
                self._on_fatal()
            else:
                log.error("cannot start: %s", exc)
            return
        refused = None
        while not self._stopping.wait(RELOAD_SECONDS):
            try:
                if engine.refresh():
                    log.info("now serving %s", engine.index.generation)
                with self._damage_lock:
                    if self.damage is not None and self.damage.generation != engine.index.generation:
                        self.damage = None
                        self.ready.set()
                refused = None
            except RagError as exc:
                if str(exc) != refused:  # say it once, not every second
                    log.error("still serving %s; the new index cannot be used: %s", engine.index.generation, exc)
                refused = str(exc)

    def _sweep(self) -> None:
        """Remove what a killed upload or build left, before uploads are taken; a disk that
        cannot be written still serves answers."""
        try:
            self.engine.sweep()
        except RagError as exc:
            log.warning("leftovers of earlier builds not removed: %s", exc)

    async def extract(self, question: str, top_k: int | None, history: Sequence[Turn]) -> Answer:
        """The engine's cited sentences or abstention, once admitted; Busy if the line is full."""
        _asked.set(perf_counter())
        return await self.admission.run(self.engine.extract, question, top_k, None, history)

    async def written(self, extractive: Answer, history: Sequence[Turn]) -> AsyncGenerator[str | Answer, None]:
        """The answer as the LLM server writes it (RAG_LLM_URL): its checked text as it comes, then
        the Answer; the Answer alone without a server. Outside the admission line: the server's
        time is not ours, and our answers need not wait on it."""
        writer = self.engine.writer
        if writer is None:
            self._answered(extractive)
            yield extractive
            return
        # The turns the answer was read with: a request may hold more than the engine reads.
        async with aclosing(writer.stream(extractive, fit_history(history).turns)) as items:
            async for item in items:
                if isinstance(item, Answer):
                    self._answered(item)
                yield item

    async def answer(self, question: str, top_k: int | None, history: Sequence[Turn]) -> Answer:
        """The final answer, written or not."""
        extractive = await self.extract(question, top_k, history)
        writer = self.engine.writer
        answer = extractive if writer is None else await writer.written(extractive, fit_history(history).turns)
        self._answered(answer)
        return answer

    def _loaded_index(self) -> LoadedIndex | None:
        """The index answers are drawn from; None before one is loaded (this never loads it)."""
        return self.engine.index if self.ready.is_set() or self.damage is not None else None

    def _answered(self, answer: Answer) -> None:
        asked = _asked.get(None)
        self.metrics.answered(answer, None if asked is None else perf_counter() - asked)

    def damaged(self, exc: IndexDamagedError) -> None:
        """Stop answering from the index in use, unless a new build replaced it meanwhile."""
        with self._damage_lock:
            if self.ready.is_set() and exc.generation == self.engine.index.generation:
                self.damage = exc
                self.ready.clear()
                log.error("%s; answers resume when a new build has loaded", exc)

    def unusable(self, exc: IndexInvalidError) -> str:
        """What to tell a client whose answer found the index in use unreadable; a damaged one
        stops answers until a new build has loaded."""
        if isinstance(exc, IndexDamagedError):
            self.damaged(exc)
        return self.public(str(exc))

    def not_ready_detail(self) -> str:
        reason = self.failure or self.damage
        return f"not ready: {self.public(str(reason))}" if reason else f"getting ready: {self.step}"

    def public(self, detail: str) -> str:
        """``detail`` without the server's own folders: a client learns which file, not where it lies."""
        settings = self.engine.settings
        for folder, name in ((settings.index_dir, "the index folder"), (settings.cache_dir, "the model cache")):
            # Absolute spellings only: a relative one ("index") tells nothing and is also a word.
            for spelling in {str(folder.resolve()), str(folder)} if folder.is_absolute() else {str(folder.resolve())}:
                detail = detail.replace(spelling + os.sep, "").replace(spelling, name)
        return detail

    def not_ready(self):
        return problem(503, self.not_ready_detail(), headers={"Retry-After": "5"})


async def _runtime(request: Request) -> Runtime:
    # async: FastAPI would run a plain function in the thread pool, a hop on every request.
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
