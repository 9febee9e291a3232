"""Fit the confidence calibration (rag/retrieve/confidence.py) on the cases that
training/confidence_data.py collected, print how it holds on the cases kept for reporting, and
write rag/data/confidence.json.

    .venv/bin/python training/confidence.py --work WORK [--out FILE]     # under a minute

1. The number head: a logistic regression over the question's pooled vector, telling questions
   whose answer holds a numeral (a number, date, quantity) from the others; fitted on the
   answerable fitting questions, whatever their language.
2. The confidence model: a logistic regression over the features of FEATURES, the label being
   whether the first candidate holds the answer. Each fitting set weighs the same; within one, the
   answerable questions weigh as much as the unanswerable ones (answer sentence removed, out of
   corpus, adversarial), which is the mix the thresholds' precision is stated for.
3. The thresholds: out-of-fold probabilities (each fitting set predicted by a model fitted on the
   others, so a threshold has to carry to data it never saw), then for each target precision the
   lowest probability down to which every threshold, tested in order from the top, keeps its
   error rate under 1 - target (one-sided binomial test at 10 %: fixed-sequence testing, as in
   Learn-then-Test). The closest-passage bar keeps 99 % of the out-of-fold answerable questions
   whose first candidate is right above it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from scipy.stats import binom  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from rag.retrieve.answerability import THRESHOLDS_FILE  # noqa: E402
from rag.retrieve.confidence import CONFIDENCE_FILE, FEATURES, Evidence, holds_numeral  # noqa: E402
from rag.retrieve.late_interaction import Retrieval, Scored  # noqa: E402
from rag.settings import DEFAULT_MODEL  # noqa: E402

TARGETS = [round(t, 2) for t in np.arange(0.50, 1.00, 0.01)]
RISK_LEVEL = 0.10  # each threshold's error rate is tested at this level
GRID = np.round(np.arange(0.99, 0.0, -0.01), 2)  # the bars tested, from the top
MIN_CASES = 100  # fewer cases above a bar cannot test it
KEPT_ANSWERABLE = 0.99  # share of right first candidates the closest-passage bar keeps
LANGUAGES = {"SQuAD": "en", "PIAF": "fr", "MLQA": "de", "CMRC": "zh", "DRCD": "zh", "ARCD": "ar", "bundled": "fr"}
MIN_ANSWER = 4  # characters of an answer's text looked up in other sentences
KIND_SHARE = {"answerable": 0.5}  # the unanswerable kinds share the other half by their counts


def family(dataset: str) -> str:
    """Sets that share articles are held out together."""
    return dataset.split(" ")[0]


def load(work: Path) -> tuple[list[dict], np.ndarray]:
    records = [json.loads(line) for line in (work / "cases.jsonl").read_text(encoding="utf-8").splitlines()]
    return records, np.load(work / "questions.npy")


def evidence(record: dict, vector: np.ndarray, wants_number: float, thresholds: dict) -> Evidence | None:
    if not record["top"]:
        return None
    ranked = [
        Scored(
            row=i,
            score=c["score"],
            coverage=np.array(c["coverage"]),
            threshold=c["threshold"],
        )
        for i, c in enumerate(record["top"])
    ]
    span = thresholds["same_language"] - thresholds["other_language"]
    same = (ranked[0].threshold - thresholds["other_language"]) / span
    found = Retrieval(np.zeros((0, 0)), ranked)
    first = record["top"][0]["text"]
    return Evidence(record["question"], found, first, language(record), same, wants_number)


def language(record: dict) -> str:
    """The language of the documents of ``record``'s set, as the index detects it."""
    name = record["dataset"]
    if name.startswith("XQuAD-R"):
        return name.split("→")[1].split(" ")[0]
    return LANGUAGES[name.split(" ")[0]]


def relabel(records: list[dict]) -> None:
    """A candidate that holds the answer's text elsewhere answers too (SQuAD-style sets mark one
    occurrence): texts of MIN_ANSWER characters or more, looked up for every kind of case of the
    same question, so that a case with its answer sentence removed that another sentence still
    answers counts as answered."""
    texts = {}
    for r in records:
        if r["answer_text"]:
            texts[(r["dataset"].removesuffix(" one document"), r["question"])] = r["answer_text"].strip()
    for r in records:
        text = texts.get((r["dataset"].removesuffix(" one document"), r["question"]), "")
        if len(text) >= MIN_ANSWER and r["kind"] in ("answerable", "sentence-removed"):
            for candidate in r["top"]:
                candidate["right"] = candidate["right"] or text in candidate["text"]


