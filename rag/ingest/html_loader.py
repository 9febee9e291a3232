"""HTML through trafilatura: the page's main content only (navigation, footers, comments and
other boilerplate dropped), taken as Markdown so that headings and paragraphs keep their shape."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .layout import Extracted
from .markdown_loader import markdown_layout


def _check_parser_limits(data: bytes, source: Path) -> None:
    """libxml2, which trafilatura parses with, stops reading at elements nested 256 deep or at
    10 MB of text in one run, and drops the rest without a word: refuse such a file instead."""
    from lxml import etree

    parser = etree.HTMLParser(collect_ids=False)
    etree.fromstring(data, parser)
    if parser.error_log.filter_types([etree.ErrorTypes.ERR_RESOURCE_LIMIT]):
        raise InputError(
            f"{source} goes past what the HTML parser reads (elements nested 256 deep, or 10 MB of "
            "text without markup); flatten or split it to add it"
        )


@dataclass(frozen=True)
class HtmlLoader:
    format: str = "html"

    def extract(self, data: bytes, source: Path) -> Extracted:
        import trafilatura

        logging.getLogger("trafilatura").setLevel(logging.ERROR)  # its warnings name no file; ours do
        _check_parser_limits(data, source)
        options = {"output_format": "markdown", "include_comments": False, "include_images": False}
        # Short pages fall under its precision defaults; recall mode keeps them.
        content = trafilatura.extract(data, **options) or trafilatura.extract(data, favor_recall=True, **options)
        if not content or not content.strip():
            raise InputError(f"{source} holds no main text that could be extracted")
        metadata = trafilatura.extract_metadata(data)
        # trafilatura writes code fenced, and indents a list item under empty ones two spaces a
        # level: from four on, CommonMark would read it as code, and its text would be lost.
        layout, _ = markdown_layout(content, source, indented_code=False)
        return layout.extracted(source, metadata.title if metadata else None)
