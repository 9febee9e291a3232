"""Token vectors: one unit-length row per token of each text, for late-interaction scoring.

The index's sentences can hold far more token vectors than memory, so a build writes them to
disk as they are embedded (``TokenWriter``: a raw file of encoded rows, plus each text's span of
rows) and a server reads the few a question needs with ``pread`` (``TokenFile``); neither holds
them all. The background's few are kept in memory (``TokenVectors``, NumPy ``.npz``).

Each text's rows also get a CRC-32, checked whenever they are read from disk: the file's sha256
is checked only when it is loaded, and a file changed under a running server would otherwise
give wrong scores without a word. A text's rows are the unit a question reads (one ``pread``),
so nothing more is read to check them; zlib's CRC-32 runs at several GB/s, about 4 us for a
sentence of 30 tokens, and catches any burst of damage up to 32 bits and nearly all others.

Each vector is stored as int8 with one scale (its largest magnitude / 127, as float16): a row of
768 dimensions takes 770 bytes where float16 took 1,536 (about 2.3 GB for 100,000 sentences
instead of 4.6), and decodes faster than float16 did. Measured on the dev sets, XQuAD-R and
SQuAD 2.0 (docs/model-and-index.md, "Why token vectors are int8"), scores move by 2e-4 on average (at most
1.3e-3) and the answers stay within one or two questions of float16's; fewer dimensions,
projections, 4-bit codes and k-means residuals (ColBERTv2) all lost answers. Encoding a decoded
row again gives the same bytes, so a row copied into a new generation keeps its score. Nothing
is read with pickle.
"""

from __future__ import annotations

import contextlib
import io
import os
import weakref
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import IndexDamagedError
from .manifest import FIX

CODE = np.dtype("i1")  # each dimension: a signed byte, -127 to 127
SCALE = np.dtype("<f2")  # each row's scale, little-endian float16, stored before its codes
LEVELS = 127


def row_bytes(dimension: int) -> int:
    """The bytes one token vector of ``dimension`` dimensions takes on disk."""
    return SCALE.itemsize + dimension * CODE.itemsize


def quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows as (codes: int8, scales: float16), each row ~ codes * scale; ValueError unless finite."""
    vectors = np.asarray(vectors, dtype=np.float32)
    largest = np.abs(vectors).max(axis=1, initial=0.0)
    scales = (largest / LEVELS).astype(SCALE)
    if not (np.isfinite(largest).all() and np.isfinite(scales).all()):
        raise ValueError("token vectors must be finite (and below 8e6)")
    wide = scales.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        codes = np.where(wide > 0, np.rint(vectors / wide), 0.0)
    return np.clip(codes, -LEVELS, LEVELS).astype(CODE), scales


def dequantise(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 rows from codes and scales; quantising them again gives the same codes and scales."""
    rows = codes.astype(np.float32)
    rows *= scales.astype(np.float32)[:, None]  # in place: one pass fewer over the rows
    return rows


def encode(vectors: np.ndarray) -> np.ndarray:
    """Rows as stored: each its scale's 2 bytes, then its codes (uint8, rows x ``row_bytes``)."""
    codes, scales = quantise(vectors)
    out = np.empty((len(codes), row_bytes(codes.shape[1])), dtype=np.uint8)
    out[:, : SCALE.itemsize] = scales.view(np.uint8).reshape(len(codes), SCALE.itemsize)
    out[:, SCALE.itemsize :] = codes.view(np.uint8)
    return out


def decode(stored: np.ndarray) -> np.ndarray:
    """float32 rows from rows as stored (uint8, rows x ``row_bytes``)."""
    scales = np.ascontiguousarray(stored[:, : SCALE.itemsize]).view(SCALE)[:, 0]
    return dequantise(stored[:, SCALE.itemsize :].view(CODE), scales)


class Tokens(Protocol):
    """The token vectors of texts 0 to len - 1."""

    def __len__(self) -> int: ...

    def of(self, text: int) -> np.ndarray:
        """Text ``text``'s token vectors, float32, one row per token."""
        ...


