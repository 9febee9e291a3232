"""The background sentences shipped with the package: text on unrelated subjects that a
question the index answers must match less well than the index itself."""

from __future__ import annotations

import hashlib
from importlib import resources


def background_sentences() -> tuple[list[str], str]:
    """The background sentences, and the sha256 of their file."""
    data = (resources.files("rag") / "data" / "background.fr.txt").read_bytes()
    lines = data.decode("utf-8").splitlines()
    sentences = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return sentences, hashlib.sha256(data).hexdigest()
