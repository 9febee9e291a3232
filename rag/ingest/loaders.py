"""Loaders: a file's bytes to the text that is stored, indexed and cited, one per file type.

Each implements ``Loader``; ``LOADERS`` maps a file suffix to the loader for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import InputError

TITLE_CHARACTERS = 120


@dataclass(frozen=True)
class Extracted:
    text: str  # what is stored; sentence offsets refer to it
    title: str


class Loader(Protocol):
    @property
    def format(self) -> str:
        """Recorded with each document it reads: "text", "markdown", ..."""
        ...

    def extract(self, data: bytes, source: Path) -> Extracted:
        """The text and title of a file of this type; InputError if it holds no usable text."""
        ...


@dataclass(frozen=True)
class PlainTextLoader:
    """UTF-8 text kept exactly as decoded, nothing stripped; the title is its first line."""

    format: str = "text"

    def extract(self, data: bytes, source: Path) -> Extracted:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{source} is not UTF-8 text (byte {exc.start} cannot be decoded)") from exc
        if not text.strip():
            raise InputError(f"{source} is empty")
        title = next(line for line in text.splitlines() if line.strip()).strip().lstrip("#").strip()
        return Extracted(text=text, title=title[:TITLE_CHARACTERS])


# Markdown is read as plain text for now (markup included); its own parser is to come.
LOADERS: dict[str, Loader] = {".txt": PlainTextLoader("text"), ".md": PlainTextLoader("markdown")}
