"""Hostile PDFs, small on disk and costly to read, through the PDF loader: what each costs now
(refused or read, seconds), and with --before what plain pypdf costs on it, as the loader read
PDFs before its budgets (in a child process, stopped after --seconds).

    .venv/bin/python benchmarks/pdf_limits.py [--before] [--seconds 60]

Prints one line per file: its size, the loader's answer, the time taken; with --before, what
plain pypdf made of it (read, or the exception) and when, or that it was still running, and the
peak memory (RSS) of the process that read it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.errors import InputError
from rag.ingest.pdf_loader import MAX_PAGE_BYTES, PdfLoader

PLAIN_PYPDF = """
import io, logging, resource, sys
from pypdf import PdfReader
logging.disable(logging.WARNING)
try:
    for page in PdfReader(io.BytesIO(sys.stdin.buffer.read())).pages:
        page.extract_text()
    print("read", end="")
except Exception as exc:
    print(type(exc).__name__, end="")
print(f", peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024:,} MiB")
"""


def before(data: bytes, seconds: float) -> str:
    """What plain pypdf, as the loader used it before, makes of ``data`` in a child process."""
    started = time.perf_counter()
    reader = subprocess.Popen([sys.executable, "-c", PLAIN_PYPDF], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        out, _ = reader.communicate(data, timeout=seconds)
        return f"{out.decode().strip()} in {time.perf_counter() - started:.1f} s"
    except subprocess.TimeoutExpired:
        status = Path(f"/proc/{reader.pid}/status").read_text()
        peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        reader.kill()
        reader.communicate()
        return f"still running after {seconds:g} s, peak RSS {peak // 1024:,} MiB"


def drawing(objects: list[bytes], kind: bytes) -> bytes:
    """One page that draws (forms: /X0 Do ...) or sets (fonts: /G0 1 Tf ...) each of ``objects``."""
    from tests.test_pdf_limits import FONT, shared_stream_pdf

    names = [b"/%s%d" % (kind[:1], n) for n in range(len(objects))]
    entries = b" ".join(b"%s %d 0 R" % (name, 5 + n) for n, name in enumerate(names))
    if kind == b"XObject":
        return shared_stream_pdf(
            1, b" ".join(b"%s Do" % name for name in names), *objects, resources=b" /XObject << %s >>" % entries
        )
    fonts = [
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode %d 0 R >>" % (5 + len(objects) + n)
        for n in range(len(objects))
    ]
    content = b" ".join(b"BT %s 12 Tf (a) Tj ET" % name for name in names)
    return shared_stream_pdf(1, content, *fonts, *objects, resources=b" /Font << %s >>" % entries).replace(FONT, b"")


def cases() -> dict[str, bytes]:
    # Imported here, not above: each worker imports this script again (multiprocessing's way).
    from tests.test_formats import write_pdf
    from tests.test_pdf_limits import FONT, LINE, shared_stream_pdf, stream

    big = MAX_PAGE_BYTES - 4096
    form = b" /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Resources << %s >>" % FONT
    inline = b"BI /W 1 /H 1 /BPC 8 /CS /G /L %d ID %s EI" % (big, b"a" * big)
    cmap = b"begincmap 1 begincodespacerange <00> <FF> endcodespacerange %s endcmap" % (b" " * big)
    glaciers = write_pdf(Path(tempfile.mkdtemp()) / "glaciers.pdf").read_bytes()
    return {
        "1,000 pages drawing one 70 MB stream": shared_stream_pdf(1000, LINE * (70_000_000 // len(LINE))),
        "1,000 pages drawing one stream just under the page budget": shared_stream_pdf(1000, LINE * (big // len(LINE))),
        "1,000 pages drawing one stream of 195,000 operators": shared_stream_pdf(1000, LINE * 39_000),
        "a page drawing 1,000 forms of an 8 MiB inline image": drawing([stream(inline, form)] * 1000, b"XObject"),
        "a page using 1,000 fonts with 8 MiB CMaps": drawing([stream(cmap)] * 1000, b"Font"),
        "an ordinary 3-page PDF (tests/test_formats.py)": glaciers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", action="store_true", help="also time plain pypdf on each file")
    parser.add_argument("--seconds", type=float, default=60, help="how long plain pypdf may run")
    args = parser.parse_args()
    for name, data in cases().items():
        started = time.perf_counter()
        try:
            PdfLoader().extract(data, Path("hostile.pdf"))
            answer = "read"
        except InputError as exc:
            answer = str(exc).split(";")[0]
        print(f"{name}: {len(data):,} bytes; now {answer!r} in {time.perf_counter() - started:.2f} s", flush=True)
        if args.before:
            print(f"    before: {before(data, args.seconds)}", flush=True)


if __name__ == "__main__":
    main()
