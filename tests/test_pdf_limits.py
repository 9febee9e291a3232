"""Hostile PDFs, built here and small on disk: each is refused with one line that names the limit
it passed (422 over HTTP), never a 500 or a build that holds the index for minutes; ordinary
PDFs read exactly as pypdf reads them. No model."""

import io
import threading
import zlib
from pathlib import Path

import pytest
from pypdf import PdfReader

from rag.errors import BusyError, InputError
from rag.ingest import pdf_loader
from rag.ingest.layout import Layout

from .conftest import REPO, fake_engine, ready_client
from .test_formats import write_pdf

FONT = b"/Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >>"
LINE = b"BT /F1 12 Tf 72 700 Td (Hello world) Tj ET\n"  # 43 bytes, 5 operators


def pdf_file(*objects: bytes) -> bytes:
    """A PDF of ``objects``, numbered from 1 (the first is the catalog), with its xref table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(content: bytes, entries: bytes = b"", compress: bool = True) -> bytes:
    data = zlib.compress(content) if compress else content
    flate = b" /Filter /FlateDecode" if compress else b""
    return b"<< /Length %d%s%s >>\nstream\n%s\nendstream" % (len(data), flate, entries, data)


def shared_stream_pdf(pages: int, content: bytes, *more: bytes, compress: bool = True, resources: bytes = b"") -> bytes:
    """Every page (objects 4 on) draws object 3, one content stream; ``more`` follow the pages."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R /Resources << %s%s >> >>"
    kids = b" ".join(b"%d 0 R" % (4 + n) for n in range(pages))
    return pdf_file(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        stream(content, compress=compress),
        *[page % (FONT, resources)] * pages,
        *more,
    )


def refusal(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "hostile.pdf"
    with pytest.raises(InputError) as refused:
        pdf_loader.PdfLoader().extract(data, path)
    message = str(refused.value)
    assert message.startswith(f"{path} ") and "\n" not in message, "one line that names the file"
    return message


def test_a_stream_drawn_by_a_thousand_pages_is_refused_at_the_file_budget(tmp_path, monkeypatch):
    # The attack: 1,000 pages drawing one stream that decodes to many MiB, a tiny file. Here the
    # budget is made small so that it trips after a few pages of a small stream.
    monkeypatch.setattr(pdf_loader, "MAX_FILE_BYTES", 2**18)
    data = shared_stream_pdf(1000, LINE * 500)  # 21,500 bytes: 12 pages fit in 256 KiB, the 13th does not
    assert len(data) < 300_000
    message = refusal(tmp_path, data)
    assert "over the limit of 0.25 MiB of page content per file at page 13" in message
    assert "split it" in message


def test_a_page_that_decodes_to_more_than_its_budget_is_refused_before_it_is_parsed(tmp_path):
    # Twice the budget, so that pypdf's own limit on a stream's tokens trips too without ours.
    data = shared_stream_pdf(1000, LINE * (2 * pdf_loader.MAX_PAGE_BYTES // len(LINE)))
    assert len(data) < 300_000
    assert "over the limit of 8 MiB of content on page 1" in refusal(tmp_path, data)


def test_an_uncompressed_page_over_its_budget_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_loader, "MAX_PAGE_BYTES", 2**16)
    data = shared_stream_pdf(1, LINE * 2000, compress=False)
    assert "over the limit of 0.0625 MiB of content on page 1" in refusal(tmp_path, data)


def test_operators_over_the_page_budget_are_refused_in_a_form_too(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_loader, "MAX_PAGE_OPERATORS", 1000)
    assert "over the limit of 1,000 operators on page 1" in refusal(tmp_path, shared_stream_pdf(1, LINE * 300))
    # pypdf catches what a visitor raises inside a form (and goes on), so the form's operators are
    # counted after it too: here the form is the page's last operator.
    form = stream(LINE * 300, b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << %s >>" % FONT)
    data = shared_stream_pdf(1, b"/X0 Do", form, resources=b" /XObject << /X0 5 0 R >>")
    assert "over the limit of 1,000 operators on page 1" in refusal(tmp_path, data)


def test_a_file_that_takes_longer_than_the_time_budget_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_loader, "MAX_SECONDS", 1)
    data = shared_stream_pdf(1000, LINE * 500)  # within the counts, ~20 s of pypdf's time
    assert "took over the limit of 1 s to read" in refusal(tmp_path, data)


def test_a_file_that_takes_more_memory_than_its_budget_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_loader, "MAX_MEMORY", 100 * 2**20)
    # A page drawing 12 streams of 7 MiB each: within the decoding limits of each stream.
    streams = [stream(b"\n" * 7 * 2**20) for _ in range(12)]
    refs = b" ".join(b"%d 0 R" % (5 + n) for n in range(12))
    data = shared_stream_pdf(1, b"", *streams).replace(b"/Contents 3 0 R", b"/Contents [%s]" % refs)
    assert "over the limit of 100 MiB of memory" in refusal(tmp_path, data)


def test_a_pdf_waits_for_a_free_reader_and_then_says_the_server_is_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_loader, "MAX_SECONDS", 0.1)
    monkeypatch.setattr(pdf_loader, "_READERS", threading.BoundedSemaphore(1))
    data = shared_stream_pdf(1, LINE)
    assert pdf_loader.PdfLoader().extract(data, tmp_path / "a.pdf").text == "Hello world"
    with pdf_loader._READERS, pytest.raises(BusyError, match=r"other PDFs are being read; try a\.pdf again"):
        pdf_loader.PdfLoader().extract(data, tmp_path / "a.pdf")