@dataclass(frozen=True)
class TokenVectors:
    """The token vectors of a few texts in memory: rows ``offsets[i]:offsets[i + 1]`` belong to text i."""

    offsets: np.ndarray  # int64, one more than there are texts
    vectors: np.ndarray  # float32, one unit-length row per token

    @classmethod
    def join(cls, per_text: list[np.ndarray], dimension: int) -> TokenVectors:
        offsets = np.zeros(len(per_text) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(rows) for rows in per_text])
        vectors = np.concatenate(per_text) if per_text else np.zeros((0, dimension))
        return cls(offsets=offsets, vectors=np.ascontiguousarray(vectors, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, text: int) -> np.ndarray:
        return self.vectors[self.offsets[text] : self.offsets[text + 1]]

    def to_bytes(self) -> bytes:
        codes, scales = quantise(self.vectors)
        buffer = io.BytesIO()
        np.savez(buffer, offsets=self.offsets, codes=codes, scales=scales)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, texts: int, dimension: int) -> TokenVectors:
        """The token vectors of ``texts`` texts in ``dimension`` dimensions; ValueError naming what
        is wrong otherwise."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                if sorted(archive.files) != ["codes", "offsets", "scales"]:
                    raise ValueError
                offsets, codes, scales = archive["offsets"], archive["codes"], archive["scales"]
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            raise ValueError("is not a token vector file") from None
        if not (
            offsets.dtype == np.int64
            and codes.dtype == CODE
            and scales.dtype == SCALE
            and offsets.shape == (texts + 1,)
            and codes.ndim == 2
            and codes.shape[1] == dimension
            and scales.shape == (codes.shape[0],)
            and offsets[0] == 0
            and offsets[-1] == codes.shape[0]
            and bool(np.all(np.diff(offsets) >= 0))
        ):
            raise ValueError("disagrees with the manifest")
        if not (bool(np.all(np.isfinite(scales) & (scales >= 0))) and bool(np.all(codes >= -LEVELS))):
            raise ValueError("holds values no build writes")
        return cls(offsets=offsets, vectors=dequantise(codes, scales))


class TokenWriter:
    """Writes the token vectors of ``texts`` texts, in any order, each once, to ``path``;
    ``spans`` (int64, one (first row, rows) per text) says where each text's went, and
    ``checksums`` (uint32) the CRC-32 of each text's rows as stored."""

    def __init__(self, path: Path, dimension: int, texts: int):
        self.dimension = dimension
        self.spans = np.full((texts, 2), -1, dtype=np.int64)
        self.checksums = np.zeros(texts, dtype=np.uint32)
        self._rows = 0
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()

    def write(self, text: int, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"token vectors of {self.dimension} dimensions are required")
        if self.spans[text, 0] >= 0:
            raise ValueError(f"the token vectors of text {text} were already written")
        stored = encode(vectors).tobytes()
        self._file.write(stored)
        self.spans[text] = (self._rows, len(vectors))
        self.checksums[text] = zlib.crc32(stored)
        self._rows += len(vectors)

    def close(self) -> None:
        self._file.close()
        if (self.spans[:, 0] < 0).any():
            raise ValueError(f"no token vectors were written for text {int(np.argmax(self.spans[:, 0] < 0))}")

    def __enter__(self) -> TokenWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._file.close()


READ_CHUNK = 1 << 16  # token vectors decoded at a time when a whole file is read into memory


class TokenFile:
    """The token vectors ``TokenWriter`` wrote, read one text at a time (memory holds only the
    spans), or all held in memory as float32 when ``open`` was given room for them. A text read
    from disk is checked against its checksum: IndexDamagedError if the file changed since."""

    def __init__(self, path: Path, spans: np.ndarray, checksums: np.ndarray, dimension: int):
        self.path = path
        self.spans = spans
        self.checksums = checksums
        self.dimension = dimension
        self._held: np.ndarray | None = None
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)  # the file stays open while an answer may read it
        self._rows = os.fstat(self._fd).st_size // row_bytes(dimension)

    @classmethod
    def open(
        cls, path: Path, spans: np.ndarray, checksums: np.ndarray, texts: int, dimension: int, memory_bytes: int = 0
    ) -> TokenFile:
        """ValueError naming what is wrong unless every span lies within the file. Reading and
        decoding a sentence's rows costs a good part of scoring them, so a file whose vectors
        take at most ``memory_bytes`` as float32 is read and decoded once, here (the caller has
        checked the file's sha256, so those rows need no further checks)."""
        stride = row_bytes(dimension)
        size = path.stat().st_size
        if not (
            spans.dtype == np.int64
            and spans.shape == (texts, 2)
            and checksums.dtype == np.uint32
            and checksums.shape == (texts,)
            and size % stride == 0
            and bool(np.all(spans >= 0))
            and bool(np.all(spans.sum(axis=1) <= size // stride))
        ):
            raise ValueError("disagrees with its spans or the manifest")
        tokens = cls(path, spans, checksums, dimension)
        rows = size // stride
        if rows * dimension * 4 <= memory_bytes:
            held = np.empty((rows, dimension), dtype=np.float32)
            for first in range(0, rows, READ_CHUNK):
                held[first : first + READ_CHUNK] = decode(tokens._read(first, min(READ_CHUNK, rows - first)))
            tokens._held = held
        return tokens

    def __len__(self) -> int:
        return len(self.spans)

    def _read(self, first: int, rows: int) -> np.ndarray:
        """Rows as stored (uint8, rows x ``row_bytes``)."""
        stride = row_bytes(self.dimension)
        data = os.pread(self._fd, rows * stride, first * stride)
        if len(data) != rows * stride:
            raise OSError(f"{self.path} is shorter than when it was loaded")
        return np.frombuffer(data, dtype=np.uint8).reshape(rows, stride)

    def stored(self, text: int) -> np.ndarray:
        """Text ``text``'s token vectors to copy into a new generation: written again, they are
        stored as they are here, byte for byte."""
        return self.of(text)

    def of(self, text: int) -> np.ndarray:
        first, rows = (int(n) for n in self.spans[text])
        if self._held is not None:
            return self._held[first : first + rows]
        return decode(self._checked(text, first, rows))

    def _checked(self, text: int, first: int, rows: int) -> np.ndarray:
        """Text ``text``'s rows as stored, once they match their checksum."""
        stride = row_bytes(self.dimension)
        data = b""
        if 0 <= first <= first + rows <= self._rows:  # the spans are read from disk too
            with contextlib.suppress(OSError):  # unreadable: as damaged as changed
                data = os.pread(self._fd, rows * stride, first * stride)
        if len(data) != rows * stride or zlib.crc32(data) != self.checksums[text]:
            generation = self.path.parent.name
            raise IndexDamagedError(
                f"the index in use is damaged: {generation}/{self.path.name} changed after it was loaded; {FIX}",
                generation,
            )
        return np.frombuffer(data, dtype=np.uint8).reshape(rows, stride)

    @property
    def held(self) -> bool:
        """Whether the vectors are held in memory rather than read from disk."""
        return self._held is not None

    def counts(self, texts: list[int]) -> int:
        """How many token vectors ``texts`` hold together."""
        return int(self.spans[texts, 1].sum()) if texts else 0
