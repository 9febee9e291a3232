"""Uploads and deletes on a real disk that is full to the last byte, and on a read-only one:
a small tmpfs (mounting it needs root; the test suite simulates both without). Prints the status
of each request, and how much free space a delete needs without the reserve.

    sudo .venv/bin/python benchmarks/full_disk.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.store import generations
from tests.conftest import fake_engine, ready_client

TEXT = b"Les abeilles butinent le colza au printemps. Les apiculteurs comptent leurs ruches."


@contextmanager
def mounted(*options: str):
    folder = Path(tempfile.mkdtemp())
    subprocess.run(["mount", *options, str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def upload(client, name, data=TEXT):
    return client.post("/api/documents", files={"file": (name, data, "text/plain")})


def fill(folder: Path, leave: int) -> None:
    """Fill the disk of ``folder`` but ``leave`` bytes."""
    stats = os.statvfs(folder)
    with open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * (stats.f_bavail * stats.f_frsize - leave))


def on_a_full_disk(leave: int) -> tuple[int, int, list[str]]:
    """(upload status, delete status, temporary files left) with ``leave`` bytes free."""
    with mounted("-t", "tmpfs", "-o", "size=8m", "tmpfs") as disk, ready_client(fake_engine(disk / "index")) as client:
        upload(client, "first.txt")
        upload(client, "second.txt", TEXT + b" Deux.")
        fill(disk, leave)
        uploaded = upload(client, "third.txt").status_code
        deleted = client.delete("/api/documents/first").status_code
        return uploaded, deleted, [p.name for p in disk.rglob(".tmp-*")]


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("mounting a tmpfs needs root")
    uploaded, deleted, left = on_a_full_disk(0)
    print(f"full to the last byte: upload {uploaded}, delete {deleted}, temporary files left {left}")
    hold = generations._hold_reserve
    generations._hold_reserve = lambda index_dir: None  # no reserve: how much room does a delete need?
    for kib in (0, 8, 16, 32, 64):
        uploaded, deleted, left = on_a_full_disk(kib * 1024)
        print(f"without the reserve, {kib} KiB free: upload {uploaded}, delete {deleted}, left {left}")
    generations._hold_reserve = hold

    with tempfile.TemporaryDirectory() as built:
        with ready_client(fake_engine(Path(built) / "index")) as client:
            upload(client, "first.txt")
        with mounted("--bind", built) as view:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
            with ready_client(fake_engine(view / "index")) as client:
                question = {"question": "Que butinent les abeilles ?"}
                print(
                    f"read-only: upload {upload(client, 'second.txt', TEXT + b' Deux.').status_code}, "
                    f"delete {client.delete('/api/documents/first').status_code}, "
                    f"ask {client.post('/api/ask', json=question).status_code}"
                )


if __name__ == "__main__":
    main()
