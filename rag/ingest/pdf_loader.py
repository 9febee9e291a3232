"""PDF through pypdf: the text of each page, its printed lines joined back into paragraphs."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .layout import Extracted, Layout

_ENDS_SENTENCE = tuple(".!?:;…»”\"'")
# A line much shorter than the page's longest ends its paragraph (its last line), or stands
# alone (a heading) when it does not end a sentence and the next line starts a new one: with a
# capital, or with a digit, as a numbered heading does ("1. Présentation"); else a report's
# subtitle and its first heading were glued to the first sentence of the text.
_SHORT_LINE = 0.75


def _starts_anew(line: str) -> bool:
    return line[:1].isupper() or line[:1].isdigit()


def _add_page(layout: Layout, text: str) -> None:
    lines = [line.strip() for line in text.splitlines()]
    width = max((len(line) for line in lines), default=0)
    paragraph: list[str] = []

    def flush() -> None:
        block = "".join(paragraph)
        paragraph.clear()
        if any(char.isalpha() for char in block):  # page numbers and rules are not text
            layout.paragraph(block)

    for number, line in enumerate(lines):
        if not line:
            flush()
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        short = len(line) < _SHORT_LINE * width
        if short and not paragraph and not line.endswith(_ENDS_SENTENCE) and _starts_anew(following):
            flush()
            layout.heading(line, level=2)
            continue
        # A line broken after a hyphen joins the next without a space; others with one.
        paragraph.append(line if line.endswith("-") else line + " ")
        if short and line.endswith(_ENDS_SENTENCE):
            flush()
    flush()


@dataclass(frozen=True)
class PdfLoader:
    format: str = "pdf"

    def extract(self, data: bytes, source: Path) -> Extracted:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings name no file; ours do
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise InputError(f"{source} is an encrypted PDF; save a copy without a password and add that")
            layout = Layout()
            for page in reader.pages:
                layout.page()
                _add_page(layout, page.extract_text() or "")
            title = reader.metadata.title if reader.metadata else None
        except (PdfReadError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{source} is not a readable PDF ({exc})") from exc
        try:
            return layout.extracted(source, title)
        except InputError:
            raise InputError(f"{source} holds no text (a scanned PDF needs OCR first)") from None
