"""Time to score one question under each on-disk token format: pread the 64 candidates' rows,
decode to float32, MaxSim (as rag/retrieve/late_interaction.py). Synthetic file of 20,000
sentences of 30-50 tokens each (random unit rows: timing does not depend on values), question of
16 tokens, 64 random candidates per question; median over 400 questions, page cache warm.
Timed as CPU time of the process (user + system) with one BLAS thread, so that other work on a
shared machine does not count: run with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1.

    .venv/bin/python benchmarks/token_formats/timing.py
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before NumPy loads its BLAS

import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SENTENCES = 20_000
Q_TOKENS = 16
QUESTIONS = 400


def unit(x):
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def maxsim(vectors, offsets, q):
    return np.maximum.reduceat(vectors @ q.T, offsets[:-1], axis=0).mean(axis=1)


class Fmt:
    def __init__(self, name, dim, row_bytes, encode, decode, score=None, per_text=False):
        self.name, self.dim, self.row_bytes, self.encode, self.decode = name, dim, row_bytes, encode, decode
        self.score, self.per_text = score, per_text


def f16_encode(x):
    return x.astype("<f2").tobytes()


def f16_decode(data, rows, dim):
    return np.frombuffer(data, dtype="<f2").reshape(rows, dim).astype(np.float32)


def i8_encode(x):
    scale = (np.abs(x).max(axis=1, keepdims=True) / 127).astype("<f2")
    q = np.clip(np.rint(x / scale.astype(np.float32)), -127, 127).astype(np.int8)
    out = np.empty((len(x), x.shape[1] + 2), dtype=np.uint8)
    out[:, :2] = scale.view(np.uint8).reshape(len(x), 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def i8_decode(data, rows, dim):
    raw = np.frombuffer(data, dtype=np.uint8).reshape(rows, dim + 2)
    scale = raw[:, :2].copy().view("<f2").astype(np.float32)
    return raw[:, 2:].view(np.int8).astype(np.float32) * scale


def i8_score(data, rows, dim, q, offsets):
    """Scale applied after the product: (rows, q) multiplications instead of (rows, dim)."""
    raw = np.frombuffer(data, dtype=np.uint8).reshape(rows, dim + 2)
    scale = raw[:, :2].copy().view("<f2").astype(np.float32)
    sims = (raw[:, 2:].view(np.int8).astype(np.float32) @ q.T) * scale
    return np.maximum.reduceat(sims, offsets[:-1], axis=0).mean(axis=1)


def i4g_encode(x, group=32):
    n, d = x.shape
    g = x.reshape(n, d // group, group)
    scale = (np.abs(g).max(axis=2) / 7).astype("<f2")
    q = (np.clip(np.rint(g / scale.astype(np.float32)[:, :, None]), -7, 7) + 8).astype(np.uint8).reshape(n, d)
    packed = (q[:, 0::2] << 4) | q[:, 1::2]
    out = np.empty((n, 2 * d // group + d // 2), dtype=np.uint8)
    out[:, : 2 * d // group] = scale.view(np.uint8).reshape(n, -1)
    out[:, 2 * d // group :] = packed
    return out.tobytes()


def i4g_decode(data, rows, dim, group=32):
    head = 2 * dim // group
    raw = np.frombuffer(data, dtype=np.uint8).reshape(rows, head + dim // 2)
    scale = raw[:, :head].copy().view("<f2").astype(np.float32)
    packed = raw[:, head:]
    q = np.empty((rows, dim), dtype=np.int8)
    q[:, 0::2] = packed >> 4
    q[:, 1::2] = packed & 15
    g = (q.astype(np.float32) - 8).reshape(rows, dim // group, group)
    return (g * scale[:, :, None]).reshape(rows, dim)


def make_residual(dim, bits, centroids=4096):
    rng = np.random.default_rng(0)
    cents = unit(rng.normal(size=(centroids, dim))).astype(np.float32)
    weights = rng.normal(scale=0.05, size=(2**bits, dim)).astype(np.float32)
    per_byte = 8 // bits
    # lookup table: a byte -> its per_byte bucket indices
    table = np.array(
        [[(b >> (bits * (per_byte - 1 - j))) & (2**bits - 1) for j in range(per_byte)] for b in range(256)],
        dtype=np.int64,
    )

    def encode(x):
        n = len(x)
        ids = rng.integers(0, centroids, n).astype("<u2")
        codes = rng.integers(0, 256, (n, dim * bits // 8)).astype(np.uint8)
        out = np.empty((n, 2 + dim * bits // 8), dtype=np.uint8)
        out[:, :2] = ids.view(np.uint8).reshape(n, 2)
        out[:, 2:] = codes
        return out.tobytes()

    cols = np.arange(dim)

    def decode(data, rows, d):
        raw = np.frombuffer(data, dtype=np.uint8).reshape(rows, 2 + dim * bits // 8)
        ids = raw[:, :2].copy().view("<u2")[:, 0]
        buckets = table[raw[:, 2:]].reshape(rows, dim)
        return unit(cents[ids] + weights[buckets, cols])

    return Fmt(f"residual {bits}b {dim}d", dim, 2 + dim * bits // 8, encode, decode)


def formats():
    out = [
        Fmt("fp16 768, per text (today)", 768, 1536, f16_encode, f16_decode, per_text=True),
        Fmt("fp16 768", 768, 1536, f16_encode, f16_decode),
        Fmt("int8 768, per text (format 7)", 768, 770, i8_encode, i8_decode, per_text=True),
        Fmt("int8 768", 768, 770, i8_encode, i8_decode),
        Fmt("int8 768 (scale after product)", 768, 770, i8_encode, i8_decode, i8_score),
        Fmt("fp16 384", 384, 768, f16_encode, f16_decode),
        Fmt("int8 384", 384, 386, i8_encode, i8_decode, i8_score),
    ]
    for k in (256, 128, 96, 64):
        out.append(Fmt(f"fp16 {k}", k, 2 * k, f16_encode, f16_decode))
        out.append(Fmt(f"int8 {k}", k, k + 2, i8_encode, i8_decode, i8_score))
    out.append(Fmt("int4 768, scale per 32", 768, 48 + 384, i4g_encode, i4g_decode))
    out += [make_residual(768, 2), make_residual(128, 2), make_residual(128, 1)]
    return out


def main():
    rng = np.random.default_rng(1)
    lengths = rng.integers(30, 51, SENTENCES)
    spans = np.stack([np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths], axis=1)
    total = int(lengths.sum())
    candidates = [np.sort(rng.choice(SENTENCES, 64, replace=False)) for _ in range(QUESTIONS)]
    print(
        f"{SENTENCES} sentences, {total} token rows; "
        f"64 candidates ({int(np.mean([lengths[c].sum() for c in candidates]))} rows), "
        f"{Q_TOKENS} question tokens; ms per question p50 (from file / held compressed in memory)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats():
            path = Path(tmp) / "tokens"
            with open(path, "wb") as f:
                for s in range(0, total, 65536):
                    n = min(65536, total - s)
                    f.write(fmt.encode(unit(rng.normal(size=(n, fmt.dim)).astype(np.float32))))
            fd = os.open(path, os.O_RDONLY)
            held = np.fromfile(path, dtype=np.uint8)
            q = unit(rng.normal(size=(Q_TOKENS, fmt.dim)).astype(np.float32))
            results = {}
            for source in ("file", "memory"):
                times = []
                for cand in candidates:
                    t = time.process_time()
                    parts = []
                    for r in cand:
                        first, rows = spans[r]
                        if source == "file":
                            parts.append(os.pread(fd, int(rows) * fmt.row_bytes, int(first) * fmt.row_bytes))
                        else:
                            parts.append(held[first * fmt.row_bytes : (first + rows) * fmt.row_bytes])
                    n = int(lengths[cand].sum())
                    offsets = np.concatenate([[0], np.cumsum(lengths[cand])])
                    if fmt.per_text:
                        decoded = [fmt.decode(p, len(p) // fmt.row_bytes, fmt.dim) for p in parts]
                        maxsim(np.concatenate(decoded), offsets, q)
                        times.append(time.process_time() - t)
                        continue
                    data = b"".join(parts) if source == "file" else np.concatenate(parts)
                    if fmt.score:
                        fmt.score(data, n, fmt.dim, q, offsets)
                    else:
                        maxsim(fmt.decode(data, n, fmt.dim), offsets, q)
                    times.append(time.process_time() - t)
                results[source] = 1000 * statistics.median(times)
            os.close(fd)
            print(
                f"{fmt.name:<34} {fmt.row_bytes:>5} B/token  {results['file']:.2f} / {results['memory']:.2f} ms",
                flush=True,
            )
    # the float32-held path today (RAG_TOKEN_MEMORY_MB): gather the rows, no decode
    held = unit(rng.normal(size=(200_000, 768)).astype(np.float32))
    q = unit(rng.normal(size=(Q_TOKENS, 768)).astype(np.float32))
    times = []
    for cand in candidates:
        t = time.process_time()
        parts = [held[(spans[r][0] % 190_000) : (spans[r][0] % 190_000) + spans[r][1]] for r in cand]
        maxsim(np.concatenate(parts), np.concatenate([[0], np.cumsum(lengths[cand])]), q)
        times.append(time.process_time() - t)
    print(
        f"{'float32 768 held (today, small index)':<34} {3072:>5} B/token  - / {1000 * statistics.median(times):.2f} ms"
    )


if __name__ == "__main__":
    main()
