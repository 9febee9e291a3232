"""Check eval/own/questions.jsonl against eval/own/docs/ (no product code is run).

For every answerable line: each expect substring (>= 6 chars) must occur exactly once in the
intended document's text: .md/.txt raw file; .html lxml text_content() of <body> (and also
inside <article>); .pdf pypdf text with whitespace collapsed.
"""
import json, re, sys
from pathlib import Path
import lxml.html, pypdf

HERE = Path(__file__).resolve().parent
DOCS = HERE / "docs"

def text_of(path: Path) -> tuple[str, str]:
    if path.suffix in (".md", ".txt"):
        t = path.read_text(encoding="utf-8")
        return t, t
    if path.suffix == ".html":
        root = lxml.html.fromstring(path.read_bytes())
        body = root.find("body").text_content()
        main = root.xpath("//article")[0].text_content()
        return body, main
    if path.suffix == ".pdf":
        t = " ".join(p.extract_text() or "" for p in pypdf.PdfReader(str(path)).pages)
        t = re.sub(r"\s+", " ", t)
        return t, t
    raise ValueError(path)

texts = {p.name: text_of(p) for p in sorted(DOCS.iterdir())}
fails, n = 0, 0
counts = {}
for i, line in enumerate((HERE / "questions.jsonl").read_text(encoding="utf-8").splitlines(), 1):
    q = json.loads(line)
    kind = q["kind"]
    counts[kind] = counts.get(kind, 0) + 1
    if kind != "answerable":
        if "expect" in q:
            print(f"line {i}: {kind} line has expect"); fails += 1
        continue
    doc = q["doc"]
    full, main = texts[doc]
    if not 1 <= len(q["expect"]) <= 2:
        print(f"line {i}: {len(q['expect'])} expect strings"); fails += 1
    for e in q["expect"]:
        n += 1
        c_full, c_main = full.count(e), main.count(e)
        others = [d for d, (t, _) in texts.items() if d != doc and e in t]
        if len(e) < 6 or c_full != 1 or c_main != 1:
            print(f"FAIL line {i} [{doc}] {e!r}: len={len(e)} count={c_full} in_main={c_main}"); fails += 1
        elif others:
            print(f"note line {i} {e!r} also in {others}")
print(f"{counts}; {n} expect strings checked; {fails} failures")
sys.exit(1 if fails else 0)
