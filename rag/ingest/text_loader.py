"""Plain text: UTF-8 kept exactly as decoded, nothing stripped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .layout import Extracted, short_title


def decode_utf8(data: bytes, source: Path) -> str:
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not text
    except UnicodeDecodeError as exc:
        raise InputError(f"{source} is not UTF-8 text (byte {exc.start} cannot be decoded)") from exc
    if not text.strip():
        raise InputError(f"{source} is empty")
    return text


@dataclass(frozen=True)
class PlainTextLoader:
    """The title is the first line with text."""

    format: str = "text"

    def extract(self, data: bytes, source: Path) -> Extracted:
        text = decode_utf8(data, source)
        title = next(line for line in text.splitlines() if line.strip()).strip()
        return Extracted(text=text, title=short_title(title))
