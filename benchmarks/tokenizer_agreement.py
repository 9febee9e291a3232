"""Does the sentencepiece copy of the default model's tokenizer (rag/embed/pieces.py) read the
same ids as tokenizers reading tokenizer.json? Compares every text of SQuAD-format files
(contexts, questions, answers, titles) and JSON-lines question files, and prints the texts
that differ; then how long each tokenizer takes to load (medians of 3 in this process).

    .venv/bin/python benchmarks/tokenizer_agreement.py [--random N] FILE_OR_FOLDER...

Needs the default model's export in the cache (any `rag` command builds it). Development data
(XQuAD, SQuAD 2.0, the training sets) lives outside the repository: pass its folders.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from rag.embed.default_model import reference_tokenizer_path
from rag.embed.onnx_export import ensure_onnx_model
from rag.embed.onnx_model import read_onnx_model
from rag.embed.pieces import PieceTokenizer
from rag.settings import DEFAULT_MODEL, Settings

FIELDS = {"context", "question", "text", "title"}


def texts_in(value, found: list[str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in FIELDS and isinstance(inner, str):
                found.append(inner)
            else:
                texts_in(inner, found)
    elif isinstance(value, list):
        for inner in value:
            texts_in(inner, found)


def read_texts(paths: list[Path]) -> list[str]:
    found: list[str] = []
    files = [f for p in paths for f in (sorted(p.rglob("*.json*")) if p.is_dir() else [p])]
    for file in files:
        if file.suffix == ".jsonl":
            for line in file.read_text(encoding="utf-8").splitlines():
                texts_in(json.loads(line), found)
        else:
            texts_in(json.loads(file.read_text(encoding="utf-8")), found)
    return found


def random_strings(count: int) -> list[str]:
    """Short strings mixing ASCII, combining marks, letters of every plane, spaces of all kinds."""
    rng = random.Random(0)
    ranges = [(0x20, 0x7E), (0x300, 0x36F), (0xA0, 0x2FFF), (0x3000, 0xFFFF), (0x10000, 0x1FFFF)]
    spaces = " \t\n\r\u00a0\u3000\u200b"
    texts = []
    for _ in range(count):
        chars = [
            rng.choice(spaces) if rng.random() < 0.15 else chr(rng.randint(*rng.choice(ranges)))
            for _ in range(rng.randint(1, 12))
        ]
        texts.append("".join(c for c in chars if not 0xD800 <= ord(c) <= 0xDFFF))
    return texts


def seconds(load) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        load()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--random", type=int, default=0, help="also this many random strings of rare characters")
    args = parser.parse_args()
    from tokenizers import Tokenizer

    folder = ensure_onnx_model(DEFAULT_MODEL, Settings.from_env().cache_dir)
    spec = read_onnx_model(folder)
    texts = read_texts(args.paths) + random_strings(args.random)
    reference = Tokenizer.from_file(str(reference_tokenizer_path()))
    reference.enable_truncation(spec["max_tokens"])
    ours = PieceTokenizer(folder, max_tokens=spec["max_tokens"], **spec["pieces"])
    theirs = [encoding.ids for encoding in reference.encode_batch(texts)]
    differ = [(text, a) for text, a, b in zip(texts, ours.encode_batch(texts), theirs, strict=True) if a != b]
    for text, _ in differ[:20]:
        print(f"differs: {text[:120]!r}")
    print(f"{len(differ)} of {len(texts):,} texts ({sum(map(len, texts)):,} characters) read other ids")
    json_load = seconds(lambda: Tokenizer.from_file(str(reference_tokenizer_path())))
    print(f"load, tokenizers (tokenizer.json): {json_load:.3f} s")
    pieces_load = seconds(lambda: PieceTokenizer(folder, max_tokens=spec["max_tokens"], **spec["pieces"]))
    print(f"load, sentencepiece (pieces.model): {pieces_load:.3f} s")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
