"""Train the chit-chat head: a logistic regression over the pooled question vector that tells
"hello", "merci !", "wer bist du?" from questions. Writes rag/data/chitchat-head.json.

    .venv/bin/python training/chitchat.py [--out FILE]     # about a minute on 2 cores

Positives: training/chitchat/chitchat.jsonl (249 greetings, thanks, farewells, "who are you",
"what can you do", acknowledgements in 11 languages). Negatives: every real question of eval/
(the bundled article's sets, SQuAD 2.0 and XQuAD-R in English, German and Spanish) and
training/chitchat/real.jsonl (91 short questions and keywords in 11 languages). Needs
scikit-learn, which sentence-transformers (a dependency) installs. Each text is
embedded alone, as the product embeds a question. Classes are weighted to balance. The report
sets (eval/chitchat_test.jsonl, eval/short_real_test.jsonl) are never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from rag.answer.smalltalk import HEAD_FILE, THRESHOLD  # noqa: E402
from rag.embed.factory import create_embedder  # noqa: E402
from rag.settings import DEFAULT_MODEL, Settings  # noqa: E402

DATA = REPO / "training" / "chitchat"
EVAL = REPO / "eval"
REGULARISATION = 10.0  # sklearn's C; larger fits the 249 positives more closely
NOT_QUESTIONS = {"thanks!"}  # chit-chat lines inside the near-topic set


def lines(path: Path, field: str) -> list[str]:
    return [json.loads(line)[field] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def real_questions() -> list[str]:
    questions = []
    for name in ("dev.jsonl", "dev_offtopic.jsonl", "dev_neartopic.jsonl", "extra.jsonl", "dev_followups.jsonl"):
        questions += [q for q in lines(EVAL / name, "question") if q not in NOT_QUESTIONS]
    for name in ("squad2/train-subset.json", "xquad-r/en.json", "xquad-r/de.json", "xquad-r/es.json"):
        for article in json.loads((EVAL / name).read_text(encoding="utf-8"))["data"]:
            questions += [qa["question"] for p in article["paragraphs"] for qa in p["qas"]]
    return questions + lines(DATA / "real.jsonl", "text")


def train() -> dict:
    from sklearn.linear_model import LogisticRegression

    embedder = create_embedder(Settings(embedding_model=DEFAULT_MODEL, backend="onnx"))
    positives, negatives = lines(DATA / "chitchat.jsonl", "text"), real_questions()
    texts = positives + negatives
    vectors = np.concatenate([embedder.encode_queries([text]).vectors for text in texts])
    labels = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    weights = np.where(labels == 1, len(negatives) / len(positives), 1.0)
    model = LogisticRegression(C=REGULARISATION, max_iter=5000).fit(vectors, labels, sample_weight=weights)
    return {
        "model": DEFAULT_MODEL,
        "backend": "onnx",
        "dimension": int(vectors.shape[1]),
        "threshold": THRESHOLD,
        "bias": round(float(model.intercept_[0]), 6),
        "weights": [round(float(w), 6) for w in model.coef_[0]],
        "trained_on": {
            "chitchat": len(positives),
            "questions": len(negatives),
            "texts_sha256": hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest(),
            "regularisation": REGULARISATION,
            "script": "training/chitchat.py",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HEAD_FILE, help=f"where to write (default {HEAD_FILE})")
    args = parser.parse_args()
    head = train()
    args.out.write_text(json.dumps(head, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {head['trained_on']['chitchat']} chit-chat, {head['trained_on']['questions']} questions")


if __name__ == "__main__":
    main()
