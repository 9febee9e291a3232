"""The fast model: a sentence-transformers model exported once to ONNX for ``OnnxEmbedder``.

The export runs in a child process (``python -m rag.fast_model``) so the server and the CLI
never load torch themselves. It writes into a temporary folder and renames it into place:

- ``model.onnx``: the encoder from word embeddings to the hidden states of the two layers
  the token vectors use, with every matrix product quantised to int8 per output channel
  (per-tensor int8, or quantising the word embeddings too, lost one top hit on eval/dev.jsonl);
- ``word_embeddings.npy``: the word-embedding table, float32, memory-mapped at run time;
- ``tokenizer.json``, and ``fast-model.json``: what the embedder needs to know, file sizes
  and sha256 (checked on load), and how the export compared with the torch model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ModelError
from .offline_model import default_model_dir

RECIPE_VERSION = 1
SPEC = "fast-model.json"
FILES = ("model.onnx", "word_embeddings.npy", "tokenizer.json")
# The export must agree with the torch model it came from on these texts (pooled cosine).
# int8 gives 0.995-0.998 on sentences, 0.98 on the 512-token repetition; a broken export
# (a layer or the position embeddings wrong) gives far less.
AGREEMENT_TEXTS = [
    "What did Putin demand?",
    "Qu’a exigé Vladimir Poutine lors de la réunion à Saint-Pétersbourg ?",
    "Trump hat Putin aufgefordert, den Krieg zu beenden.",
    "这是一个测试句子。",
    "A very long sentence " * 80,
]
MIN_AGREEMENT = 0.97

log = logging.getLogger(__name__)


def fast_model_dir(model_name: str, cache_dir: Path) -> Path:
    if model_name == DEFAULT_MODEL:
        source = default_model_dir(cache_dir).name
    else:  # a hub name or a folder: readable and unique
        digest = hashlib.sha256(model_name.encode()).hexdigest()[:12]
        source = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name).strip("-")[-60:] + "-" + digest
    return cache_dir / "fast" / f"{source}-onnx-int8-r{RECIPE_VERSION}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_fast_model(folder: Path) -> dict:
    """The export's description, after checking every file is the one the export wrote."""
    fix = f"delete {folder} and it is rebuilt on next use"
    try:
        spec = json.loads((folder / SPEC).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"the fast model in {folder} is incomplete ({exc}); {fix}") from None
    if spec.get("recipe") != RECIPE_VERSION:
        raise ModelError(f"the fast model in {folder} was built by another version of rag; {fix}")
    for name, expected in spec["files"].items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != expected["size"]:
            raise ModelError(f"{path} is missing or has the wrong size; {fix}")
        # The table is 384 MB: its size and shape are checked, the small files' contents too.
        if name != "word_embeddings.npy" and file_sha256(path) != expected["sha256"]:
            raise ModelError(f"{path} is damaged (sha256 differs); {fix}")
    table = np.load(folder / "word_embeddings.npy", mmap_mode="r", allow_pickle=False)
    if table.dtype != np.float32 or table.shape[1] != spec["hidden"]:
        raise ModelError(f"{folder / 'word_embeddings.npy'} has the wrong shape or type; {fix}")
    return spec


