"""Token vectors of many texts in one matrix, and their file format (NumPy ``.npz``, float16,
read without pickle)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenVectors:
    """The token vectors of many texts in one matrix: rows ``offsets[i]:offsets[i + 1]`` belong to text i."""

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
        """float16 halves the size; late-interaction scores move by less than 1e-3."""
        buffer = io.BytesIO()
        np.savez(buffer, offsets=self.offsets, vectors=self.vectors.astype(np.float16))
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
            and vectors.dtype == np.float16
            and offsets.shape == (texts + 1,)
            and vectors.ndim == 2
            and vectors.shape[1] == dimension
            and offsets[0] == 0
            and offsets[-1] == vectors.shape[0]
            and bool(np.all(np.diff(offsets) >= 0))
        ):
            raise ValueError("disagrees with the manifest")
        return cls(offsets=offsets, vectors=vectors.astype(np.float32))
