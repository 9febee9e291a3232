"""The model's tokenizer as a sentencepiece model: the same ids, loaded in half the time.

``tokenizers`` builds its Unigram trie of 250,002 pieces on every load, 0.6-0.8 s of the 1.2 s
a ``rag ask`` took; sentencepiece loads the same pieces in about 0.3 s. The export converts a
``tokenizer.json`` that has XLM-R's pipeline, which this module reproduces step by step:

1. the added tokens (``<s>``, ``<mask>``...) are matched in the raw text and split out;
2. each part is normalised by the Precompiled character map (sentencepiece's own format),
   grapheme by grapheme as tokenizers does it;
3. runs of spaces become one (the Replace normaliser);
4. Metaspace: a space in front unless there is one, then every space becomes "▁";
5. the Unigram model reads the parts (no piece holds "▁" but at its start, so splitting at
   each "▁" as Metaspace does changes nothing); ``<s>`` and ``</s>`` around, then truncation.

Measured against ``tokenizers`` (``benchmarks/tokenizer_agreement.py``): on 99,356 texts in 15
languages (XQuAD, SQuAD 2.0, the training sets) one differs, by an Arabic word whose two splits
score within 3e-5 of each other (sentencepiece keeps scores as float32); on 100,000 random strings
of rare characters, one, by a character newer than tokenizers' Unicode tables. The export refuses
a conversion that disagrees on its check texts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from pathlib import Path

import regex

PIECES = "pieces.model"
NORMALIZER = "pieces-normalizer.bin"
_SPACES = re.compile(" {2,}")
_GRAPHEMES = regex.compile(r"\X")  # extended grapheme clusters, as tokenizers' unicode-segmentation


def convertible(tokenizer: dict) -> bool:
    """Whether a tokenizer.json has the pipeline this module reproduces."""
    normalizers = (tokenizer.get("normalizer") or {}).get("normalizers") or []
    pre = tokenizer.get("pre_tokenizer") or {}
    model = tokenizer.get("model") or {}
    post = tokenizer.get("post_processor") or {}
    single = [next(iter(step.values()))["id"] for step in post.get("single", [])]
    return (
        model.get("type") == "Unigram"
        and not model.get("byte_fallback")
        and [n.get("type") for n in normalizers] == ["Precompiled", "Replace"]
        and normalizers[1].get("pattern") == {"Regex": " {2,}"}
        and normalizers[1].get("content") == " "
        and pre.get("type") == "Metaspace"
        and pre.get("replacement") == "\u2581"
        and pre.get("prepend_scheme") == "always"
        and post.get("type") == "TemplateProcessing"
        and len(single) == 3
        and single[1] == "A"
        and bool(tokenizer.get("added_tokens"))
        and all(not t["normalized"] and not t["lstrip"] and not t["rstrip"] for t in tokenizer["added_tokens"])
    )


def convert(tokenizer: dict, folder: Path) -> dict:
    """Write the sentencepiece model and the normaliser of a convertible tokenizer.json into
    ``folder``; returns what ``PieceTokenizer`` needs besides them."""
    from sentencepiece import sentencepiece_model_pb2 as proto  # protobuf: only at export time

    model = tokenizer["model"]
    added = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    kinds = {t["id"]: proto.ModelProto.SentencePiece.CONTROL for t in tokenizer["added_tokens"]}
    kinds[model["unk_id"]] = proto.ModelProto.SentencePiece.UNKNOWN
    pieces = proto.ModelProto()
    for index, (piece, score) in enumerate(model["vocab"]):
        entry = pieces.pieces.add()
        entry.piece, entry.score = piece, score
        entry.type = kinds.get(index, proto.ModelProto.SentencePiece.NORMAL)
    pieces.trainer_spec.model_type = proto.TrainerSpec.UNIGRAM
    pieces.trainer_spec.vocab_size = len(model["vocab"])
    pieces.trainer_spec.unk_id = model["unk_id"]
    pieces.trainer_spec.bos_id = pieces.trainer_spec.eos_id = pieces.trainer_spec.pad_id = -1
    # The pieces read text already normalised and escaped (steps 2-4 above, done in Python).
    _plain(pieces.normalizer_spec, "identity")
    normalizer = proto.NormalizerSpec()
    _plain(normalizer, "precompiled")
    normalizer.precompiled_charsmap = base64.b64decode(
        tokenizer["normalizer"]["normalizers"][0]["precompiled_charsmap"]
    )
    (folder / PIECES).write_bytes(pieces.SerializeToString())
    (folder / NORMALIZER).write_bytes(normalizer.SerializeToString())
    post = tokenizer["post_processor"]
    first, _, last = (next(iter(step.values()))["id"] for step in post["single"])
    return {
        "added_tokens": added,
        "bos": post["special_tokens"][first]["ids"][0],
        "eos": post["special_tokens"][last]["ids"][0],
    }


def _plain(spec, name: str) -> None:
    spec.name = name
    spec.add_dummy_prefix = spec.remove_extra_whitespaces = spec.escape_whitespaces = False


class PieceTokenizer:
    """Token ids as the model's tokenizer.json gives them, ``<s>`` and ``</s>`` included,
    truncated to ``max_tokens``."""

    def __init__(self, folder: Path, added_tokens: dict[str, int], max_tokens: int, bos: int, eos: int):
        import sentencepiece

        self._pieces = sentencepiece.SentencePieceProcessor(model_file=str(folder / PIECES))
        self._normalizer = sentencepiece.SentencePieceNormalizer(normalizer_spec=(folder / NORMALIZER).read_bytes())
        self._added = added_tokens
        longest_first = sorted(added_tokens, key=len, reverse=True)
        self._split = re.compile("(" + "|".join(map(re.escape, longest_first)) + ")")
        self._bos, self._eos, self._room = bos, eos, max_tokens - 2

    def encode(self, text: str) -> list[int]:
        ids = []
        for part in self._split.split(text):
            if part in self._added:
                ids.append(self._added[part])
            elif part:
                ids += self._pieces.encode(self._metaspace(part))
        return [self._bos, *ids[: self._room], self._eos]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def _metaspace(self, part: str) -> str:
        text = _SPACES.sub(" ", self._normalize(part))
        if text and not text.startswith(" "):
            text = " " + text
        return text.replace(" ", "\u2581")

    def _normalize(self, part: str) -> str:
        """The character map applied as tokenizers applies it: grapheme by grapheme. Only
        graphemes of several characters can come out otherwise than from sentencepiece."""
        if part.isascii() and "\r\n" not in part:
            return self._normalizer.normalize(part)
        pieces, plain_from = [], 0
        for cluster in _GRAPHEMES.finditer(part):
            if cluster.end() - cluster.start() > 1:
                pieces += [self._normalizer.normalize(part[plain_from : cluster.start()]), self._grapheme(cluster[0])]
                plain_from = cluster.end()
        pieces.append(self._normalizer.normalize(part[plain_from:]))
        return "".join(pieces)

    def _grapheme(self, grapheme: str) -> str:
        """A grapheme of under 6 bytes is replaced whole by the mapping of its shortest start that
        the map holds ("ộ" spelt o + U+0302 + U+0323 becomes "ô"); otherwise each character is
        mapped alone. sentencepiece would keep the longest match and what follows it."""
        normalize = self._normalizer.normalize
        if len(grapheme.encode()) < 6:
            for end in range(1, len(grapheme) + 1):
                mapped = normalize(grapheme[:end])
                # With no shorter start in the map, the map holds grapheme[:end] iff its
                # longest match from the first character is all of it.
                if mapped != grapheme[0] + normalize(grapheme[1:end]):
                    return mapped
        return "".join(map(normalize, grapheme))
