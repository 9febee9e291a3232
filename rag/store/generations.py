"""Generations of the index: each build a folder of its own, a pointer naming the live one.

A build fills a hidden staged folder, which is fsynced and renamed to the next generation, and
only then is the pointer switched; readers see the old index or the new one, never a mix. The
pointer is the vector store's: the ``CURRENT`` file with FAISS, a collection alias with Milvus.
Builds never interleave (a lock), and each removes what killed builds left and all but the
newest generations of its vector store. A write the disk refuses (full, read-only) raises
StorageError with nothing changed; a reserve file keeps room for a delete on a full disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..atomic import remove_leftovers, replace_file, staged_folder, storage_error
from ..errors import BusyError, IndexInvalidError, IndexMissingError, RagError
from ..settings import CURRENT, GENERATION_PREFIX
from .manifest import FIX, MANIFEST
from .vector_index import VectorStore

RESERVE = ".reserve"  # disk held back, so that on a full disk a delete can still be written
RESERVE_BYTES = 4 * 1024 * 1024
_LOCK = ".build.lock"


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / _LOCK, "a")  # noqa: SIM115 - closed by the with below
    except FileExistsError:
        raise RagError(f"the index folder {index_dir} is a file; set RAG_INDEX_DIR to a folder") from None
    except OSError as exc:
        raise storage_error(exc) or RagError(f"cannot write in the index folder {index_dir}: {exc.strerror}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"another build is already changing the index in {index_dir}; try again later") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _next_number(index_dir: Path) -> int:
    """Generations are numbered in build order, so sorting their names sorts them by age."""
    numbers = [
        int(p.name.split("-")[1]) for p in index_dir.glob(GENERATION_PREFIX + "*") if p.name.split("-")[1].isdigit()
    ]
    return max(numbers, default=0) + 1


def _remove_old_generations(index_dir: Path, store: VectorStore, keep: set[str]) -> None:
    """Remove the store's generations but ``keep``; another store's live one stays."""
    store.retire(keep)
    for old in index_dir.glob(GENERATION_PREFIX + "*"):
        if old.is_dir() and old.name not in keep and _built_for(old) in (store.name, None):
            shutil.rmtree(old, ignore_errors=True)


def _built_for(generation: Path) -> str | None:
    """The vector store a generation was built for; None if its manifest cannot tell."""
    try:
        return str(json.loads((generation / MANIFEST).read_bytes())["vector_index"]["backend"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def publish(index_dir: Path, store: VectorStore, write: Callable[[Path, str], None]) -> Path:
    """Make a new generation, filled by ``write(folder, name)``, the live one of ``store``. The
    caller holds ``build_lock``."""
    remove_leftovers(index_dir)  # a killed build may have left the very name we are about to use
    name = f"{GENERATION_PREFIX}{_next_number(index_dir):06d}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    try:
        with staged_folder(index_dir / name) as staged:
            write(staged, name)
    except (OSError, sqlite3.Error, RuntimeError) as exc:  # a full disk, say: the staged folder is gone
        refused = storage_error(exc)
        if refused is not None:
            raise refused from None
        if not isinstance(exc, OSError):
            raise
        reason = exc.strerror or str(exc)
        raise RagError(f"cannot write the new index in {index_dir}: {reason}; the index in use is unchanged") from None
    try:
        previous = store.live(index_dir)
    except IndexInvalidError:  # a damaged pointer
        previous = None
    try:
        store.switch(index_dir, name)
    except OSError as exc:
        if store.live(index_dir) != name:  # the pointer did not move: the new build never was
            shutil.rmtree(index_dir / name, ignore_errors=True)
        raise storage_error(exc) or RagError(f"cannot switch the index in {index_dir}: {exc.strerror}") from None
    # The live build and the one live before it stay; a build killed before it went live left a
    # generation that never was, and it goes too.
    _remove_old_generations(index_dir, store, keep={name, previous} - {None})
    _hold_reserve(index_dir)
    return index_dir / name


def _hold_reserve(index_dir: Path) -> None:
    """Hold RESERVE_BYTES of the disk in a file while there is room for it."""
    path = index_dir / RESERVE
    if path.exists():
        return
    try:
        with open(path, "wb") as handle:
            handle.write(bytes(RESERVE_BYTES))  # written, not a sparse file: the blocks are its own
            os.fsync(handle.fileno())  # a disk that allocates late says now that it has no room
    except OSError:  # no room: it is held again after a later build
        path.unlink(missing_ok=True)


def free_room(index_dir: Path, store: VectorStore, reserve: bool) -> None:
    """Make room for a build on a full disk: remove what killed builds left, every generation of
    ``store`` but the live one, and the reserve if ``reserve``. The caller holds ``build_lock``."""
    remove_leftovers(index_dir)
    if reserve:
        (index_dir / RESERVE).unlink(missing_ok=True)
    try:
        live = store.live(index_dir)
    except IndexInvalidError:
        return  # which one is live cannot be told: none is removed
    if live is not None:
        _remove_old_generations(index_dir, store, keep={live})


def live_generation(index_dir: Path, store: VectorStore) -> Path:
    name = store.live(index_dir)
    if name is None:
        raise IndexMissingError(f"there is no index in {index_dir}; run `rag index` to build it")
    if not name.startswith(GENERATION_PREFIX) or "/" in name or not (index_dir / name).is_dir():
        raise IndexInvalidError(f"the live index pointer of {index_dir} ({name!r}) names no build of the index; {FIX}")
    return index_dir / name


def read_current(index_dir: Path) -> str | None:
    """The generation the ``CURRENT`` file names (None without the file)."""
    pointer = index_dir / CURRENT
    try:
        return pointer.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        raise IndexInvalidError(f"{pointer} is damaged; {FIX}") from None


def write_current(index_dir: Path, name: str) -> None:
    replace_file(index_dir / CURRENT, (name + "\n").encode("ascii"))
