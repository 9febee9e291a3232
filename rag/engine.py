"""The composition root: wires the settings' choice of embedder, vector index and answerer
over the store, for the command line and the server alike."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path

import numpy as np

from .answer.base import Answer, Answerer
from .answer.factory import create_answerer, create_writer
from .answer.generative import AnswerWriter
from .answer.questions import Turn, check_citation_limit, check_question, earlier_questions, fit_history
from .answer.smalltalk import CHITCHAT, NO_CONTENT, ChitChatHead, has_content, plain_answer
from .atomic import remove_leftovers, replace_file, storage_error
from .embed.base import Embedder
from .embed.factory import check_backend, create_embedder
from .errors import (
    IndexInvalidError,
    IndexMissingError,
    InputError,
    NotFoundError,
    RagError,
    StorageError,
    UnsupportedTypeError,
)
from .ingest.discover import document_id, kinds, load_documents, read_document
from .ingest.document import Document, Skipped
from .ingest.language import check_language, english_name, probabilities, sure_language
from .ingest.loaders import LOADERS
from .ingest.segment import SEGMENTER
from .retrieve.answerability import Bars, Decision, Thresholds, decide
from .retrieve.background import background_sentences
from .retrieve.confidence import Calibration, Evidence, cannot_state
from .retrieve.late_interaction import LanguageSplit, Retrieval, retrieve
from .settings import INDEX_TYPES, Settings, choose
from .store import reuse
from .store.factory import vector_store
from .store.generations import build_lock, free_room, live_generation
from .store.index import LoadedIndex, bytes_needed, check_room, load_index, write_index
from .store.manifest import FIX
from .store.metadata import Listed
from .store.tokens import TokenVectors

UPLOADS = "uploads"  # folder of the index folder that keeps uploaded files
NAME_MAX = 255  # bytes of a file name on Linux's filesystems (ext4, XFS, Btrfs, tmpfs)
# Characters refused in an uploaded file's name: controls (newlines among them), format characters
# (bidi overrides such as U+202E, zero-width ones), surrogates, line and paragraph separators.
HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
TOKENIZED_AT_ONCE = 256  # texts counted per call when a build estimates its size on disk
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


@dataclass(frozen=True)
class BuildReport:
    documents: int
    sentences: int
    embedded: int  # sentences embedded; the others kept their vectors from the previous index
    model: str
    added: tuple[str, ...]  # ids of the documents read for this build
    seconds: float
    location: Path
    skipped: list[Skipped]
    left_out: tuple[str, ...] = ()  # ids of the previous index's documents the new one does not hold
    listed: tuple[dict, ...] = ()  # the added documents as GET /api/documents lists them


def listing(document: Document | Listed, sentences: int) -> dict:
    """A document as GET /api/documents lists it."""
    return {
        "id": document.id,
        "title": document.title,
        "language": document.language,
        "format": document.format,
        "sentences": sentences,
        "sha256": document.source_sha256,
    }


def upload_name(filename: str) -> str:
    """The name an uploaded file is kept under: the last part of ``filename``, NFC-normalised.
    A name that is empty or hidden, over NAME_MAX bytes, or that holds a character that is
    invisible or moves the text around it (HIDDEN_CATEGORIES) is refused."""
    name = unicodedata.normalize("NFC", Path(filename.replace("\\", "/")).name.strip())
    if not name or name.startswith("."):
        raise InputError("the upload needs a file name such as report.pdf")
    hidden = next((char for char in name if unicodedata.category(char) in HIDDEN_CATEGORIES), None)
    if hidden is not None:  # its position is not told: the message would show it as the name does
        raise InputError(f"the file name holds the invisible or control character U+{ord(hidden):04X}; rename it")
    size = len(name.encode("utf-8"))
    if size > NAME_MAX:
        raise InputError(f"the file name is {size} bytes long in UTF-8, over the {NAME_MAX} a name may have; rename it")
    return name


def _identified(documents: list[Document], current: LoadedIndex) -> list[Document]:
    """``documents`` with ids unlike each other and unlike ``current``'s, except that a file
    already in it (same path) keeps its id; as ``load_documents`` gives them with its index."""
    known = {str(Path(d.path).resolve()): d.id for d in current.listed.values()}
    ids = set(current.documents)
    identified = []
    for document in documents:
        path = Path(document.path)
        identified.append(replace(document, id=known.get(str(path.resolve())) or document_id(path, ids.__contains__)))
        ids.add(identified[-1].id)
    return identified


class Engine:
    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        from threadpoolctl import threadpool_limits

        # Every named implementation exists, before anything is read or written.
        if embedder is None:
            check_backend(settings)
        self.store = vector_store(settings)
        choose("RAG_INDEX_TYPE", settings.index_type, INDEX_TYPES)
        self.answerer: Answerer = create_answerer(settings)
        self.writer: AnswerWriter | None = create_writer(settings)  # RAG_LLM_URL: an LLM server writes answers
        # NumPy's BLAS threads keep spinning after each of our small products and slow the next
        # forward pass of the model by half (47 -> 25 ms per answer with torch); one is plenty.
        threadpool_limits(limits=1, user_api="blas")
        self.settings = settings
        self._embedder = embedder  # tests pass a loaded one; otherwise built on first use
        self._index: LoadedIndex | None = None
        _ = self.bars  # a target precision the calibration does not reach is refused at once

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = create_embedder(self.settings)
        return self._embedder

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

    def build_index(
        self, paths: Sequence[Path] = (), progress: bool = False, language: str | None = None
    ) -> BuildReport:
        """Read, segment and embed the documents under ``paths`` (default: the seeds folder)
        and make them the live index; ``language`` overrides the detected one. Bad input raises
        before the old index is touched. Documents unchanged since the live index keep their vectors."""
        started = time.perf_counter()
        documents, skipped = load_documents(list(paths) or [self.settings.seeds_dir], language)
        with build_lock(self.settings.index_dir):
            try:
                previous = self._load_checked()
            except RagError:  # none yet, or unusable: a rebuild is its fix
                previous = None
            report = self._publish(documents, skipped, previous, started, progress, [d.id for d in documents])
        kept = {d.source_sha256 for d in documents}
        left_out = [] if previous is None else [d.id for d in previous.listed.values() if d.source_sha256 not in kept]
        return replace(report, left_out=tuple(left_out))

    def add_documents(self, paths: Sequence[Path], progress: bool = False, language: str | None = None) -> BuildReport:
        """Add the documents under ``paths`` to the live index, in a new generation; a file
        already in it (same path) replaces its old version under the same id. Only their
        sentences are embedded. The files are read before the build lock is taken: a slow one
        holds up no other build."""
        started = time.perf_counter()
        documents, skipped = load_documents(paths, language)
        with build_lock(self.settings.index_dir):
            return self._add(documents, skipped, started, progress)

    def _add(self, documents: list[Document], skipped: list[Skipped], started: float, progress: bool) -> BuildReport:
        """Publish the live index with ``documents`` added. The caller holds ``build_lock``."""
        current = self._current()
        added = _identified(documents, current)
        replaced = {document.id for document in added}
        kept = [d for d in current.in_row_order if d.id not in replaced]
        return self._publish(kept + added, skipped, current, started, progress, [d.id for d in added])

    def remove_documents(self, ids: Sequence[str]) -> BuildReport:
        """Remove documents from the live index, in a new generation; nothing is embedded. Their
        kept uploads go with them."""
        started = time.perf_counter()
        with build_lock(self.settings.index_dir):
            current = self._current()
            unknown = [i for i in ids if i not in current.documents]
            if unknown:
                raise NotFoundError(f"no document {unknown[0]!r} in the index; `rag documents` lists them")
            removed = set(ids)
            kept = [d for d in current.in_row_order if d.id not in removed]
            if not kept:
                raise InputError("that would leave the index empty; `rag index PATH` builds one from other documents")
            return self._publish(kept, [], current, started, progress=False)

    def add_upload(self, filename: str, data: bytes, language: str | None = None) -> BuildReport:
        """Add an uploaded file. It is kept under the index folder as ``uploads/<digest>/<name>``
        (the same bytes under the same name are the same document) for as long as its document
        is in the live index. It is read before the build lock is taken; written, and removed
        again if it cannot be added, under it."""
        name = upload_name(filename)
        if Path(name).suffix.lower() not in LOADERS:
            raise UnsupportedTypeError(f"{name} is not a {kinds()} file")
        path = self.settings.index_dir / UPLOADS / hashlib.sha256(data).hexdigest()[:16] / name
        started = time.perf_counter()
        try:
            if language is not None:
                check_language(language)
            document = read_document(path, language=language, data=data)
        except InputError as exc:  # named by the uploader's file name: where the server keeps it is its own
            raise type(exc)(str(exc).replace(str(path), name)) from None
        with build_lock(self.settings.index_dir):
            new = not path.exists()  # uploads/ changes only under the lock
            try:
                if new:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    replace_file(path, data)
                return self._add([document], [], started, progress=False)
            except BaseException as exc:
                if new:
                    path.unlink(missing_ok=True)
                    with suppress(OSError):
                        path.parent.rmdir()  # unless it holds the same bytes under another name
                refused = storage_error(exc)
                if refused is not None:
                    raise refused from None
                raise

    def sweep(self) -> None:
        """Remove what killed writers left in the index folder: temporary files, and kept uploads
        no document of the live index is read from (run when the server starts). Raises
        BusyError while a build runs, which cleans up as it ends."""
        with build_lock(self.settings.index_dir):
            remove_leftovers(self.settings.index_dir)
            live = live_generation(self.settings.index_dir, self.store).name
            if live == self.index.generation:  # else a build went live since: the next one sweeps
                self._sweep(self.index.listed.values())

    def _sweep(self, documents: Iterable[Document | Listed]) -> None:
        """Remove every file under uploads/ that none of ``documents`` is read from, and the
        folders left empty. The caller holds ``build_lock``: nothing is being written there."""
        needed = {Path(d.path).resolve() for d in documents}
        for path in sorted((self.settings.index_dir / UPLOADS).rglob("*"), reverse=True):  # files before folders
            with suppress(OSError):  # what cannot go now goes at a later sweep
                if path.is_dir():
                    path.rmdir()  # only if empty
                elif path.resolve() not in needed:
                    path.unlink()

    def documents(self) -> list[dict]:
        """The index's documents as GET /api/documents lists them, in index order."""
        return [listing(d, d.sentences) for d in self.index.row_order]

    def _current(self) -> LoadedIndex:
        try:
            return self._load_checked()
        except IndexMissingError:
            raise IndexMissingError(
                f"there is no index in {self.settings.index_dir} yet; `rag index` builds one"
            ) from None

    def _publish(
        self,
        documents: list[Document],
        skipped: list[Skipped],
        previous: LoadedIndex | None,
        started: float,
        progress: bool,
        added: Sequence[str] = (),
    ) -> BuildReport:
        """Write ``documents`` as the new live generation, reusing ``previous``'s vectors where
        its model and the documents' sentences allow. The caller holds ``build_lock``."""
        background, background_sha256 = background_sentences()
        plan = reuse.plan(documents, previous)
        if previous is None or plan.to_embed:
            embedder = self.embedder
            model = {
                "name": self.settings.embedding_model,
                "backend": embedder.backend,
                "dimension": embedder.dimension,
                "prompts": embedder.prompts,
                "token_layers": embedder.token_layers,
                "token_dimension": embedder.token_dimension,
            }
            if previous is not None and previous.manifest["model"] != json.loads(json.dumps(model)):
                previous = None  # another model's vectors
                plan = reuse.plan(documents, None)
        else:  # nothing to embed: the model stays the one the index was built and loaded with
            model = previous.manifest["model"]
        self._check_room(documents, plan, previous, model)
        if previous is not None:  # loading checked that its background is today's
            background_tokens = previous.background
        else:
            background_tokens = TokenVectors.join(
                self.embedder.encode_passages(background).tokens, model["token_dimension"]
            )
        info = {
            "model": model,
            "segmentation": {"segmenter": SEGMENTER, "paragraphs": "line breaks", "embedded_unit": "sentence"},
            "background": {"sha256": background_sha256, "sentences": len(background)},
        }
        rows = itertools.chain(reuse.reused_rows(plan, previous), self._embedded_rows(plan, progress))
        location = write_index(
            self.settings.index_dir,
            documents,
            plan.sentences,
            rows,
            background_tokens,
            info,
            self.store,
            self.settings.index_type,
        )
        self._sweep(documents)  # the uploads of documents it no longer holds, and any orphan
        sentences = Counter(sentence.document for sentence in plan.sentences)
        new = set(added)
        return BuildReport(
            documents=len(documents),
            sentences=len(plan.sentences),
            embedded=len(plan.to_embed),
            model=self.settings.embedding_model,
            added=tuple(added),
            seconds=time.perf_counter() - started,
            location=location,
            skipped=skipped,
            listed=tuple(listing(d, sentences[d.id]) for d in documents if d.id in new),
        )

    def _embedded_rows(self, plan: reuse.Plan, progress: bool) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(row, pooled vector, token vectors) of each sentence of ``plan`` to embed, a batch at a time."""
        new_rows = [row for row, old in enumerate(plan.previous_rows) if old is None]
        # Nothing to embed: the model is not even loaded.
        for batch in self.embedder.passage_batches(plan.to_embed, progress=progress) if new_rows else ():
            for i, vector, tokens in zip(batch.rows, batch.vectors, batch.tokens, strict=True):
                yield new_rows[i], vector, tokens

    def _check_room(
        self, documents: list[Document], plan: reuse.Plan, previous: LoadedIndex | None, model: dict
    ) -> None:
        """Refuse a build the disk cannot hold before embedding anything."""
        texts = plan.to_embed
        new_tokens = sum(
            len(ids)
            for start in range(0, len(texts), TOKENIZED_AT_ONCE)
            for ids in self.embedder.token_ids(texts[start : start + TOKENIZED_AT_ONCE])
        )
        needed = bytes_needed(
            sentences=len(plan.sentences),
            tokens=new_tokens + reuse.reused_token_count(plan, previous),
            text_bytes=sum(len(d.text.encode("utf-8")) for d in documents),
            dimension=model["dimension"],
            token_dimension=model["token_dimension"],
        )
        try:
            check_room(self.settings.index_dir, needed)
        except StorageError:  # older builds and leftovers go first
            # A build that only takes documents out takes the reserve too, and is not refused in
            # advance: it is smaller than the live build, the estimate asks more, and written at
            # once, embedding nothing, it is left to the disk to refuse (nothing changed).
            removal = previous is not None and not plan.to_embed and len(documents) < len(previous.listed)
            free_room(self.settings.index_dir, self.store, reserve=removal)
            if not removal:
                check_room(self.settings.index_dir, needed)

    def load_index(self) -> LoadedIndex:
        """The live index, verified, checked against the configured model and stores, and ready
        to answer from."""
        return self._load_checked(self.settings.token_memory_mb << 20)

    def _load_checked(self, token_memory_bytes: int = 0) -> LoadedIndex:
        """The live index, verified and checked against the configured model and stores; a
        build reads the previous index's token vectors from disk, whatever their size."""
        contents = load_index(self.settings.index_dir, token_memory_bytes, self.store)
        manifest = contents.manifest
        built_with = manifest["model"]["name"]
        if built_with != self.settings.embedding_model:
            raise IndexInvalidError(
                f"the index was built with {built_with}, but the configured model is "
                f"{self.settings.embedding_model} (RAG_EMBEDDING_MODEL); {FIX}"
            )
        # Indexes from before the fast path record no backend: torch built them.
        built_by = manifest["model"].get("backend", "torch")
        running = self._embedder.backend if self._embedder is not None else self.settings.backend
        if built_by != running:
            raise IndexInvalidError(
                f"the index was built with the {built_by} backend, but questions would be embedded with "
                f"{running} (RAG_BACKEND); their vectors differ slightly and answers would suffer; {FIX}"
            )
        if manifest["background"]["sha256"] != background_sentences()[1]:
            raise IndexInvalidError(f"the index was built with another version of rag's background sentences; {FIX}")
        return contents

    @property
    def index(self) -> LoadedIndex:
        """The index answers are drawn from, loaded on first use."""
        if self._index is None:
            self._index = self.load_index()
        return self._index

    def refresh(self) -> bool:
        """Switch to the live index if a build replaced it since it was loaded; True if it did.
        A new index that fails to load raises and leaves the one in use in place. Answers
        already running keep the index they started with."""
        live = live_generation(self.settings.index_dir, self.store).name
        if self._index is not None and live == self._index.generation:
            return False
        self._index = self.load_index()
        return True

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
        index = self.index if index is None else index
        answer = self._extract(text, limit, index, fitted.turns)
        return replace(answer, resolved_question=answer.resolved_question or text, history_cut=fitted.cut)

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
        # The background is scored only for the fallback decision (a model without thresholds).
        background = index.background if self.thresholds is None else None
        context = None if earlier is None else (earlier.vector, earlier.tokens)
        retrieval = retrieve(
            question.vector,
            question.tokens,
            index.vectors,
            index.tokens,
            background,
            context,
            *self._calibration(question.text, index),
        )
        first = index.sentence_text(index.sentences[retrieval.ranked[0].row]) if retrieval.ranked else ""
        confidence = self._confidence(question.text, retrieval, first, question.vector, index)
        decision = decide(
            retrieval, self.thresholds is not None, confidence, self.bars, cannot_state(question.text, first)
        )
        text = question.text if earlier is None else f"{earlier.text} {question.text}"
        return Reading(text, retrieval, decision)

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
