"""Finding the document files under the paths given, and reading each with its loader."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ..errors import InputError, UnsupportedTypeError
from .document import Document, Skipped
from .language import check_language, document_language
from .loaders import LOADERS

ID_SUFFIX = 8  # hex digits of the path's sha256 that tell apart two files with one name


def kinds() -> str:
    names = list(LOADERS)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _walk(folder: Path, skipped: dict[Path, Skipped]) -> list[Path]:
    """Every file under ``folder``, hidden files and folders left out; a subfolder that cannot
    be read, and anything that is not a regular file (a FIFO, a device), go to ``skipped``."""
    found = []

    def unreadable(error: OSError) -> None:
        where = Path(error.filename or folder)
        skipped[where] = Skipped(str(where), f"cannot read the folder {where}: {error.strerror}")

    for root, folders, files in os.walk(folder, onerror=unreadable):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if path.is_file():
                found.append(path)
            else:
                skipped[path] = Skipped(str(path), f"{path} is not a regular file")
    return found


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    """The document files named by ``paths`` (files, or folders searched recursively, hidden
    files left out), sorted; and what was skipped: files of other types, things that are not
    regular files, folders that cannot be read. A file of another type given alone is an error."""
    paths = list(paths)
    found: set[Path] = set()
    skipped: dict[Path, Skipped] = {}
    for path in paths:
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        if path.is_dir():
            files = _walk(path, skipped)
        elif path.is_file():
            files = [path]
        else:
            raise InputError(f"{path} is not a regular file (a FIFO or a device cannot be indexed)")
        for file in files:
            if file.suffix.lower() in LOADERS:
                found.add(file)
            else:
                skipped[file] = Skipped(str(file), f"{file} is not a {kinds()} file")
    if not found:
        if len(paths) == 1 and paths[0].is_file():
            raise UnsupportedTypeError(f"{paths[0]} is not a {kinds()} file")
        names = ", ".join(str(p) for p in paths)
        raise InputError(f"no {kinds()} documents found in {names}")
    return sorted(found), [skipped[file] for file in sorted(skipped)]


def document_id(path: Path, taken: Callable[[str], bool]) -> str:
    """The file's name without its suffix; when another file has it already, followed by a
    digest of the file's full path, so that the same file always gets the same id."""
    stem = path.stem
    if not taken(stem):
        return stem
    return f"{stem}-{hashlib.sha256(str(path.resolve()).encode('utf-8')).hexdigest()[:ID_SUFFIX]}"


def read_document(
    path: Path, document_id: str | None = None, language: str | None = None, data: bytes | None = None
) -> Document:
    """Read one document with the loader for its type; its id is the file's name without its
    suffix and its language is detected, unless given. ``data``, when given, is the file's
    content (an upload not written yet)."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise UnsupportedTypeError(f"{path} is not a {kinds()} file")
    try:
        data = path.read_bytes() if data is None else data
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    extracted = loader.extract(data, path)
    return Document(
        id=document_id or path.stem,
        title=extracted.title,
        path=str(path),
        text=extracted.text,
        source_sha256=hashlib.sha256(data).hexdigest(),
        text_sha256=hashlib.sha256(extracted.text.encode("utf-8")).hexdigest(),
        format=loader.format,
        language=language or document_language(extracted.text),
        headings=extracted.headings,
        pages=extracted.pages,
    )


def load_documents(
    paths: Iterable[Path],
    language: str | None = None,
    taken: Iterable[str] = (),
    known: Mapping[str, str] | None = None,
) -> tuple[list[Document], list[Skipped]]:
    """Read every document under ``paths``, with ids unlike each other and unlike ``taken``,
    except a file in ``known`` (resolved path to id), which keeps its id. Unreadable ones and
    files of other types are skipped and reported; if none can be read, the first reason is raised."""
    known = known or {}
    if language is not None:
        check_language(language)
    files, skipped = discover(paths)
    documents: list[Document] = []
    ids = set(taken)
    for path in files:
        try:
            same = known.get(str(path.resolve()))
            document = read_document(path, same or document_id(path, ids.__contains__), language)
        except InputError as exc:
            skipped.append(Skipped(str(path), str(exc)))
            continue
        ids.add(document.id)
        documents.append(document)
    if not documents:
        unreadable = [s for s in skipped if s.path in {str(f) for f in files}]
        first = unreadable[0].reason
        raise InputError(first if len(files) == 1 else f"no readable document: {first}")
    return documents, skipped
