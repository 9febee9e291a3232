"""Exporting a sentence-transformers model once to ONNX int8 for ``OnnxEmbedder``.

The export runs in a child process (``python -m rag.embed.onnx_export``) so the server and the CLI
never load torch themselves. It writes into a temporary folder and renames it into place:

- ``model.onnx``: the encoder from word embeddings to the hidden states of the two layers
  the token vectors use, with every matrix product quantised to int8 per output channel
  (per-tensor int8, or quantising the word embeddings too, lost one top hit on eval/dev.jsonl);
- ``word_embeddings.npy``: the word-embedding table, float32, memory-mapped at run time;
- the tokenizer: ``pieces.model`` and ``pieces-normalizer.bin`` where ``pieces.py`` reproduces the
  model's tokenizer.json (XLM-R's pipeline: the default model), which load in half the time;
  else ``tokenizer.json`` itself;
- ``fast-model.json``: what the embedder needs to know, file sizes and sha256 (checked on load),
  and how the export compared with the torch model.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import staged_folder
from ..errors import ModelError
from . import pieces
from .onnx_model import RECIPE_VERSION, SPEC, file_sha256, onnx_model_dir, read_onnx_model

# The export must agree with the torch model it came from on these texts (pooled cosine).
# int8 gives 0.995-0.998 on sentences, 0.98 on the 512-token repetition; a broken export
# (a layer or the position embeddings wrong) gives far less.
AGREEMENT_TEXTS = [
    "What did Putin demand?",
    "Qu’a exigé Vladimir Poutine lors de la réunion à Saint-Pétersbourg ?",
    "Trump hat Putin aufgefordert, den Krieg zu beenden.",
    "这是一个测试句子。",
    "A very long sentence " * 80,
    # Where tokenizers' pipeline has its own rules: spaces in front, behind and in runs, added tokens.
    "  two  spaces\u00a0 and a tab\tbehind\t ",
    "a <mask> in </s>the text<s>",
]
MIN_AGREEMENT = 0.97

log = logging.getLogger(__name__)


def ensure_onnx_model(model_name: str, cache_dir: Path) -> Path:
    """The exported model's folder, exporting it first (in a child process) if needed."""
    target = onnx_model_dir(model_name, cache_dir)
    if target.exists():
        try:
            read_onnx_model(target)
            return target
        except ModelError as exc:
            log.warning("%s; rebuilding it", exc)
            shutil.rmtree(target, ignore_errors=True)
    log.info("exporting %s to ONNX int8 into %s (once, about a minute)", model_name, target)
    result = subprocess.run(
        [sys.executable, "-m", "rag.embed.onnx_export", model_name, str(cache_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no message"]
        raise ModelError(f"exporting {model_name} to ONNX failed: {lines[-1]}")
    read_onnx_model(target)
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
    """Export ``model_name`` into its ONNX model folder; refuse if it disagrees with torch."""
    import warnings

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .base import prompt_token_counts
    from .onnx_embedder import OnnxEmbedder
    from .torch_embedder import TorchEmbedder

    warnings.filterwarnings("ignore")  # the exporter's tracer warnings are about code paths we do not take
    reference = TorchEmbedder(model_name, cache_dir)
    pooling = reference.model[1] if len(reference.model) > 1 else None
    if getattr(pooling, "pooling_mode", None) != "mean" or not getattr(pooling, "include_prompt", False):
        raise ModelError(f"{model_name} does not use mean pooling; only RAG_BACKEND=torch can run it")
    tokenizer = reference.model.tokenizer
    target = onnx_model_dir(model_name, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The float32 graph is only a step: it is written beside the result, never into it. If another
    # process's export lands first, the rename fails and that one is kept (it may be in use).
    try:
        with (
            tempfile.TemporaryDirectory(prefix=".tmp-float-", dir=target.parent) as scratch,
            staged_folder(target) as built,
        ):
            export_graph(reference, Path(scratch) / "float.onnx")
            quantize_dynamic(
                Path(scratch) / "float.onnx",
                built / "model.onnx",
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
                per_channel=True,
            )
            words = reference.model[0].auto_model.get_input_embeddings().weight.detach().float().numpy()
            np.save(built / "word_embeddings.npy", np.ascontiguousarray(words), allow_pickle=False)
            tokenizer_json = json.loads(tokenizer.backend_tokenizer.to_str())
            files = ["model.onnx", "word_embeddings.npy"]
            if pieces.convertible(tokenizer_json):
                reading = {"pieces": pieces.convert(tokenizer_json, built)}
                files += [pieces.PIECES, pieces.NORMALIZER]
            else:
                reading = {}
                tokenizer.backend_tokenizer.save(str(built / "tokenizer.json"))
                files.append("tokenizer.json")
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
                **reading,
                "files": {
                    name: {"size": (built / name).stat().st_size, "sha256": file_sha256(built / name)} for name in files
                },
            }
            (built / SPEC).write_text(json.dumps(spec, indent=2), encoding="utf-8")
            spec["agreement"] = _agreement(reference, OnnxEmbedder(built))
            (built / SPEC).write_text(json.dumps(spec, indent=2), encoding="utf-8")
            if spec["agreement"]["min_pooled_cosine"] < MIN_AGREEMENT:
                raise ModelError(f"the ONNX export disagrees with the torch model: {spec['agreement']}")
    except OSError:
        if not (target / SPEC).is_file():  # not a concurrent export that won
            raise
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
