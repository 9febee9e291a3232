"""Loaders: a file's bytes to the text that is stored, indexed and cited, one per file type.

Each implements ``Loader``; ``LOADERS`` maps a file suffix to the loader for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .docx_loader import DocxLoader
from .html_loader import HtmlLoader
from .layout import Extracted
from .markdown_loader import MarkdownLoader
from .pdf_loader import PdfLoader
from .text_loader import PlainTextLoader


class Loader(Protocol):
    @property
    def format(self) -> str:
        """Recorded with each document it reads: "text", "markdown", ..."""
        ...

    def extract(self, data: bytes, source: Path) -> Extracted:
        """The text and title of a file of this type; InputError if it holds no usable text."""
        ...


LOADERS: dict[str, Loader] = {
    ".txt": PlainTextLoader(),
    ".md": MarkdownLoader(),
    ".markdown": MarkdownLoader(),
    ".html": HtmlLoader(),
    ".htm": HtmlLoader(),
    ".pdf": PdfLoader(),
    ".docx": DocxLoader(),
}
