"""The manifest of one generation: what was built, with what, and each file's checksum."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from ..errors import IndexInvalidError
from ..ingest.document import Document, Sentence

FORMAT = "rag-index"
# 2: token vectors and background; 3: document identity (source and text sha256, format, language);
# 4: headings and pages; 5: token vectors streamed to a raw file with spans, read a text at a time;
# 6: the metadata read by row (each document's rows and length, the documents' words);
# 7: token vectors as int8 with a float16 scale each (tokens.i8, background.npz);
# 8: a CRC-32 of each text's token vectors (token_checksums.npy), checked when they are read
FORMAT_VERSION = 8
MANIFEST = "manifest.json"
FIX = "run `rag index` to rebuild it"


def file_checksum(path: Path) -> dict:
    """The size and sha256 of a file, read in chunks (index files can be larger than memory)."""
    with open(path, "rb") as handle:
        return {"sha256": hashlib.file_digest(handle, "sha256").hexdigest(), "bytes": os.fstat(handle.fileno()).st_size}


def manifest_bytes(
    documents: list[Document], sentences: list[Sentence], info: dict, vector_index: dict, files: dict[str, dict]
) -> bytes:
    """``info`` holds the model, segmentation and background; ``files`` the ``file_checksum`` of
    each of the generation's other files, by name."""
    per_document = Counter(s.document for s in sentences)  # one pass, not one per document
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **info,
        "vector_index": vector_index,
        "counts": {"documents": len(documents), "sentences": len(sentences)},
        "documents": [
            {
                "id": d.id,
                "path": d.path,
                "format": d.format,
                "language": d.language,
                "source_sha256": d.source_sha256,
                "text_sha256": d.text_sha256,
                "characters": len(d.text),
                "sentences": per_document[d.id],
            }
            for d in documents
        ],
        "files": files,
    }
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def read_manifest(generation: Path, names: tuple[str, ...]) -> dict:
    """The generation's manifest, once it is a rag index manifest of this version with the
    fields loading relies on and an entry for each file of ``names``."""
    path = generation / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise IndexInvalidError(f"{path} is missing; {FIX}") from None
    except (OSError, ValueError):
        raise IndexInvalidError(f"{path} is damaged; {FIX}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexInvalidError(f"{path} is not a rag index manifest; {FIX}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexInvalidError(
            f"the index in {generation} has format version {manifest.get('format_version')!r}, "
            f"this rag reads version {FORMAT_VERSION}; {FIX}"
        )
    try:
        for name in names:
            entry = manifest["files"][name]
            if not (isinstance(entry["sha256"], str) and isinstance(entry["bytes"], int)):
                raise TypeError
        int(manifest["counts"]["sentences"]), int(manifest["counts"]["documents"])
        str(manifest["model"]["name"]), int(manifest["model"]["dimension"])
        int(manifest["model"]["token_dimension"]), int(manifest["background"]["sentences"])
        str(manifest["background"]["sha256"]), str(manifest["vector_index"]["backend"])
    except (KeyError, TypeError, ValueError):
        raise IndexInvalidError(f"{path} lacks required fields; {FIX}") from None
    return manifest
