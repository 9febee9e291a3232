"""Measurement harness for token-vector representations (issue 18 item 2).

Installs two patches on OnnxEmbedder._encode_batch:
1. a cache: each batch's (pooled, tokens) output is stored under the sha256 of (prompt, query,
   texts), so a second run of the same build/benchmark embeds nothing and gets bit-identical vectors;
2. a lossy transform of the token vectors ("quantise then dequantise"), chosen by TOKCOMP,
   applied to passages (stored) and, where it changes the space (fewer dimensions, projection),
   to questions too.

    TOKCOMP=int8 .venv/bin/python benchmarks/token_formats/run.py rag eval ...       (see run.py)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("TOKCOMP_CACHE", HERE / "cache"))  # about 0.7 GB for every set here
STATS = {"hits": 0, "misses": 0}


def _key(prompt: str, query: bool, texts: list[str]) -> str:
    h = hashlib.sha256()
    h.update(repr((prompt, query, len(texts))).encode())
    for t in texts:
        h.update(b"\0" + t.encode("utf-8"))
    return h.hexdigest()


def _load(path: Path):
    with np.load(path, allow_pickle=False) as z:
        pooled, joined, lengths = z["pooled"], z["tokens"], z["lengths"]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return pooled, [joined[offsets[i] : offsets[i + 1]] for i in range(len(lengths))]


def _save(path: Path, pooled, tokens) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        pooled=pooled,
        tokens=np.concatenate(tokens) if tokens else np.zeros((0, 768), np.float32),
        lengths=np.array([len(t) for t in tokens], dtype=np.int64),
    )
    os.replace(tmp, path)


# ---------------------------------------------------------------- transforms


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def int8_rows(x: np.ndarray) -> np.ndarray:
    """int8 with one float scale per row (max abs / 127), dequantised."""
    scale = np.maximum(np.abs(x).max(axis=1, keepdims=True), 1e-12) / 127.0
    scale = scale.astype(np.float16).astype(np.float32)  # the scale stored as float16
    return (np.clip(np.rint(x / scale), -127, 127) * scale).astype(np.float32)


def fp16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).astype(np.float32)


def nbits_rows(x: np.ndarray, bits: int) -> np.ndarray:
    levels = 2 ** (bits - 1) - 1
    scale = np.maximum(np.abs(x).max(axis=1, keepdims=True), 1e-12) / levels
    scale = scale.astype(np.float16).astype(np.float32)
    return (np.clip(np.rint(x / scale), -levels, levels) * scale).astype(np.float32)


_PROJECTIONS: dict[str, np.ndarray] = {}


def rotation() -> np.ndarray:
    """The same seeded random rotation as screen.py's Rotated."""
    if "rot" not in _PROJECTIONS:
        q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(768, 768)))
        _PROJECTIONS["rot"] = q.astype(np.float32)
    return _PROJECTIONS["rot"]


def projection(name: str) -> np.ndarray:
    if name not in _PROJECTIONS:
        with np.load(HERE / "projections" / f"{name}.npz", allow_pickle=False) as z:
            _PROJECTIONS[name] = z["matrix"].astype(np.float32)
    return _PROJECTIONS[name]


def transform(name: str, x: np.ndarray, query: bool) -> np.ndarray:
    """Token vectors ``x`` (float32, unit rows) as scoring sees them under representation ``name``.
    Names: fp16 (today), int8, last[-int8], middle[-int8], int4, pca<K>[-int8][-raw] (public
    projection file pub<K>)."""
    if name in ("", "fp16"):
        return x
    parts = name.split("-")
    base, opts = parts[0], set(parts[1:])
    half = x.shape[1] // 2
    if base == "int8":
        return x if query else int8_rows(x)
    if base == "int4":
        if query:
            return x
        if "g32" in opts or "g64" in opts:
            g = 32 if "g32" in opts else 64
            n, d = x.shape
            return nbits_rows(x.reshape(n * d // g, g), 4).reshape(n, d)
        return nbits_rows(x, 4)
    if base == "rot":  # rot-int4 / rot-int8: fixed seeded rotation, then per-row scale
        y = x @ rotation()
        return y if query else nbits_rows(y, 4 if "int4" in opts else 8)
    if base == "last":
        y = unit(x[:, half:])
    elif base == "middle":
        y = unit(x[:, :half])
    elif base.startswith("pca"):
        y = x @ projection("pub" + base[3:])
        if "raw" not in opts:
            y = unit(y)
    else:
        raise ValueError(name)
    if query:
        return y
    return int8_rows(y) if "int8" in opts else fp16(y)


def install(name: str | None = None) -> None:
    from rag.embed import onnx_embedder

    name = os.environ.get("TOKCOMP", "") if name is None else name
    original = onnx_embedder.OnnxEmbedder._encode_batch

    def cached(self, texts, prompt, query):
        path = CACHE / (_key(prompt, query, texts) + ".npz")
        if path.exists():
            STATS["hits"] += 1
            pooled, tokens = _load(path)
        else:
            STATS["misses"] += 1
            pooled, tokens = original(self, texts, prompt, query)
            _save(path, pooled, tokens)
        if name:
            tokens = [transform(name, t, query) for t in tokens]
        return pooled, tokens

    onnx_embedder.OnnxEmbedder._encode_batch = cached
    if name:
        dims = {"last": 384, "middle": 384}
        base = name.split("-")[0]
        dim = dims.get(base) or (int(base[3:]) if base.startswith("pca") else None)
        if dim:
            init = onnx_embedder.OnnxEmbedder.__init__

            def init_dim(self, *a, **k):
                init(self, *a, **k)
                self.token_dimension = dim

            onnx_embedder.OnnxEmbedder.__init__ = init_dim


def install_thresholds() -> None:
    """TOKCOMP_THRESHOLDS=FILE: the engine reads its thresholds from FILE (a re-fit) instead of
    rag/data/answerability.json."""
    path = os.environ.get("TOKCOMP_THRESHOLDS")
    if not path:
        return
    from rag.retrieve import answerability

    answerability.Thresholds.for_model.__func__.__defaults__ = (Path(path),)
