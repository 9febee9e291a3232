"""What Word documents built to cost cost the .docx loader: seconds and peak memory of reading
each (one fresh process per file), and whether it was read or refused.

    .venv/bin/python benchmarks/docx_limits.py            # the loader as it is
    .venv/bin/python benchmarks/docx_limits.py --before   # plain python-docx, no checks

--before reads with python-docx alone: no budgets, row.cells for tables, paragraph.style for
headings. Its gridSpan case uses 10,000,000 columns (the file says 1,000,000,000 after: the
loader's cost does not depend on it)."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
SENTENCE = "The keeper logged every storm in green ink, with the wind's force and the hour it turned."


def paragraph(text: str, style: str | None = None) -> str:
    properties = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{properties}<w:r><w:t>{text}</w:t></w:r></w:p>"


def package(body: str, styles: str = "", extra: dict[str, bytes] | None = None, rels: str = "") -> bytes:
    """A minimal .docx: the main document with ``body``, styles with ``styles`` appended."""
    import docx

    out = io.BytesIO()
    docx.Document().save(out)
    source = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    result = io.BytesIO()
    with zipfile.ZipFile(result, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            part = source.read(name)
            if name == "word/document.xml":
                head, _, tail = part.partition(b"<w:body>")
                part = head + b"<w:body>" + body.encode() + b"<w:sectPr/>" + tail[tail.index(b"</w:body>") :]
            elif name == "word/styles.xml" and styles:
                part = part.replace(b"</w:styles>", styles.encode() + b"</w:styles>")
            elif name == "[Content_Types].xml" and extra:
                part = part.replace(b"<Default ", b'<Default Extension="png" ContentType="image/png"/><Default ', 1)
            elif name == "word/_rels/document.xml.rels" and rels:
                part = part.replace(b"</Relationships>", rels.encode() + b"</Relationships>")
            target.writestr(name, part)
        for name, part in (extra or {}).items():
            target.writestr(name, part)
    return result.getvalue()


def ordinary() -> bytes:
    sections = "".join(paragraph(f"Section {n}", "Heading1") + paragraph(SENTENCE) * 5 for n in range(10))
    return package(sections)


def book(megabytes: int) -> bytes:
    """Paragraphs of prose up to about ``megabytes`` of XML."""
    count = megabytes * 2**20 // len(paragraph(SENTENCE))
    return package(paragraph(SENTENCE) * count)


def bomb() -> bytes:
    return package("<w:p/>" * (256 * 2**20 // 6))


def empty_paragraphs(depth: int) -> bytes:
    """31 MiB of empty paragraphs, the costliest XML per byte, wrapped in ``depth`` levels of custom XML."""
    count = 31 * 2**20 // len("<w:p/>")
    wrapped = "<w:customXml w:element='x'>" * depth + "<w:p/>" * count + paragraph("End.") + "</w:customXml>" * depth
    return package(wrapped)


def runs(count: int) -> bytes:
    """One paragraph of ``count`` runs of a letter each."""
    return package(f"<w:p>{'<w:r><w:t>a</w:t></w:r>' * count}</w:p>")


def merged_down(rows: int) -> bytes:
    first = f'<w:tr><w:tc><w:tcPr><w:vMerge w:val="restart"/></w:tcPr>{paragraph("Keepers")}</w:tc></w:tr>'
    rest = "<w:tr><w:tc><w:tcPr><w:vMerge/></w:tcPr><w:p/></w:tc></w:tr>" * (rows - 1)
    return package(f"<w:tbl>{first}{rest}</w:tbl>")


def wide(columns: int) -> bytes:
    cell = f'<w:tc><w:tcPr><w:gridSpan w:val="{columns}"/></w:tcPr>{paragraph("Wide.")}</w:tc>'
    return package(f"<w:tbl><w:tr>{cell}</w:tr></w:tbl>")


def styles(count: int) -> bytes:
    """``count`` paragraph styles, and a paragraph in each."""
    defined = "".join(
        f'<w:style w:type="paragraph" w:styleId="S{n}"><w:name w:val="s{n}"/></w:style>' for n in range(count)
    )
    return package("".join(paragraph("Styled words.", f"S{n}") for n in range(count)), styles=defined)


def parts(count: int) -> bytes:
    """``count`` pictures, each a part the main document relates to."""
    kind = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"
    rels = "".join(f'<Relationship Id="rIdP{n}" Type="{kind}" Target="media/p{n}.png"/>' for n in range(count))
    media = {f"word/media/p{n}.png": b"\x89PNG" for n in range(count)}
    return package(paragraph(SENTENCE), extra=media, rels=rels)


def cases(before: bool) -> list:
    """(name, a function that makes the file), made one at a time."""
    columns = 10**7 if before else 10**9
    return [
        ("ordinary (10 sections)", ordinary),
        ("book, 10 MiB of XML", lambda: book(10)),
        ("book, 31 MiB of XML", lambda: book(31)),
        ("5.4 million empty paragraphs", lambda: empty_paragraphs(0)),
        ("the same in 250 levels of custom XML", lambda: empty_paragraphs(250)),
        ("1.4 million runs in one paragraph", lambda: runs(1_400_000)),
        ("zip bomb, 256 MiB of XML", bomb),
        ("2,000 rows merged down", lambda: merged_down(2000)),
        (f"one cell {columns:.0e} columns wide", lambda: wide(columns)),
        ("5,000 styles, a paragraph in each", lambda: styles(5000)),
        ("1,980 pictures (parts)", lambda: parts(1980)),
        ("20,000 pictures (parts)", lambda: parts(20000)),
    ]


def peak_mib() -> int:
    """This process's peak resident memory (VmHWM: ru_maxrss would count the parent's too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def read_plain(data: bytes) -> int:
    """A loader without our checks: python-docx's row.cells and paragraph.style."""
    import docx
    from docx.table import Table

    def blocks(container):
        for block in container.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    for cell in row.cells:
                        yield from blocks(cell)
            else:
                yield block

    document = docx.Document(io.BytesIO(data))
    return sum(len(p.text) for p in blocks(document) if p.style is not None)


def one(path: Path, before: bool) -> dict:
    """In the child process: read one file, report."""
    data = path.read_bytes()
    started = time.perf_counter()
    try:
        if before:
            read_plain(data)
        else:
            from rag.ingest.docx_loader import DocxLoader

            DocxLoader().extract(data, path)
        outcome = "read"
    except Exception as exc:
        outcome = f"refused: {type(exc).__name__}: {str(exc)[:90]}"
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "peak_mib": peak_mib(),
        "outcome": outcome,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", action="store_true", help="plain python-docx, no checks")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=120, help="seconds a file may take (default 120)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.before)))
        return
    with tempfile.TemporaryDirectory() as folder:
        for name, make in cases(args.before):
            data = make()
            path = Path(folder) / "case.docx"
            path.write_bytes(data)
            command = [sys.executable, __file__, "--one", str(path)] + (["--before"] if args.before else [])
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
                report = json.loads(result.stdout) if result.returncode == 0 else {"outcome": result.stderr[-200:]}
            except subprocess.TimeoutExpired:
                report = {"outcome": f"still reading after {args.timeout:g} s"}
            print(f"{name:<36} {len(data) / 1024:>8,.0f} KiB  {json.dumps(report, ensure_ascii=False)}", flush=True)


if __name__ == "__main__":
    main()
