"""The index's life: building it from documents, adding and removing them, keeping uploads,
publishing each build as a new generation, and loading (then refreshing) the live one."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .atomic import remove_leftovers, replace_file, storage_error
from .embed.base import Embedder
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
from .ingest.language import check_language
from .ingest.loaders import LOADERS
from .ingest.segment import SEGMENTER
from .retrieve.background import background_sentences
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


class Library:
    """The index folder's builds and the live index loaded from it. ``embedder`` gives the
    embedder, loaded on first call; ``backend`` names the one questions are embedded with,
    without loading it."""

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder], backend: Callable[[], str]):
        self.store = vector_store(settings)
        choose("RAG_INDEX_TYPE", settings.index_type, INDEX_TYPES)
        self.settings = settings
        self._embedder = embedder
        self._backend = backend
        self._index: LoadedIndex | None = None

    @property
    def embedder(self) -> Embedder:
        return self._embedder()

    def build_index(
        self, paths: Sequence[Path] = (), progress: bool = False, language: str | None = None
    ) -> BuildReport:
        """Read, segment and embed the documents under ``paths`` (default: the seeds folder)
        and make them the live index; ``language`` overrides the detected one. Bad input raises
        before the old index is touched. Documents unchanged since the live index keep their vectors."""
        started = time.perf_counter()
        if not paths and not self.settings.seeds_dir.exists():
            raise InputError(
                f"no documents to index: {self.settings.seeds_dir} does not exist; "
                "name them (`rag index PATH ...`) or set RAG_SEEDS_DIR to their folder"
            )
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

    def document(self, document_id: str) -> dict:
        """A document's id, title and text (the text citations' offsets index into)."""
        found = self.index.documents.get(document_id)
        if found is None:
            raise NotFoundError(f"there is no document {document_id!r}")
        return {"id": found.id, "title": found.title, "text": found.text}

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
        running = self._backend()
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
