"""The ONNX export on disk (written by ``onnx_export.py``): where it lives, and reading its
description after checking every file is the one the export wrote."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..settings import DEFAULT_MODEL
from .default_model import default_model_dir

RECIPE_VERSION = 2  # 2: the tokenizer as a sentencepiece model (pieces.py)
# "fast" in these names is the export's old name, kept so that exports already in caches are reused.
SPEC = "fast-model.json"


def onnx_model_dir(model_name: str, cache_dir: Path) -> Path:
    if model_name == DEFAULT_MODEL:
        source = default_model_dir(cache_dir).name
    else:  # a hub name or a folder: readable and unique
        digest = hashlib.sha256(model_name.encode()).hexdigest()[:12]
        source = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name).strip("-")[-60:] + "-" + digest
    return cache_dir / "fast" / f"{source}-onnx-int8-r{RECIPE_VERSION}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_onnx_model(folder: Path) -> dict:
    """The export's description, after checking every file is the one the export wrote."""
    fix = f"delete {folder} and it is rebuilt on next use"
    try:
        spec = json.loads((folder / SPEC).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"the fast model in {folder} is incomplete ({exc}); {fix}") from None
    if spec.get("recipe") != RECIPE_VERSION:
        raise ModelError(f"the fast model in {folder} was built by another version of rag; {fix}")
    for name, expected in spec["files"].items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != expected["size"]:
            raise ModelError(f"{path} is missing or has the wrong size; {fix}")
        # The table is 384 MB: its size and shape are checked, the small files' contents too.
        if name != "word_embeddings.npy" and file_sha256(path) != expected["sha256"]:
            raise ModelError(f"{path} is damaged (sha256 differs); {fix}")
    table = np.load(folder / "word_embeddings.npy", mmap_mode="r", allow_pickle=False)
    if table.dtype != np.float32 or table.shape[1] != spec["hidden"]:
        raise ModelError(f"{folder / 'word_embeddings.npy'} has the wrong shape or type; {fix}")
    return spec
