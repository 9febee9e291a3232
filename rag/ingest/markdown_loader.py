"""Markdown through markdown-it-py (CommonMark with tables): headings become the title and the
sections, every other block a paragraph of plain text; markup, link targets, images, raw HTML
and code blocks are left out. A YAML front matter's ``title`` is the title."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import InputError
from .layout import Extracted, Layout
from .text_loader import decode_utf8

_BLOCKS_WITH_TEXT = {"paragraph_open", "heading_open"}
_CELL = {"th_open", "td_open"}
# markdown-it stops reading, silently, at this depth of nested blocks (a list level takes two: the
# list and its item); its default, 20, dropped all that followed a list 10 levels deep. It parses
# by recursion: 200 stays far within Python's limit (a list 900 levels deep exceeds it).
MAX_NESTING = 200
# Spans (links, emphasis) keep the default: deeper ones stay text, nothing is lost, and their cost
# grows with the depth allowed (100 KB of nested links: 0.2 s at 20, 8.5 s at 200).
INLINE_NESTING = 20


@lru_cache(maxsize=2)
def _parser(indented_code: bool):
    from markdown_it import MarkdownIt

    def parser(nesting: int) -> MarkdownIt:
        return MarkdownIt("commonmark", {"maxNesting": nesting}).enable(["table", "strikethrough"])

    blocks, spans = parser(MAX_NESTING), parser(INLINE_NESTING)

    def inline(state) -> None:  # markdown-it's own "inline" rule, run by the parser for spans
        for token in state.tokens:
            if token.type == "inline":
                token.children = []
                spans.inline.parse(token.content, spans, state.env, token.children)

    blocks.core.ruler.at("inline", inline)
    return blocks if indented_code else blocks.disable("code")


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


def markdown_layout(markdown: str, source: Path, indented_code: bool = True) -> tuple[Layout, str | None]:
    """The blocks of a Markdown text, and the title its front matter gives (if any); InputError
    if its blocks nest deeper than what markdown-it reads. ``indented_code=False``: text indented
    by four spaces or more is text, not code (which is left out)."""
    body, title = _front_matter(markdown)
    layout = Layout()
    tokens = _parser(indented_code).parse(body)
    # A block opened at the last level markdown-it reads: what it held, and all that followed, was dropped.
    if any(token.level >= MAX_NESTING - 1 for token in tokens):
        raise InputError(
            f"{source} has lists or quotes nested {MAX_NESTING // 2} levels deep or more; flatten them to add it"
        )
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
        layout, title = markdown_layout(decode_utf8(data, source), source)
        return layout.extracted(source, title)
