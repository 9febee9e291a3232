"""Markdown table of screen.json (after the thresholds are re-fitted for each representation)."""

import json
import sys
from pathlib import Path

d = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/token_formats.json").read_text())
sets = ["XQuAD-R en→de", "XQuAD-R en→es", "XQuAD-R en→en", "SQuAD 2.0 odd (en)", "bundled (fr)"]
print(
    "| representation | B/token | 100k sentences* | thresholds same/other | score shift mean (max abs) | "
    + " | ".join(f"{s} hit@1 / answered / right" for s in sets)
    + " | XQuAD out-of-corpus abstained de/es/en | SQuAD para-removed / adversarial abst."
    + " | bundled off/near abst. | Σ right |"
)
print("|" + "---|" * (10 + len(sets) - 2 + 1))
for name, e in d.items():
    a = e["after"]
    cells = []
    total = 0
    for s in sets:
        r = a[s]
        cells.append(f"{r['hit1']}/{r['answered']}/{r['right']} (of {r['n']})")
        if s != "bundled (fr)":
            total += r["right"]
    ooc = "/".join(f"{a[s]['kinds']['out-of-corpus'][0]}" for s in sets[:3])
    sq = a[sets[3]]["kinds"]
    b = a["bundled (fr)"]["kinds"]
    shift = e.get("shift", {})
    gb = e["bytes_per_token"] * 100_000 * 30 / 1e9
    print(
        f"| {name} | {e['bytes_per_token']:.0f} | {gb:.2f} GB | {e['thresholds'][0]:.4f}/{e['thresholds'][1]:.4f} | "
        f"{shift.get('mean', 0):+.4f} ({shift.get('max_abs', 0):.4f}) | "
        + " | ".join(cells)
        + f" | {ooc} (of 96)"
        + f" | {sq['paragraph-removed'][0]}/{sq['adversarial'][0]}"
        + f" (of {sq['paragraph-removed'][1]}/{sq['adversarial'][1]})"
        + f" | {b['off-topic'][0]}/{b['near-topic'][0]} (of {b['off-topic'][1]}/{b['near-topic'][1]}) | {total} |"
    )
