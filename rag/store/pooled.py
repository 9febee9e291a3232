"""The pooled vectors of a build, waiting on disk until all have come (they come in any order),
then handed to the vector index a chunk at a time: the index under construction holds the only
copy in memory. Written and read with ``pwrite``/``pread`` rather than a memory map, whose dirty
pages would count in the build's resident memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROWS_AT_ONCE = 16_384  # vectors read back per chunk


class PooledFile:
    def __init__(self, path: Path, rows: int, dimension: int):
        self.path = path
        self.rows = rows
        self.dimension = dimension
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)

    def write(self, row: int, vector: np.ndarray) -> None:
        data = np.ascontiguousarray(vector, dtype="<f4")
        if data.shape != (self.dimension,):
            raise ValueError(f"pooled vectors of {self.dimension} dimensions are required")
        os.pwrite(self._fd, data.tobytes(), row * self.dimension * 4)

    def chunks(self) -> Iterator[np.ndarray]:
        """The vectors in row order, ``ROWS_AT_ONCE`` at a time (a row never written reads as zeros)."""
        row_bytes = self.dimension * 4
        for first in range(0, self.rows, ROWS_AT_ONCE):
            count = min(ROWS_AT_ONCE, self.rows - first)
            data = os.pread(self._fd, count * row_bytes, first * row_bytes).ljust(count * row_bytes, b"\0")
            yield np.frombuffer(data, dtype="<f4").reshape(count, self.dimension)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> PooledFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
