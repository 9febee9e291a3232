"""The text a loader extracts from a file, built block by block: one paragraph or heading per
line, so that sentence offsets, headings and pages all refer to the same stored string."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

TITLE_CHARACTERS = 80  # a longer title (a first line that is a sentence) is cut at a word


def short_title(text: str) -> str:
    """``text`` on one line, cut after a word with "…" when longer than TITLE_CHARACTERS."""
    flat = " ".join(text.split())
    if len(flat) <= TITLE_CHARACTERS:
        return flat
    cut = flat[: TITLE_CHARACTERS - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:-–—") + "…"


@dataclass(frozen=True)
class Heading:
    start: int  # offsets of the heading's text in the stored text
    end: int
    level: int  # 1 for a top heading, up to 6


@dataclass(frozen=True)
class Extracted:
    text: str  # what is stored; sentence offsets refer to it
    title: str
    headings: tuple[Heading, ...] = ()  # never segmented into sentences, so never cited
    pages: tuple[int, ...] = ()  # where each page starts in ``text`` (PDF), in order


class Layout:
    """Collects blocks of text; white space inside a block is collapsed to single spaces, as a
    browser shows it."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._headings: list[Heading] = []
        self._pages: list[int] = []
        self._page_pending = False

    def paragraph(self, text: str) -> tuple[int, int] | None:
        """Add a block; its (start, end) in the stored text, or None if it holds only white space."""
        flat = " ".join(text.split())
        if not flat:
            return None
        if self._parts:
            self._parts.append("\n")
            self._length += 1
        start = self._length
        if self._page_pending:
            self._pages.append(start)
            self._page_pending = False
        self._parts.append(flat)
        self._length += len(flat)
        return start, self._length

    def heading(self, text: str, level: int) -> None:
        span = self.paragraph(text)
        if span is not None:
            self._headings.append(Heading(*span, level=level))

    def page(self) -> None:
        """The blocks that follow start a new page (a page without text gets no entry)."""
        self._page_pending = True

    def extracted(self, source: Path, title: str | None = None) -> Extracted:
        """The stored text; ``title`` defaults to the first heading, else the first block."""
        text = "".join(self._parts)
        if not text:
            raise InputError(f"{source} holds no text")
        if not title or not title.strip():
            first = self._headings[0] if self._headings else None
            title = text[first.start : first.end] if first else text.split("\n", 1)[0]
        return Extracted(text=text, title=short_title(title), headings=tuple(self._headings), pages=tuple(self._pages))
