"""Writing files and folders so that a reader, or a crash, never sees them half-written: write
beside the target, fsync, rename into place, fsync the parent folder."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".tmp-"  # what a killed writer leaves behind starts with this


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
    """Make ``path`` hold ``data``: readers see the old content or the new, never a part. One
    writer at a time (the staged name is fixed, so a killed writer's leftover is known)."""
    staged = path.with_name(TMP_PREFIX + path.name)
    staged.write_bytes(data)
    fsync_file(staged)
    os.replace(staged, path)
    fsync_dir(path.parent)


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
