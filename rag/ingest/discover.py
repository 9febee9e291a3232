"""Finding the document files under the paths given, and reading each with its loader."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError
from .document import Document, Skipped
from .language import document_language
from .loaders import LOADERS


def _kinds() -> str:
    return " or ".join(LOADERS)


def discover(paths: Iterable[Path]) -> list[Path]:
    """The document files named by ``paths`` (files, or folders searched recursively), sorted."""
    found: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in LOADERS)
        elif path.suffix.lower() in LOADERS:
            found.add(path)
        else:
            raise InputError(f"{path} is not a {_kinds()} file")
    if not found:
        names = ", ".join(str(p) for p in paths)
        raise InputError(f"no {_kinds()} documents found in {names}")
    return sorted(found)


def read_document(path: Path) -> Document:
    """Read one document with the loader for its type."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise InputError(f"{path} is not a {_kinds()} file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    extracted = loader.extract(data, path)
    return Document(
        id=path.stem,
        title=extracted.title,
        path=str(path),
        text=extracted.text,
        source_sha256=hashlib.sha256(data).hexdigest(),
        text_sha256=hashlib.sha256(extracted.text.encode("utf-8")).hexdigest(),
        format=loader.format,
        language=document_language(extracted.text),
    )


def load_documents(paths: Iterable[Path]) -> tuple[list[Document], list[Skipped]]:
    """Read every document under ``paths``. Unreadable ones are skipped and reported;
    if none can be read, the first reason is raised."""
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for path in discover(list(paths)):
        try:
            document = read_document(path)
        except InputError as exc:
            skipped.append(Skipped(str(path), str(exc)))
            continue
        if document.id in seen:
            raise InputError(f"two documents share the id {document.id!r}: {seen[document.id]} and {path}")
        seen[document.id] = str(path)
        documents.append(document)
    if not documents:
        raise InputError(skipped[0].reason if len(skipped) == 1 else f"no readable document: {skipped[0].reason}")
    return documents, skipped
