"""How long Ctrl-C takes to stop `rag`, on the default model: SIGINT to the process group (as a
terminal sends it) at several moments of `rag index` (40 copies of the bundled article, about
30 batches), `rag ask`, and `rag serve` (starting up, ready, with an upload being indexed).
Prints, for each, the seconds from the signal to the process's end, and its exit status.

    .venv/bin/python benchmarks/interrupt.py

Needs the default model (built into the cache once); everything else is a temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARTICLE = REPO / "seeds" / "000_8cb13a5d0c7818f1.txt"


def start(project: Path, *argv: str) -> tuple[subprocess.Popen, Path]:
    log = project / "rag.log"
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_INDEX_DIR", "RAG_SEEDS_DIR")}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rag", *argv],
            cwd=project,
            env={**env, "HF_HUB_OFFLINE": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


def stop(process: subprocess.Popen) -> tuple[float, int]:
    started = time.perf_counter()
    os.killpg(process.pid, signal.SIGINT)
    code = process.wait(timeout=120)
    return time.perf_counter() - started, code


def wait_for(log: Path, text: str) -> None:
    while text not in log.read_text():
        time.sleep(0.05)


def upload(base: str) -> None:
    body = (
        '--b\r\nContent-Disposition: form-data; name="file"; filename="long.txt"\r\n\r\n'
        + ARTICLE.read_text(encoding="utf-8") * 20
        + "\r\n--b--\r\n"
    )
    request = urllib.request.Request(
        base + "/api/documents", data=body.encode(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    with contextlib.suppress(OSError):  # the server stopped with it in flight
        urllib.request.urlopen(request, timeout=120).close()


def report(what: str, seconds: float, code: int) -> None:
    print(f"{what:48s} {seconds:5.2f} s  exit {code}", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "seeds").mkdir()
        shutil.copy(ARTICLE, project / "seeds")
        corpus = project / "corpus"
        corpus.mkdir()
        for i in range(40):
            (corpus / f"copy{i}.txt").write_text(f"Copy {i}.\n" + ARTICLE.read_text(encoding="utf-8"), encoding="utf-8")
        for delay in (1.0, 3.0, 6.0):
            process, _ = start(project, "index", "-q", str(corpus))
            time.sleep(delay)
            report(f"rag index, {delay:.0f} s in", *stop(process))
        subprocess.run([sys.executable, "-m", "rag", "index", "-q"], cwd=project, check=True, stdout=subprocess.DEVNULL)
        for delay in (0.3, 0.6, 0.9, 1.2):
            process, _ = start(project, "ask", "Who met Vladimir Putin?")
            time.sleep(delay)
            report(f"rag ask, {delay:.1f} s in", *stop(process))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        for moment in ("starting, 1 s in", "ready", "an upload being indexed"):
            process, log = start(project, "serve", "--port", str(port))
            if moment.startswith("starting"):
                time.sleep(1)
            else:
                wait_for(log, "rag: ready")
            if moment.startswith("an upload"):
                threading.Thread(target=upload, args=(f"http://127.0.0.1:{port}",), daemon=True).start()
                time.sleep(1.5)
            report(f"rag serve, {moment}", *stop(process))


if __name__ == "__main__":
    main()
