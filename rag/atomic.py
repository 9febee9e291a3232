"""Writing files and folders so that a reader, or a crash, never sees them half-written: write
beside the target, fsync, rename into place, fsync the parent folder."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import StorageError

TMP_PREFIX = ".tmp-"  # what a killed writer leaves behind starts with this
FULL = (errno.ENOSPC, errno.EDQUOT)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes) -> None:
    """Make ``path`` hold ``data``: readers see the old content or the new, never a part. The
    staged file's name is its own (two writers never share one, and it is short whatever the
    target's length); it is removed if the write fails."""
    staged = path.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}")
    try:
        staged.write_bytes(data)
        fsync_file(staged)
        os.replace(staged, path)
    except Exception:  # not on KeyboardInterrupt: like a kill, it leaves the file to the next sweep
        staged.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def storage_error(exc: BaseException) -> StorageError | None:
    """The StorageError a failed write stands for when the disk refused it (full, over quota or
    read-only); None for any other failure. SQLite and FAISS say so in exceptions of their own."""
    if isinstance(exc, OSError):
        code = exc.errno
    elif isinstance(exc, sqlite3.Error):
        code = errno.ENOSPC if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL else None
    elif isinstance(exc, RuntimeError):  # FAISS: "... write error in PATH: 65491 != 512000 (No space left on device)"
        code = next((c for c in (*FULL, errno.EROFS) if f"({os.strerror(c)})" in str(exc)), None)
    else:
        code = None
    if code in FULL:
        return StorageError(
            "the disk holding the index is full; free some space on it or set RAG_INDEX_DIR to a "
            "folder on a larger disk; nothing was changed"
        )
    if code == errno.EROFS:
        return StorageError(
            "the index folder is on a read-only disk; make it writable or set RAG_INDEX_DIR to a "
            "writable folder; nothing was changed"
        )
    return None


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """An empty folder beside ``target`` to fill; when the block ends without error, every file in
    it is fsynced and the folder renamed to ``target``; if ``target`` exists and holds anything,
    the rename fails with OSError (another writer won). On error the folder is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own: two processes may build the same target at once (the first rename wins).
    # mkdir, unlike mkdtemp's 0700, gives the folder the permissions the user's umask asks for.
    staged = target.with_name(f"{TMP_PREFIX}{target.name}-{secrets.token_hex(6)}")
    staged.mkdir()
    try:
        yield staged
        for path in sorted(staged.rglob("*")):
            if path.is_file():
                fsync_file(path)
            else:
                fsync_dir(path)
        fsync_dir(staged)
        os.rename(staged, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def remove_leftovers(folder: Path) -> None:
    """What killed writers left in ``folder`` (only call it while no writer can be running there)."""
    for leftover in folder.glob(TMP_PREFIX + "*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
