"""First screen of token-vector representations, on the question sets of
benchmarks/answerability.py and training/answerability.py, without the answerer's extras.

    .venv/bin/python benchmarks/token_formats/screen.py [--reps fp16 int8 ...] [--out FILE]

Indexes (built once, embeddings cached by harness.py): bundled article; XQuAD-R de/es/en first
20 articles (report: English questions, answerable <20, out of corpus >=20); XQuAD-R en all 24
(fit other-language threshold: de+es questions every 4th); SQuAD 2.0 10 articles (fit
same-language on even articles; report odd: answerable, paragraph removed, article removed,
adversarial).

Candidates: exact inner-product search over the pooled vectors (as a flat index), top 64, the
removed rows masked. Score: MaxSim (mean over question tokens of the best cosine) computed on
the representation's decoded document tokens and its question tokens. Decision: best >=
threshold(same) with same = the engine's language probability; thresholds as shipped
("before refit") and re-fitted like training/answerability.py on the fitting sets ("after").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "training"))

import harness  # noqa: E402
import numpy as np  # noqa: E402

harness.install("")  # cache only: raw float32 vectors
harness.install_thresholds()  # TOKCOMP_THRESHOLDS=FILE: "before re-fit" uses FILE's thresholds

from answerability import fitting_questions  # noqa: E402 - training/answerability.py

from rag.engine import Engine  # noqa: E402
from rag.evaluation import article_id, read_questions, read_squad, write_articles  # noqa: E402
from rag.retrieve.answerability import Thresholds  # noqa: E402
from rag.settings import DEFAULT_MODEL, Settings  # noqa: E402

EVAL = REPO / "eval"
WORK = HERE / "indexes"
ANSWERED = 0.92
PER_ARTICLE_REPORT = 40
CANDIDATES = 64


@dataclasses.dataclass
class Corpus:
    name: str
    sentences: list  # Sentence
    texts: list[str]
    pooled: np.ndarray  # (n, 384)
    tokens: np.ndarray  # (rows, 768) float32, as the model gives them
    offsets: np.ndarray
    index: object


@dataclasses.dataclass
class Case:
    corpus: str
    dataset: str  # "fit-same", "fit-other", or a report row name
    question: str
    kind: str
    right: object = None  # (document, [(s, e)]) or [substrings]
    removed: tuple | None = None


def build_corpus(engine: Engine, name: str, texts: list[str]) -> Corpus:
    folder = WORK / name
    settings = dataclasses.replace(engine.settings, index_dir=folder / "index")
    e = Engine(settings, embedder=engine.embedder)
    if not (folder / "index" / "CURRENT").exists():
        folder.mkdir(parents=True, exist_ok=True)
        docs = folder / "docs"
        if not docs.exists():
            write_articles(texts, docs)
        e.build_index([docs])
    index = e.load_index()
    n = index.vectors.count()
    pooled = index.vectors.reconstruct(np.arange(n, dtype=np.int64))
    # The model's vectors, not the index's (which are stored lossy): the same batches as the build, so
    # the harness's cache gives the build's vectors bit for bit.
    per = engine.embedder.encode_passages([index.sentence_text(s) for s in index.sentences]).tokens
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in per])
    sentences = list(index.sentences)
    return Corpus(
        name, sentences, [index.sentence_text(s) for s in sentences], pooled, np.concatenate(per), offsets, index
    )


def cases_and_corpora(engine: Engine):
    corpora, cases = {}, []
    article = next((REPO / "seeds").glob("*.txt")).read_text(encoding="utf-8")
    corpora["bundled"] = build_corpus(engine, "bundled", [article])
    for name in ("dev.jsonl", "dev_offtopic.jsonl", "extra.jsonl", "dev_neartopic.jsonl"):
        for q in read_questions(EVAL / name):
            if q.expect:
                cases.append(Case("bundled", "bundled (fr)", q.text, "answerable", q.expect))
            else:
                kind = "near-topic" if name == "dev_neartopic.jsonl" else "off-topic"
                cases.append(Case("bundled", "bundled (fr)", q.text, kind))
    for q in read_questions(EVAL / "dev.jsonl"):
        cases.append(Case("bundled", "dev.jsonl", q.text, "answerable", q.expect))
    for q in read_questions(EVAL / "dev_offtopic.jsonl"):
        cases.append(Case("bundled", "dev.jsonl", q.text, "off-topic"))
    for q in read_questions(EVAL / "dev_neartopic.jsonl"):
        cases.append(Case("bundled", "dev.jsonl", q.text, "near-topic"))
    english = {q["id"]: q["question"] for a in read_squad(EVAL / "xquad-r" / "en.json") for q in a.questions}
    for lang in ("de", "es", "en"):
        articles = read_squad(EVAL / "xquad-r" / f"{lang}.json")
        corpora[f"xquad-{lang}"] = build_corpus(engine, f"xquad-{lang}", [a.text for a in articles[:20]])
        for number, a in enumerate(articles):
            for q in a.questions:
                if number < 20:
                    cases.append(
                        Case(
                            f"xquad-{lang}",
                            f"XQuAD-R en→{lang}",
                            english[q["id"]],
                            "answerable",
                            (article_id(number), q["answers"]),
                        )
                    )
                else:
                    cases.append(Case(f"xquad-{lang}", f"XQuAD-R en→{lang}", english[q["id"]], "out-of-corpus"))
    en_all = read_squad(EVAL / "xquad-r" / "en.json")
    corpora["xquad-en-all"] = build_corpus(engine, "xquad-en-all", [a.text for a in en_all])
    squad = read_squad(EVAL / "squad2" / "train-subset.json")
    same, other = fitting_questions(squad)  # exactly those training/answerability.py fits on
    cases += [Case("xquad-en-all", "fit-other", q, "fit") for q in other]
    corpora["squad"] = build_corpus(engine, "squad", [a.text for a in squad])
    cases += [Case("squad", "fit-same", q, "fit") for q in same]
    for number, a in enumerate(squad):
        answerable = [q for q in a.questions if not q["impossible"]]
        if number % 2 == 0:  # the fitting articles
            continue
        doc = article_id(number)
        for q in answerable[:: max(1, len(answerable) // PER_ARTICLE_REPORT)][:PER_ARTICLE_REPORT]:
            cases.append(Case("squad", "SQuAD 2.0 odd (en)", q["question"], "answerable", (doc, q["answers"])))
            cases.append(
                Case(
                    "squad",
                    "SQuAD 2.0 odd (en)",
                    q["question"],
                    "paragraph-removed",
                    removed=(doc, *a.paragraphs[q["paragraph"]]),
                )
            )
            cases.append(
                Case("squad", "SQuAD 2.0 odd (en)", q["question"], "out-of-corpus", removed=(doc, 0, len(a.text)))
            )
        cases += [
            Case("squad", "SQuAD 2.0 odd (en)", q["question"], "adversarial") for q in a.questions if q["impossible"]
        ]
    return corpora, cases


# ------------------------------------------------------------ representations


def unit(x):
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def fp16(x):
    return x.astype(np.float16).astype(np.float32)


def qrows(x, bits):
    levels = 2 ** (bits - 1) - 1
    scale = (np.maximum(np.abs(x).max(axis=1, keepdims=True), 1e-12) / levels).astype(np.float16).astype(np.float32)
    return (np.clip(np.rint(x / scale), -levels, levels) * scale).astype(np.float32)


def second_moment_basis(x, k):
    """Top-k eigenvectors of x^T x (uncentred: keeps dot products), (d, k)."""
    m = (x.T.astype(np.float64) @ x.astype(np.float64)) / len(x)
    w, v = np.linalg.eigh(m)
    order = np.argsort(w)[::-1][:k]
    return v[:, order].astype(np.float32), float(w[order].sum() / w.sum())


def sample(x, n, seed=0):
    if len(x) <= n:
        return x
    return x[np.random.default_rng(seed).choice(len(x), n, replace=False)]


class Rep:
    """A representation: ``docs(corpus_tokens)`` -> decoded float32 rows; ``query(q)``."""

    name = "fp16"
    bytes_per_token = 1536.0
    corpus_bytes = 0  # fixed per index (matrix, centroids)

    def fit(self, corpus_tokens, background):  # per corpus
        pass

    def docs(self, x):
        return fp16(x)

    def query(self, q):
        return q


class Int(Rep):
    def __init__(self, bits):
        self.bits = bits
        self.name = f"int{bits}"
        self.bytes_per_token = 768 * bits / 8 + 2

    def docs(self, x):
        return qrows(x, self.bits)


class Half(Rep):
    def __init__(self, which, bits=16):
        self.which, self.bits = which, bits
        self.name = f"{which}-{'fp16' if bits == 16 else f'int{bits}'}"
        self.bytes_per_token = 384 * 2 if bits == 16 else 384 * bits / 8 + 2

    def _cut(self, x):
        return unit(x[:, :384] if self.which == "middle" else x[:, 384:])

    def docs(self, x):
        y = self._cut(x)
        return fp16(y) if self.bits == 16 else qrows(y, self.bits)

    def query(self, q):
        return self._cut(q)


PUBLIC: dict[int, np.ndarray] = {}


class Proj(Rep):
    """Projection onto the top-k eigenvectors of the token vectors' second moment, renormalised
    (``norm``) or not; fitted per corpus on its own token vectors, or once on public text."""

    def __init__(self, k, where, bits=16, norm=True):
        self.k, self.where, self.bits, self.norm = k, where, bits, norm
        self.name = f"pca{k}-{where}-{'fp16' if bits == 16 else f'int{bits}'}{'' if norm else '-raw'}"
        self.bytes_per_token = 2 * k if bits == 16 else k * bits / 8 + 2
        self.corpus_bytes = 768 * k * 4 if where == "corpus" else 0
        self.matrix = None

    def fit(self, corpus_tokens, background):
        if self.where == "public":
            self.matrix = PUBLIC[self.k]
        else:
            self.matrix, self.kept = second_moment_basis(sample(corpus_tokens, 200_000), self.k)

    def _p(self, x):
        y = x @ self.matrix
        return unit(y) if self.norm else y.astype(np.float32)

    def docs(self, x):
        y = self._p(x)
        return fp16(y) if self.bits == 16 else qrows(y, self.bits)

    def query(self, q):
        return self._p(q)


class Residual(Rep):
    """ColBERTv2-style: k-means centroids fitted on the corpus's token vectors (after an optional
    per-corpus or public projection), each token = nearest centroid id (2 bytes) + ``bits`` per
    dimension of residual, bucketed by per-dimension quantiles; decoded and renormalised."""

    def __init__(self, bits, k=None, where="corpus"):
        self.bits, self.k, self.where = bits, k, where
        d = k or 768
        self.d = d
        self.name = f"residual{bits}b" + (f"-pca{k}-{where}" if k else "")
        self.bytes_per_token = 2 + d * bits / 8

    def fit(self, corpus_tokens, background):
        import faiss

        x = corpus_tokens
        if self.k:
            self.proj = PUBLIC[self.k] if self.where == "public" else second_moment_basis(sample(x, 200_000), self.k)[0]
            x = unit(x @ self.proj)
        n = len(x)
        c = 2 ** math.floor(math.log2(16 * math.sqrt(n)))
        c = min(c, max(16, n // 8))
        train = sample(x, min(n, 32_768))
        km = faiss.Kmeans(x.shape[1], c, niter=10, seed=1, spherical=True, verbose=False)
        km.train(np.ascontiguousarray(train))
        self.centroids = km.centroids.astype(np.float16).astype(np.float32)
        self.index = faiss.IndexFlatIP(x.shape[1])
        self.index.add(self.centroids)
        _, ids = self.index.search(np.ascontiguousarray(train), 1)
        res = train - self.centroids[ids[:, 0]]
        nb = 2**self.bits
        self.cutoffs = np.quantile(res, np.arange(1, nb) / nb, axis=0).astype(np.float32)  # (nb-1, d)
        self.weights = np.quantile(res, (np.arange(nb) + 0.5) / nb, axis=0).astype(np.float16).astype(np.float32)
        self.corpus_bytes = c * x.shape[1] * 2 + self.weights.size * 2
        self.c = c

    def docs(self, x):
        if self.k:
            x = unit(x @ self.proj)
        out = np.empty_like(x)
        for s in range(0, len(x), 65536):
            part = np.ascontiguousarray(x[s : s + 65536])
            _, ids = self.index.search(part, 1)
            cent = self.centroids[ids[:, 0]]
            res = part - cent
            buckets = (res[None, :, :] > self.cutoffs[:, None, :]).sum(axis=0)  # (n, d) in 0..nb-1
            dec = cent + self.weights[buckets, np.arange(x.shape[1])]
            out[s : s + 65536] = unit(dec)
        return out

    def query(self, q):
        return unit(q @ self.proj) if self.k else q


class IntGroup(Rep):
    """``bits`` per dimension with one float16 scale per ``group`` dimensions."""

    def __init__(self, bits, group):
        self.bits, self.group = bits, group
        self.name = f"int{bits}-g{group}"
        self.bytes_per_token = 768 * bits / 8 + 2 * 768 / group

    def docs(self, x):
        n, d = x.shape
        return qrows(x.reshape(n * d // self.group, self.group), self.bits).reshape(n, d)


class Rotated(Rep):
    """A fixed random rotation (seeded; fitted on nothing), then ``bits`` per dimension with one
    scale per row: spreads the few large components so the scale wastes fewer levels."""

    def __init__(self, bits):
        self.bits = bits
        self.name = f"rot-int{bits}"
        self.bytes_per_token = 768 * bits / 8 + 2
        q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(768, 768)))
        self.rotation = q.astype(np.float32)

    def docs(self, x):
        return qrows(x @ self.rotation, self.bits)

    def query(self, q):
        return q @ self.rotation


def fit_public(engine: Engine, ks):
    """Public projection: SQuAD 2.0 even (fitting) articles, XQuAD-R articles 20-23 (never indexed
    in the reports) in en/de/es, and the background sentences. Questions are never read."""
    from rag.retrieve.background import background_sentences

    squad = read_squad(EVAL / "squad2" / "train-subset.json")
    texts = [a.text for a in squad[::2]]
    for lang in ("en", "de", "es"):
        texts += [a.text for a in read_squad(EVAL / "xquad-r" / f"{lang}.json")[20:]]
    c = build_corpus(engine, "public-fit", texts)
    bg = np.concatenate(engine.embedder.encode_passages(background_sentences()[0]).tokens)
    x = np.concatenate([c.tokens, bg])
    out = {}
    for k in ks:
        m, kept = second_moment_basis(sample(x, 200_000), k)
        PUBLIC[k] = m
        out[k] = kept
        (HERE / "projections").mkdir(exist_ok=True)
        np.savez(HERE / "projections" / f"pub{k}.npz", matrix=m)
    print(f"public fit: {len(x)} token vectors; energy kept {out}", flush=True)
    return out


def all_reps():
    reps = [
        Residual(4),
        IntGroup(4, 32),
        IntGroup(4, 64),
        Rotated(4),
        Rotated(8),
        Proj(384, "corpus", bits=8),
        Proj(384, "public", bits=8),
        Proj(384, "public"),
        IntGroup(6, 768),
    ]
    reps += [Rep(), Int(8), Int(4), Half("last"), Half("last", 8), Half("middle"), Half("middle", 8)]
    for k in (256, 128, 96, 64):
        for where in ("corpus", "public"):
            reps.append(Proj(k, where))
            reps.append(Proj(k, where, bits=8))
    reps.append(Proj(128, "public", norm=False))
    reps += [
        Residual(2),
        Residual(1),
        Residual(2, 128, "public"),
        Residual(1, 128, "public"),
        Residual(2, 128, "corpus"),
        Residual(2, 64, "public"),
    ]
    return reps


# ------------------------------------------------------------ evaluation


def prepare(engine, corpora, cases):
    """Per case: question tokens (raw), candidate rows, language probability inputs."""
    from rag.ingest.language import probabilities, sure_language

    encoded = {}
    for case in cases:
        if case.question not in encoded:
            e = engine.embedder.encode_queries([case.question])
            encoded[case.question] = (e.vectors[0], e.tokens[0])
    prepared = []
    for case in cases:
        c = corpora[case.corpus]
        vec, toks = encoded[case.question]
        sims = c.pooled @ vec
        if case.removed:
            doc, s, e = case.removed
            mask = np.array([x.document == doc and s <= x.start < e for x in c.sentences])
            sims = np.where(mask, -np.inf, sims)
        k = min(CANDIDATES, int(np.isfinite(sims).sum()))
        cand = np.sort(np.argpartition(-sims, k - 1)[:k]) if k else np.zeros(0, np.int64)
        found = probabilities(case.question)
        lengths = np.array([c.offsets[r + 1] - c.offsets[r] for r in cand], dtype=np.int64)
        rows = np.concatenate([np.arange(c.offsets[r], c.offsets[r + 1]) for r in cand]) if k else None
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if k else None
        prepared.append((case, toks, cand, found, sure_language(found) is not None, rows, lengths, starts))
    return prepared


def same_prob(c: Corpus, row: int, found, sure) -> float:
    language = c.index.listed[c.sentences[row].document].language
    if language is None or not sure:
        return 0.5
    return found.get(language, 0.0)


def is_right(case: Case, c: Corpus, row: int) -> bool:
    if case.kind != "answerable":
        return False
    if isinstance(case.right, list):
        return any(e in c.texts[row] for e in case.right)
    doc, spans = case.right
    s = c.sentences[row]
    return s.document == doc and any(a < s.end and s.start < b for a, b in spans)


def evaluate(rep: Rep, corpora, prepared, background):
    decoded = {}
    for name, c in corpora.items():
        rep.fit(c.tokens, background)
        decoded[name] = (rep.docs(c.tokens), rep)
        if isinstance(rep, (Proj, Residual)):  # fitted per corpus: keep a copy of the fitted state
            decoded[name] = (decoded[name][0], _freeze(rep))
    results = []
    for case, toks, cand, found, sure, rows, lengths, starts in prepared:
        c = corpora[case.corpus]
        docs, fitted = decoded[case.corpus]
        q = fitted.query(toks)
        if len(cand) == 0:
            results.append((case, -1.0, None, 0.5))
            continue
        sims = docs[rows] @ q.T
        present = lengths > 0
        best = np.full(len(cand), -1.0, dtype=np.float32)
        best[present] = np.maximum.reduceat(sims, starts[present], axis=0).mean(axis=1)
        top = int(cand[int(np.argmax(best))])  # ties: the lowest row (cand is sorted)
        results.append((case, float(best.max()), top, same_prob(c, top, found, sure)))
    return results


def _freeze(rep):
    import copy

    return copy.copy(rep)


def summarise(results, thresholds: Thresholds):
    rows = {}
    for case, best, top, same in results:
        if case.dataset.startswith("fit"):
            continue
        r = rows.setdefault(case.dataset, {"n": 0, "hit1": 0, "answered": 0, "right": 0, "kinds": {}})
        answered = top is not None and best >= thresholds.threshold(same)
        if case.kind == "answerable":
            hit = is_right(case, case._c, top) if top is not None else False
            r["n"] += 1
            r["hit1"] += hit
            r["answered"] += answered
            r["right"] += hit and answered
        else:
            k = r["kinds"].setdefault(case.kind, [0, 0])
            k[0] += not answered
            k[1] += 1
    return rows


def refit(results) -> Thresholds:
    same = np.array([b for c, b, _, _ in results if c.dataset == "fit-same"])
    other = np.array([b for c, b, _, _ in results if c.dataset == "fit-other"])
    return Thresholds(
        round(float(np.quantile(same, 1 - ANSWERED)), 4), round(float(np.quantile(other, 1 - ANSWERED)), 4)
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", nargs="*")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "token_formats.json")
    args = parser.parse_args()
    engine = Engine(Settings.from_env())
    from rag.retrieve.background import background_sentences

    background = np.concatenate(engine.embedder.encode_passages(background_sentences()[0]).tokens)
    corpora, cases = cases_and_corpora(engine)
    for case in cases:
        case._c = corpora[case.corpus]
    fit_public(engine, (384, 256, 128, 96, 64))
    print({n: (len(c.sentences), len(c.tokens)) for n, c in corpora.items()}, flush=True)
    prepared = prepare(engine, corpora, cases)
    shipped = Thresholds.for_model(DEFAULT_MODEL)
    reps = [r for r in all_reps() if not args.reps or r.name in args.reps]
    reps.sort(key=lambda r: r.name != "fp16")  # the baseline first: shifts are measured against it
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    base_best = None
    for rep in reps:
        started = time.perf_counter()
        results = evaluate(rep, corpora, prepared, background)
        bests = np.array([b for _, b, _, _ in results])
        if base_best is None and rep.name == "fp16":
            base_best = bests
        fitted = refit(results)
        entry = {
            "bytes_per_token": rep.bytes_per_token,
            "corpus_bytes": getattr(rep, "corpus_bytes", 0),
            "thresholds": [fitted.same_language, fitted.other_language],
            "before": summarise(results, shipped),
            "after": summarise(results, fitted),
        }
        if base_best is not None:
            d = bests - base_best
            entry["shift"] = {
                "mean": float(d.mean()),
                "mean_abs": float(np.abs(d).mean()),
                "max_abs": float(np.abs(d).max()),
            }
        report[rep.name] = entry
        a = entry["after"]
        line = " ".join(f"{k[:14]}:{v['hit1']}/{v['answered']}/{v['right']}" for k, v in a.items())
        print(
            f"{rep.name:<26} {rep.bytes_per_token:>7.1f}B thr {fitted.same_language:.4f}/{fitted.other_language:.4f} "
            f"shift {entry.get('shift', {}).get('mean', 0):+.4f} | {line} ({time.perf_counter() - started:.0f}s)",
            flush=True,
        )
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
