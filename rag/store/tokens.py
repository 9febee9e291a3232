"""Token vectors: one unit-length row per token of each text, for late-interaction scoring.

The index's sentences can hold far more token vectors than memory (about 75 KB a sentence), so
a build writes them to disk as they are embedded (``TokenWriter``: a raw float16 matrix, plus
each text's span of rows) and a server reads the few a question needs with ``pread``
(``TokenFile``); neither holds them all. The background's few are kept in memory
(``TokenVectors``, NumPy ``.npz``). float16 halves the size; scores move by less than 1e-3.
Nothing is read with pickle.
"""

from __future__ import annotations

import io
import os
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

STORED = np.dtype("<f2")  # how token vectors are stored: little-endian float16


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
        buffer = io.BytesIO()
        np.savez(buffer, offsets=self.offsets, vectors=self.vectors.astype(STORED))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, texts: int, dimension: int) -> TokenVectors:
        """The token vectors of ``texts`` texts in ``dimension`` dimensions; ValueError naming what
        is wrong otherwise."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                if sorted(archive.files) != ["offsets", "vectors"]:
                    raise ValueError
                offsets, vectors = archive["offsets"], archive["vectors"]
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            raise ValueError("is not a token vector file") from None
        if not (
            offsets.dtype == np.int64
            and vectors.dtype == STORED
            and offsets.shape == (texts + 1,)
            and vectors.ndim == 2
            and vectors.shape[1] == dimension
            and offsets[0] == 0
            and offsets[-1] == vectors.shape[0]
            and bool(np.all(np.diff(offsets) >= 0))
        ):
            raise ValueError("disagrees with the manifest")
        return cls(offsets=offsets, vectors=vectors.astype(np.float32))


class TokenWriter:
    """Writes the token vectors of ``texts`` texts, in any order, each once, to ``path``;
    ``spans`` (int64, one (first row, rows) per text) says where each text's went."""

    def __init__(self, path: Path, dimension: int, texts: int):
        self.dimension = dimension
        self.spans = np.full((texts, 2), -1, dtype=np.int64)
        self._rows = 0
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()

    def write(self, text: int, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"token vectors of {self.dimension} dimensions are required")
        if self.spans[text, 0] >= 0:
            raise ValueError(f"the token vectors of text {text} were already written")
        self._file.write(np.ascontiguousarray(vectors, dtype=STORED).tobytes())
        self.spans[text] = (self._rows, len(vectors))
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


READ_CHUNK = 1 << 16  # token vectors converted at a time when a whole file is read into memory


class TokenFile:
    """The token vectors ``TokenWriter`` wrote, read one text at a time (memory holds only the
    spans), or all held in memory as float32 when ``open`` was given room for them."""

    def __init__(self, path: Path, spans: np.ndarray, dimension: int):
        self.path = path
        self.spans = spans
        self.dimension = dimension
        self._held: np.ndarray | None = None
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)  # the file stays open while an answer may read it

    @classmethod
    def open(cls, path: Path, spans: np.ndarray, texts: int, dimension: int, memory_bytes: int = 0) -> TokenFile:
        """ValueError naming what is wrong unless every span lies within the file. Converting a
        sentence's float16 rows costs about as much as scoring them, so a file whose vectors
        take at most ``memory_bytes`` as float32 is read and converted once, here."""
        row_bytes = dimension * STORED.itemsize
        size = path.stat().st_size
        if not (
            spans.dtype == np.int64
            and spans.shape == (texts, 2)
            and size % row_bytes == 0
            and bool(np.all(spans >= 0))
            and bool(np.all(spans.sum(axis=1) <= size // row_bytes))
        ):
            raise ValueError("disagrees with its spans or the manifest")
        tokens = cls(path, spans, dimension)
        rows = size // row_bytes
        if rows * dimension * 4 <= memory_bytes:
            held = np.empty((rows, dimension), dtype=np.float32)
            for first in range(0, rows, READ_CHUNK):
                held[first : first + READ_CHUNK] = tokens._read(first, min(READ_CHUNK, rows - first))
            tokens._held = held
        return tokens

    def __len__(self) -> int:
        return len(self.spans)

    def _read(self, first: int, rows: int) -> np.ndarray:
        row_bytes = self.dimension * STORED.itemsize
        data = os.pread(self._fd, rows * row_bytes, first * row_bytes)
        if len(data) != rows * row_bytes:
            raise OSError(f"{self.path} is shorter than when it was loaded")
        return np.frombuffer(data, dtype=STORED).reshape(rows, self.dimension)

    def stored(self, text: int) -> np.ndarray:
        """Text ``text``'s token vectors as stored (float16), to copy into a new generation."""
        first, rows = (int(n) for n in self.spans[text])
        if self._held is not None:  # float16 to float32 and back is exact
            return self._held[first : first + rows].astype(STORED)
        return self._read(first, rows)

    def of(self, text: int) -> np.ndarray:
        first, rows = (int(n) for n in self.spans[text])
        if self._held is not None:
            return self._held[first : first + rows]
        return self._read(first, rows).astype(np.float32)

    @property
    def held(self) -> bool:
        """Whether the vectors are held in memory rather than read from disk."""
        return self._held is not None

    def counts(self, texts: list[int]) -> int:
        """How many token vectors ``texts`` hold together."""
        return int(self.spans[texts, 1].sum()) if texts else 0
