"""Markdown through markdown-it-py (CommonMark with tables): headings become the title and the
sections, every other block a paragraph of plain text; markup, link targets, images, raw HTML
and code blocks are left out. A YAML front matter's ``title`` is the title."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .layout import Extracted, Layout
from .text_loader import decode_utf8

_BLOCKS_WITH_TEXT = {"paragraph_open", "heading_open"}
_CELL = {"th_open", "td_open"}


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _front_matter(source: str) -> tuple[str, str | None]:
    """The document without its YAML front matter (``---`` lines around it), and its title."""
    if not source.startswith("---\n"):
        return source, None
    end = source.find("\n---", 3)
    if end < 0:
        return source, None
    import yaml

    try:
        meta = yaml.safe_load(source[4:end])
    except yaml.YAMLError:
        return source, None  # not front matter after all: keep it as text
    title = meta.get("title") if isinstance(meta, dict) else None
    rest = source[end + 4 :]
    return rest.split("\n", 1)[1] if "\n" in rest else "", title if isinstance(title, str) else None


def _inline_text(token) -> str:
    """The words of an inline token as a reader sees them."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)


def markdown_layout(source: str) -> tuple[Layout, str | None]:
    """The blocks of a Markdown text, and the title its front matter gives (if any)."""
    body, title = _front_matter(source)
    layout = Layout()
    tokens = _parser().parse(body)
    row: list[str] | None = None
    for i, token in enumerate(tokens):
        if token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            layout.paragraph("; ".join(cell for cell in row if cell))
            row = None
        elif token.type in _CELL and row is not None:
            row.append(" ".join(_inline_text(tokens[i + 1]).split()))
        elif token.type in _BLOCKS_WITH_TEXT:
            text = _inline_text(tokens[i + 1])
            if token.type == "heading_open":
                layout.heading(text, level=int(token.tag[1]))
            else:
                layout.paragraph(text)
    return layout, title


@dataclass(frozen=True)
class MarkdownLoader:
    format: str = "markdown"

    def extract(self, data: bytes, source: Path) -> Extracted:
        layout, title = markdown_layout(decode_utf8(data, source))
        return layout.extracted(source, title)
