"""What reading token vectors from disk costs an answer: late-interaction retrieval over the same
index with its token vectors read a sentence at a time from the index file (what rag does when
they take more than RAG_TOKEN_MEMORY_MB as float32), read so without checking each sentence's
CRC-32 (what that check costs), and held in memory (what it does below).

    .venv/bin/python benchmarks/token_reads.py [--rounds 5]

Builds an index of the XQuAD-R English contexts (eval/xquad-r/en.json) in a temporary folder,
embeds the XQuAD-R English questions once, then times `retrieve` for each question with each
store, alternating, and prints the medians and the per-question differences.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.engine import Engine  # noqa: E402
from rag.retrieve.late_interaction import retrieve  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store.index import load_index  # noqa: E402
from rag.store.tokens import TokenFile  # noqa: E402


class Unchecked(TokenFile):
    """The index file read as before checksums: each sentence's rows without their CRC-32 check."""

    def _checked(self, text, first, rows):
        return self._read(first, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = json.loads((REPO / "eval/xquad-r/en.json").read_text(encoding="utf-8"))["data"]
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "corpus"
        corpus.mkdir()
        questions = []
        for number, article in enumerate(data):
            paragraphs = [p["context"] for p in article["paragraphs"]]
            (corpus / f"article-{number}.txt").write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
            questions += [q["question"] for p in article["paragraphs"] for q in p["qas"]]
        engine = Engine(dataclasses.replace(Settings.from_env(), index_dir=Path(work) / "index"))
        engine.build_index([corpus])
        index = load_index(engine.settings.index_dir, token_memory_bytes=0)
        in_memory = load_index(engine.settings.index_dir, token_memory_bytes=1 << 40).tokens
        assert in_memory.held and not index.tokens.held
        checked = index.tokens
        unchecked = Unchecked.open(checked.path, checked.spans, checked.checksums, len(checked), checked.dimension)
        encoded = [engine.embedder.encode_queries([q]) for q in questions]
        times: dict[str, list[float]] = {"file": [], "unchecked": [], "memory": []}
        for _ in range(args.rounds):
            for question in encoded:
                for name, tokens in (("file", checked), ("unchecked", unchecked), ("memory", in_memory)):
                    started = time.perf_counter()
                    retrieve(question.vectors[0], question.tokens[0], index.vectors, tokens)
                    times[name].append(time.perf_counter() - started)
        file_ms, unchecked_ms, memory_ms = (1000 * statistics.median(times[name]) for name in times)
        print(f"{len(index.sentences)} sentences, {len(questions)} questions x {args.rounds} rounds")
        print(
            f"retrieve p50: token vectors read from the file {file_ms:.3f} ms (without their checksums "
            f"{unchecked_ms:.3f} ms), held in memory {memory_ms:.3f} ms"
        )
        print(f"difference p50: {file_ms - memory_ms:+.3f} ms per answer, checksums {file_ms - unchecked_ms:+.3f} ms")


if __name__ == "__main__":
    main()
