"""Check eval/followups/conversations.jsonl against its documents (read-only; runs no product code).

Run: .venv/bin/python eval/followups/check.py

Per line:
  - fields: history (list of 1-3 non-empty strings), question (non-empty string), lang, kind, doc;
    expect optional (list of 0-2 strings); kind `unanswerable` must have no expect, every other
    kind must have 1-2 expect strings.
  - every expect string is >= 6 characters and occurs exactly once in the named document's text:
    .md/.txt the raw file; .html lxml text_content() of <body> (and also once inside <article>
    where the page has one); .pdf pypdf text with whitespace collapsed.
Totals: the minimums of the set (>= 40 lines, >= 12 on the bundled article, >= 28 on own documents,
>= 3 per own document, >= 5 per kind, >= 5 question languages, some language switches).
Exit status 1 on any failure.
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

import lxml.html
import pypdf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ARTICLE = "000_8cb13a5d0c7818f1.txt"
DOC_PATHS = {ARTICLE: ROOT / "seeds" / ARTICLE}
DOC_PATHS.update({p.name: p for p in sorted((ROOT / "eval" / "own" / "docs").iterdir())})
KINDS = ("ellipsis", "pronoun", "and-x", "why", "topic-switch", "unanswerable")
LANGS = ("en", "fr", "de", "es", "it", "pt")
FIELDS = {"history", "question", "expect", "lang", "kind", "doc"}


def text_of(path: Path) -> tuple[str, str | None]:
    """(document text, text of <article> or None)"""
    if path.suffix in (".md", ".txt"):
        return path.read_text(encoding="utf-8"), None
    if path.suffix == ".html":
        root = lxml.html.fromstring(path.read_bytes())
        body = root.find("body").text_content()
        arts = root.xpath("//article")
        return body, (arts[0].text_content() if arts else None)
    if path.suffix == ".pdf":
        t = " ".join(p.extract_text() or "" for p in pypdf.PdfReader(str(path)).pages)
        return re.sub(r"\s+", " ", t), None
    raise ValueError(path)


def main() -> int:
    texts = {name: text_of(p) for name, p in DOC_PATHS.items()}
    fails = 0

    def fail(msg):
        nonlocal fails
        fails += 1
        print("FAIL", msg)

    kinds, langs, docs = Counter(), Counter(), Counter()
    n_expect = n_lines = n_switch = 0
    lines = (HERE / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            fail(f"line {i}: empty line")
            continue
        n_lines += 1
        try:
            q = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"line {i}: bad JSON ({e})")
            continue
        extra = set(q) - FIELDS
        missing = {"history", "question", "lang", "kind", "doc"} - set(q)
        if extra or missing:
            fail(f"line {i}: missing {sorted(missing)} extra {sorted(extra)}")
            continue
        h = q["history"]
        if not (isinstance(h, list) and 1 <= len(h) <= 3
                and all(isinstance(x, str) and x.strip() for x in h)):
            fail(f"line {i}: history must be a list of 1-3 non-empty strings")
        if not (isinstance(q["question"], str) and q["question"].strip()):
            fail(f"line {i}: empty question")
        kind, lang, doc = q["kind"], q["lang"], q["doc"]
        if kind not in KINDS:
            fail(f"line {i}: unknown kind {kind!r}")
        if lang not in LANGS:
            fail(f"line {i}: unknown lang {lang!r}")
        if doc not in texts:
            fail(f"line {i}: unknown doc {doc!r}")
            continue
        kinds[kind] += 1
        langs[lang] += 1
        docs[doc] += 1
        exp = q.get("expect", [])
        if not isinstance(exp, list) or not all(isinstance(e, str) for e in exp):
            fail(f"line {i}: expect must be a list of strings")
            continue
        if kind == "unanswerable":
            if exp:
                fail(f"line {i}: unanswerable line has expect {exp}")
            continue
        if not 1 <= len(exp) <= 2:
            fail(f"line {i}: {kind} line needs 1-2 expect strings, has {len(exp)}")
        full, art = texts[doc]
        for e in exp:
            n_expect += 1
            c = full.count(e)
            ca = art.count(e) if art is not None else 1
            if len(e) < 6 or c != 1 or ca != 1:
                where = f" in_article={ca}" if art is not None else ""
                fail(f"line {i} [{doc}] {e!r}: len={len(e)} count={c}{where}")
            others = [d for d, (t, _) in texts.items() if d != doc and e in t]
            if others:
                print(f"note line {i}: {e!r} also occurs in {others}")

    # totals
    if n_lines < 40:
        fail(f"only {n_lines} conversations (need >= 40)")
    if docs[ARTICLE] < 12:
        fail(f"only {docs[ARTICLE]} on the bundled article (need >= 12)")
    own = {d: c for d, c in docs.items() if d != ARTICLE}
    if sum(own.values()) < 28:
        fail(f"only {sum(own.values())} on own documents (need >= 28)")
    for d in DOC_PATHS:
        if d != ARTICLE and docs[d] < 3:
            fail(f"only {docs[d]} on {d} (need >= 3)")
    for k in KINDS:
        if kinds[k] < 5:
            fail(f"only {kinds[k]} of kind {k} (need >= 5)")
    if len(langs) < 5:
        fail(f"only {len(langs)} question languages (need >= 5)")

    print(f"{n_lines} conversations; {n_expect} expect strings checked; {fails} failures")
    print("kinds:", dict(sorted(kinds.items())))
    print("langs:", dict(sorted(langs.items())))
    print("docs:", dict(sorted(docs.items())))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