def weights(records: list[dict]) -> np.ndarray:
    by_set: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_set[r["dataset"]].append(i)
    out = np.zeros(len(records))
    for rows in by_set.values():
        answerable = [i for i in rows if records[i]["kind"] == "answerable"]
        others = [i for i in rows if records[i]["kind"] != "answerable"]
        share = KIND_SHARE["answerable"] if answerable and others else 1.0
        for group, part in ((answerable, share), (others, 1 - share)):
            for i in group:
                out[i] = part / len(group) / len(by_set)
    return out * len(records)


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[LogisticRegression, np.ndarray, np.ndarray]:
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / scale, y, sample_weight=w)
    return model, mean, scale


def predict(fitted, x: np.ndarray) -> np.ndarray:
    model, mean, scale = fitted
    return model.predict_proba((x - mean) / scale)[:, 1]


def thresholds_for(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[float, float]:
    """For each target precision, the lowest probability of GRID down to which every one, tested
    in order from the top, rejects 'error rate above 1 - target' at RISK_LEVEL. The cases are
    weighted: the test counts their effective number, (sum w)^2 / sum w^2. A bar with fewer than
    MIN_CASES above it is passed over (too few to test), not failed."""
    out = {}
    for target in TARGETS:
        chosen = 1.0
        for bar in GRID:
            above = p >= bar
            if not above.any():
                continue
            weight = w[above]
            n = weight.sum() ** 2 / (weight**2).sum()
            if n < MIN_CASES:
                continue
            errors = float((weight * (1 - y[above])).sum() / weight.sum())
            if binom.cdf(np.floor(errors * n), int(np.ceil(n)), 1 - target) > RISK_LEVEL:
                break
            chosen = float(bar)
        out[target] = round(chosen, 4)
    return out


def report(records: list[dict], p: np.ndarray, confident_at: float, closest_at: float) -> str:
    """Per data set: coverage and precision of confident answers, first-citation hit where a
    citation is shown, and the outcome mix of each unanswerable kind."""
    by_set: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_set[r["dataset"]].append(i)
    lines = [
        f"{'data set':<22} {'ans':>4} {'covered':>8} {'prec':>6} {'hit shown':>9} {'hit@1':>6}  unanswerable: kind"
        " (n) confident/closest/none"
    ]
    for name, rows in sorted(by_set.items()):
        answerable = [i for i in rows if records[i]["kind"] == "answerable"]
        right = {i: bool(records[i]["top"] and records[i]["top"][0]["right"]) for i in rows}
        sure = [i for i in rows if p[i] >= confident_at]
        covered = sum(p[i] >= confident_at for i in answerable) / max(1, len(answerable))
        precision = sum(right[i] for i in sure) / max(1, len(sure))
        shown = sum(right[i] and p[i] >= closest_at for i in answerable) / max(1, len(answerable))
        hit = sum(right[i] for i in answerable) / max(1, len(answerable))
        mix = []
        for kind in sorted({records[i]["kind"] for i in rows} - {"answerable"}):
            these = [i for i in rows if records[i]["kind"] == kind]
            a = sum(p[i] >= confident_at for i in these)
            c = sum(closest_at <= p[i] < confident_at for i in these)
            mix.append(f"{kind} ({len(these)}) {a}/{c}/{len(these) - a - c}")
        lines.append(
            f"{name:<22} {len(answerable):>4} {covered:>8.3f} {precision:>6.3f} {shown:>9.3f} {hit:>6.3f}  "
            + "; ".join(mix)
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="where training/confidence_data.py wrote")
    parser.add_argument("--out", type=Path, default=CONFIDENCE_FILE, help=f"where to write (default {CONFIDENCE_FILE})")
    parser.add_argument(
        "--target",
        type=float,
        default=0.75,
        help="the target precision the report uses (the default of RAG_CONFIDENT_PRECISION)",
    )
    parser.add_argument("--verbose", action="store_true", help="print each bar's precision")
    parser.add_argument("--dump", type=Path, help="write each case's probability here")
    parser.add_argument("--features", nargs="*", default=list(FEATURES), help="the features to use")
    args = parser.parse_args()
    records, vectors = load(args.work)
    thresholds = json.loads(THRESHOLDS_FILE.read_text(encoding="utf-8"))
    relabel(records)
    fit = np.array([r["split"] == "fit" for r in records])

    # 1. The number head.
    asked = [i for i, r in enumerate(records) if r["kind"] == "answerable" and r["answer_text"]]
    numeric = np.array([holds_numeral(records[i]["answer_text"]) for i in asked], dtype=float)
    train = np.array([fit[i] for i in asked])
    head = LogisticRegression(C=10.0, max_iter=3000).fit(vectors[asked][train], numeric[train])
    held = head.predict_proba(vectors[asked][~train])[:, 1]
    print(
        f"number head: {int(train.sum())} questions fitted ({numeric[train].mean():.2f} numeric);"
        f" AUC on the {int((~train).sum())} reported ones {roc_auc_score(numeric[~train], held):.3f}"
    )
    wants = head.predict_proba(vectors)[:, 1]

    # 2. The confidence model.
    kept = [i for i, r in enumerate(records) if r["top"]]
    records = [records[i] for i in kept]
    fit, wants = fit[kept], wants[kept]
    x = np.array(
        [
            [FEATURES[name](evidence(r, vectors[r["vector"]], wants[j], thresholds)) for name in args.features]
            for j, r in enumerate(records)
        ]
    )
    y = np.array([float(r["top"][0]["right"]) for r in records])
    w = np.zeros(len(records))
    fit_rows = np.flatnonzero(fit)
    w[fit_rows] = weights([records[i] for i in fit_rows])
    families = np.array([family(r["dataset"]) for r in records])

    out_of_fold = np.zeros(len(records))
    for name in sorted(set(families[fit])):
        held_out = fit & (families == name)
        fitted = fit_logistic(x[fit & ~held_out], y[fit & ~held_out], w[fit & ~held_out])
        out_of_fold[held_out] = predict(fitted, x[held_out])
        print(f"  held out {name:<8} AUC {roc_auc_score(y[held_out], out_of_fold[held_out]):.3f}")
    final = fit_logistic(x[fit], y[fit], w[fit])
    p = predict(final, x)
    baseline = np.array([r["top"][0]["score"] - r["top"][0]["threshold"] for r in records])
    print(
        f"AUC on reported cases: model {roc_auc_score(y[~fit], p[~fit]):.3f},"
        f" clearance alone {roc_auc_score(y[~fit], baseline[~fit]):.3f}"
    )
    for name, weight in zip(args.features, final[0].coef_[0], strict=True):
        print(f"  {name:<16} {weight:+.3f}")

    # 3. The thresholds.
    confident_at = thresholds_for(out_of_fold[fit], y[fit], w[fit])
    if args.verbose:
        for bar in GRID[::5]:
            above = out_of_fold[fit] >= bar
            ww = w[fit][above]
            if ww.sum():
                print(
                    f"  bar {bar}: n_eff {ww.sum() ** 2 / (ww**2).sum():.0f}, n {above.sum()},"
                    f" precision {(ww * y[fit][above]).sum() / ww.sum():.3f}"
                )
    right = fit & (y == 1) & np.array([r["kind"] == "answerable" for r in records])
    closest_at = round(float(np.quantile(out_of_fold[right], 1 - KEPT_ANSWERABLE)), 4)
    answerable = ~fit & np.array([r["kind"] == "answerable" for r in records])
    for t in (0.7, 0.75, 0.8, 0.85):
        sure = ~fit & (p >= confident_at[t])
        print(
            f"  target {t}: p >= {confident_at[t]}; reported cases: covered {(answerable & sure).sum()}"
            f"/{answerable.sum()}, right {y[sure].sum():.0f}/{sure.sum()}"
        )
    target = confident_at[round(args.target, 2)]
    print(f"confident from {target} (target {args.target}), closest passage from {closest_at}")
    print("\nfitting sets, out of fold:")
    print(report([records[i] for i in fit_rows], out_of_fold[fit], target, closest_at))
    print("\nreported sets (never fitted on):")
    report_rows = np.flatnonzero(~fit)
    print(report([records[i] for i in report_rows], p[~fit], target, closest_at))

    if args.dump:
        with args.dump.open("w", encoding="utf-8") as out:
            for r, prob in zip(records, p, strict=True):
                out.write(
                    json.dumps(
                        {
                            "dataset": r["dataset"],
                            "kind": r["kind"],
                            "question": r["question"],
                            "p": round(float(prob), 4),
                            "right": r["top"][0]["right"],
                            "clearance": round(r["top"][0]["score"] - r["top"][0]["threshold"], 4),
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
    model, mean, scale = final
    spec = {
        "model": DEFAULT_MODEL,
        "features": args.features,
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "weights": [round(float(v), 6) for v in model.coef_[0]],
        "bias": round(float(model.intercept_[0]), 6),
        "number_head": {
            "weights": [round(float(v), 6) for v in head.coef_[0]],
            "bias": round(float(head.intercept_[0]), 6),
        },
        # Targets no bar reached are left out: a setting asking for one is refused.
        "confident_at": {f"{t:.2f}": v for t, v in confident_at.items() if v < 1.0},
        "closest_at": closest_at,
        "fitted_on": {
            "sets": sorted({r["dataset"] for r, f in zip(records, fit, strict=True) if f}),
            "cases": int(fit.sum()),
            "mix": "each set weighs the same; answerable half, unanswerable kinds the other half",
            "script": "training/confidence.py (cases from training/confidence_data.py)",
        },
    }
    args.out.write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
