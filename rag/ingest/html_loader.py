"""HTML through trafilatura: the page's main content only (navigation, footers, comments and
other boilerplate dropped), taken as Markdown so that headings and paragraphs keep their shape."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .layout import Extracted
from .markdown_loader import markdown_layout


@dataclass(frozen=True)
class HtmlLoader:
    format: str = "html"

    def extract(self, data: bytes, source: Path) -> Extracted:
        import trafilatura

        logging.getLogger("trafilatura").setLevel(logging.ERROR)  # its warnings name no file; ours do
        options = {"output_format": "markdown", "include_comments": False, "include_images": False}
        # Short pages fall under its precision defaults; recall mode keeps them.
        content = trafilatura.extract(data, **options) or trafilatura.extract(data, favor_recall=True, **options)
        if not content or not content.strip():
            raise InputError(f"{source} holds no main text that could be extracted")
        metadata = trafilatura.extract_metadata(data)
        layout, _ = markdown_layout(content)
        return layout.extracted(source, metadata.title if metadata else None)