ONE_PAGE = shared_stream_pdf(1, LINE)
HOSTILE = {
    "declared size": (ONE_PAGE.replace(b"xref\n0 5\n", b"xref\n0 99999999\n"), "Declared size 99999999"),
    "nested arrays": (shared_stream_pdf(1, b"[" * 5000 + b"]" * 5000 + b" TJ\n" + LINE), "recursion"),
    "filters": (ONE_PAGE.replace(b"/Filter /FlateDecode", b"/Filter [" + b"/FlateDecode " * 20 + b"]"), "filter"),
    "missing decoder": (ONE_PAGE.replace(b"/Filter /FlateDecode", b"/Filter /JBIG2Decode"), "JBIG2"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_what_pypdf_raises_on_a_hostile_file_is_an_input_error(tmp_path, name):
    data, detail = HOSTILE[name]
    assert detail.lower() in refusal(tmp_path, data).lower()


def test_over_http_a_pdf_over_a_limit_is_refused_with_422_and_nothing_is_kept(tmp_path):
    with ready_client(fake_engine(tmp_path / "index")) as client:
        before = client.get("/api/documents").json()
        for data in (HOSTILE["declared size"][0], shared_stream_pdf(1000, LINE * 400_000)):
            reply = client.post("/api/documents", files={"file": ("bomb.pdf", data, "application/pdf")})
            assert reply.status_code == 422, reply.text
            assert reply.json()["detail"].startswith("bomb.pdf ") and "limit" in reply.json()["detail"]
        assert client.get("/api/documents").json() == before
        uploads = tmp_path / "index" / "uploads"
        assert not uploads.exists() or not any(uploads.rglob("*.pdf"))


def plain_pypdf_text(data: bytes) -> str:
    """The stored text as it was read before the budgets: pypdf without visitor or limits."""
    layout = Layout()
    for page in PdfReader(io.BytesIO(data)).pages:
        layout.page()
        pdf_loader._add_page(layout, page.extract_text() or "")
    return layout.extracted(Path("x.pdf")).text


@pytest.mark.parametrize("name", ["glaciers", "eval"])
def test_ordinary_pdfs_read_exactly_as_before(tmp_path, name):
    path = write_pdf(tmp_path / "glaciers.pdf") if name == "glaciers" else REPO / "eval/own/docs"
    paths = [path] if path.is_file() else sorted(path.glob("*.pdf"))
    assert paths
    for path in paths:
        data = path.read_bytes()
        assert pdf_loader.PdfLoader().extract(data, path).text == plain_pypdf_text(data)