def ensure_fast_model(model_name: str, cache_dir: Path) -> Path:
    """The exported model's folder, exporting it first (in a child process) if needed."""
    target = fast_model_dir(model_name, cache_dir)
    if (target / SPEC).is_file():
        try:
            read_fast_model(target)
            return target
        except ModelError as exc:
            log.warning("%s; rebuilding it", exc)
            shutil.rmtree(target, ignore_errors=True)
    log.info("exporting %s to ONNX int8 into %s (once, about a minute)", model_name, target)
    result = subprocess.run(
        [sys.executable, "-m", "rag.fast_model", model_name, str(cache_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no message"]
        raise ModelError(f"exporting {model_name} to ONNX failed: {lines[-1]}")
    read_fast_model(target)
    return target


def export_graph(torch_embedder, path: Path) -> None:
    """The torch model's encoder as a float32 ONNX graph at ``path`` (quantised by ``export``)."""
    import torch

    bert = torch_embedder.model[0].auto_model.eval()
    middle, last = torch_embedder.token_layers

    class Encoder(torch.nn.Module):
        """Word embeddings in, the hidden states of the two token layers out."""

        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, inputs_embeds, attention_mask):
            hidden = self.bert(
                inputs_embeds=inputs_embeds, attention_mask=attention_mask, output_hidden_states=True
            ).hidden_states
            return hidden[middle], hidden[last]

    example = (torch.zeros(2, 5, bert.config.hidden_size), torch.tensor([[1] * 5, [1, 1, 1, 0, 0]]))
    dynamic = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        Encoder().eval(),
        example,
        str(path),
        input_names=["inputs_embeds", "attention_mask"],
        output_names=["middle", "last"],
        dynamic_axes={name: dynamic for name in ("inputs_embeds", "attention_mask", "middle", "last")},
        opset_version=17,
        dynamo=False,  # the TorchScript exporter needs no onnxscript
    )


def export(model_name: str, cache_dir: Path) -> Path:
    """Export ``model_name`` into its fast-model folder; refuse if it disagrees with torch."""
    import warnings

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .embedding import OnnxEmbedder, TorchEmbedder, prompt_token_counts

    warnings.filterwarnings("ignore")  # the exporter's tracer warnings are about code paths we do not take
    reference = TorchEmbedder(model_name, cache_dir)
    pooling = reference.model[1] if len(reference.model) > 1 else None
    if getattr(pooling, "pooling_mode", None) != "mean" or not getattr(pooling, "include_prompt", False):
        raise ModelError(f"{model_name} does not use mean pooling; only RAG_BACKEND=torch can run it")
    tokenizer = reference.model.tokenizer
    target = fast_model_dir(model_name, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".building-", dir=target.parent) as tmp:
        built = Path(tmp) / "model"
        built.mkdir()
        export_graph(reference, Path(tmp) / "float.onnx")
        quantize_dynamic(
            Path(tmp) / "float.onnx",
            built / "model.onnx",
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
        )
        words = reference.model[0].auto_model.get_input_embeddings().weight.detach().float().numpy()
        np.save(built / "word_embeddings.npy", np.ascontiguousarray(words), allow_pickle=False)
        tokenizer.backend_tokenizer.save(str(built / "tokenizer.json"))
        spec = {
            "recipe": RECIPE_VERSION,
            "source": model_name,
            "hidden": int(words.shape[1]),
            "token_layers": reference.token_layers,
            "prompts": reference.prompts,
            "prompt_tokens": prompt_token_counts(
                lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]), reference.prompts
            ),
            "special_ids": reference.special_ids,
            "pad_id": int(tokenizer.pad_token_id),
            "max_tokens": int(reference.model.max_seq_length),
            "files": {
                name: {"size": (built / name).stat().st_size, "sha256": file_sha256(built / name)} for name in FILES
            },
        }
        (built / SPEC).write_text(json.dumps(spec, indent=2), encoding="utf-8")
        spec["agreement"] = _agreement(reference, OnnxEmbedder(built))
        (built / SPEC).write_text(json.dumps(spec, indent=2), encoding="utf-8")
        if spec["agreement"]["min_pooled_cosine"] < MIN_AGREEMENT:
            raise ModelError(f"the ONNX export disagrees with the torch model: {spec['agreement']}")
        for file in (built / name for name in (*FILES, SPEC)):
            with file.open("rb") as handle:
                os.fsync(handle.fileno())
        shutil.rmtree(target, ignore_errors=True)
        os.rename(built, target)
    return target


def _agreement(reference, fast) -> dict:
    """How closely the export reproduces the torch model: same tokens, near-equal vectors."""
    theirs = reference.encode_queries(AGREEMENT_TEXTS)
    ours = fast.encode_queries(AGREEMENT_TEXTS)
    if reference.token_ids(AGREEMENT_TEXTS) != fast.token_ids(AGREEMENT_TEXTS):
        raise ModelError("the exported tokenizer reads other token ids than the model's")
    token_cosines = [np.sum(a * b, axis=1).min() for a, b in zip(ours.tokens, theirs.tokens, strict=True)]
    return {
        "min_pooled_cosine": round(float(np.sum(ours.vectors * theirs.vectors, axis=1).min()), 5),
        "min_token_cosine": round(float(min(token_cosines)), 5),
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="rag: %(message)s")
    try:
        print(export(sys.argv[1], Path(sys.argv[2])))
    except ModelError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        sys.exit(1)
