"""Word documents (.docx), written by python-docx in the test: headings as sections, paragraphs
and table cells as text in document order, exact offsets, the title's rules, and broken,
encrypted, empty or hostile files refused in one line (422 through an upload)."""

import io
import re
import shutil
import threading
import zipfile

import docx
import pytest

from rag.errors import BusyError, InputError
from rag.ingest import docx_loader
from rag.ingest.discover import read_document
from rag.settings import Settings

from .conftest import ARTICLE, fake_engine, model_cache_dir, rag, ready_client
from .test_formats import headings_of, sentences_of

LIGHTHOUSE = "Elias Marrow kept the Gull Rock lighthouse for forty-one years and logged every storm in green ink."


def write_docx(path, title="The keeper's log"):
    document = docx.Document()
    document.core_properties.title = title or ""
    document.add_heading("Gull Rock lighthouse", level=0)  # the Title style
    document.add_paragraph(LIGHTHOUSE)
    document.add_heading("The lamp", level=1)
    document.add_paragraph("The lamp burned whale oil until 1902. Then it burned paraffin.")
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Lamp"
    table.cell(0, 2).text = "Range"
    table.cell(1, 0).text = "Whale oil"
    table.cell(1, 1).text = "Paraffin"
    table.cell(1, 2).text = "Eighteen miles"
    table.cell(1, 2).add_table(rows=1, cols=1).cell(0, 0).text = "On clear nights"
    document.add_heading("Au phare, en français", level=2)
    document.add_paragraph("Le gardien écrivait « tempête » à l'encre verte ; 灯台守は嵐を記録した。")
    document.save(path)
    return path


def rewrite(data: bytes, change) -> bytes:
    """The same package with each part's bytes passed through ``change(name, data)``; None drops it."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            changed = change(name, source.read(name))
            if changed is not None:
                target.writestr(name, changed)
    return out.getvalue()


def with_body(data: bytes, body: str) -> bytes:
    """The package with its document's body replaced by ``body`` (WordprocessingML)."""

    def change(name, part):
        if name != "word/document.xml":
            return part
        return re.sub(rb"<w:body>.*<w:sectPr", b"<w:body>" + body.encode() + b"<w:sectPr", part, flags=re.S)

    return rewrite(data, change)


def empty_docx() -> bytes:
    out = io.BytesIO()
    docx.Document().save(out)
    return out.getvalue()


def paragraph(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


def test_headings_paragraphs_and_table_cells_are_read_in_order_with_exact_offsets(tmp_path):
    document = read_document(write_docx(tmp_path / "lighthouse.docx"))
    assert (document.format, document.title) == ("docx", "The keeper's log")
    assert headings_of(document) == [("Gull Rock lighthouse", 1), ("The lamp", 1), ("Au phare, en français", 2)]
    texts = sentences_of(document)
    assert texts == [
        LIGHTHOUSE,
        "The lamp burned whale oil until 1902.",
        "Then it burned paraffin.",
        "Lamp",  # the merged cell once, each cell a sentence of its own
        "Range",
        "Whale oil",
        "Paraffin",
        "Eighteen miles",
        "On clear nights",  # a table in a cell
        "Le gardien écrivait « tempête » à l'encre verte ; 灯台守は嵐を記録した。",
    ]


def test_a_table_merged_down_many_rows_or_across_many_columns_is_read_once_per_cell(tmp_path):
    """python-docx's row.cells finds a vertically merged cell by recursion up to its first row
    (1,200 rows: RecursionError, the file refused) and repeats a cell for each column it spans."""
    restart = '<w:tc><w:tcPr><w:vMerge w:val="restart"/></w:tcPr><w:p><w:r><w:t>Keepers</w:t></w:r></w:p></w:tc>'
    row = f"<w:tr><w:tc><w:tcPr><w:vMerge/></w:tcPr><w:p/></w:tc><w:tc>{paragraph('A keeper.')}</w:tc></w:tr>"
    wide = f'<w:tr><w:tc><w:tcPr><w:gridSpan w:val="1000000"/></w:tcPr>{paragraph("Wide.")}</w:tc></w:tr>'
    table = f"<w:tbl><w:tr>{restart}<w:tc>{paragraph('The first.')}</w:tc></w:tr>{row * 1199}{wide}</w:tbl>"
    path = tmp_path / "merged.docx"
    path.write_bytes(with_body(empty_docx(), table))
    lines = read_document(path).text.split("\n")
    assert lines[:3] == ["Keepers", "The first.", "A keeper."]
    assert len(lines) == 2 + 1199 + 1 and lines[-1] == "Wide."


def test_text_in_tracked_changes_fields_and_content_controls_is_read_as_word_shows_it(tmp_path):
    """python-docx's Paragraph.text and iter_inner_content left out, without a word, inserted text,
    fields' results and content controls: a sentence was stored and cited with words missing."""
    run = "<w:r><w:t xml:space='preserve'>{}</w:t></w:r>".format
    box = (
        "<w:r><w:pict><v:shape xmlns:v='urn:schemas-microsoft-com:vml'><v:textbox><w:txbxContent>"
        f"{paragraph('Boxed aside.')}</w:txbxContent></v:textbox></v:shape></w:pict></w:r>"
    )
    body = (
        f"<w:p>{run('The keeper ')}<w:ins w:id='1' w:author='a'>{run('never ')}</w:ins>"
        f"<w:del w:id='2' w:author='a'><w:r><w:delText>always </w:delText></w:r></w:del>{run('slept')}"
        f"<w:moveFrom w:id='3' w:author='a'><w:r><w:delText> late</w:delText></w:r></w:moveFrom>{run(' in ')}"
        f"<w:fldSimple w:instr='DATE'>{run('winter')}</w:fldSimple>{run(' near ')}"
        f"<w:r><w:fldChar w:fldCharType='begin'/></w:r><w:r><w:instrText>REF lamp</w:instrText></w:r>"
        f"<w:r><w:fldChar w:fldCharType='separate'/></w:r>{run('the lamp')}<w:r><w:fldChar w:fldCharType='end'/></w:r>"
        f"<w:smartTag w:uri='u' w:element='e'>{run(' at Gull')}</w:smartTag>"
        f"<w:sdt><w:sdtContent>{run(' Rock')}</w:sdtContent></w:sdt>{run('.')}{box}</w:p>"
        "<w:sdt><w:sdtPr><w:docPartObj><w:docPartGallery w:val='Table of Contents'/></w:docPartObj></w:sdtPr>"
        f"<w:sdtContent>{paragraph('Contents page 1')}</w:sdtContent></w:sdt>"
        f"<w:sdt><w:sdtContent>{paragraph('A control holds this sentence.')}</w:sdtContent></w:sdt>"
        f"<w:customXml w:element='note'>{paragraph('Custom XML holds this one.')}</w:customXml>"
        f"<w:tbl><w:tr><w:sdt><w:sdtContent><w:tc>{paragraph('A cell in a control.')}</w:tc></w:sdtContent></w:sdt>"
        "</w:tr></w:tbl>"
    )
    path = tmp_path / "tracked.docx"
    path.write_bytes(with_body(empty_docx(), body))
    assert sentences_of(read_document(path)) == [
        "The keeper never slept in winter near the lamp at Gull Rock.",
        "A control holds this sentence.",
        "Custom XML holds this one.",
        "A cell in a control.",
    ]


def test_hidden_text_form_prompts_and_a_typed_table_of_contents_are_not_read_and_breaks_part_words(tmp_path):
    """Word shows none of hidden text, an empty field's grey prompt or (as the body) the lines of a
    table of contents made as a field; they were read and could be cited. A page or column break
    ran the words on either side into one."""
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    contents = document.styles.add_style("toc 1", WD_STYLE_TYPE.PARAGRAPH).style_id
    path = tmp_path / "hidden.docx"
    document.save(path)
    run = "<w:r>{}<w:t xml:space='preserve'>{}</w:t></w:r>".format
    prompt = "<w:sdt><w:sdtPr><w:showingPlcHdr/></w:sdtPr><w:sdtContent>{}</w:sdtContent></w:sdt>".format
    hidden, not_hidden = (
        run("<w:rPr><w:vanish/></w:rPr>", "HIDDEN NOTE."),
        run('<w:rPr><w:vanish w:val="0"/></w:rPr>', " Not hidden."),
    )
    body = (
        f"<w:p><w:pPr><w:pStyle w:val='{contents}'/></w:pPr>{run('', 'Introduction 1')}</w:p>"
        f"<w:p>{run('', 'Shown. ')}{hidden}{run('', 'Also shown.')}{not_hidden}</w:p>"
        f"<w:p>{run('', 'Name:')}{prompt(run('', ' Click or tap here to enter text.'))}</w:p>"
        f"{prompt(paragraph('Click or tap here to enter text.'))}"
        f"<w:p>{run('', 'The end')}<w:r><w:br w:type='page'/></w:r>{run('', 'Next')}"
        f"<w:r><w:br w:type='column'/></w:r>{run('', 'column.')}</w:p>"
    )
    path.write_bytes(with_body(path.read_bytes(), body))
    text = read_document(path).text
    assert "HIDDEN" not in text and "Click" not in text and "Introduction" not in text
    assert sentences_of(read_document(path)) == [
        "Shown.",
        "Also shown.",
        "Not hidden.",
        "Name:",
        "The end Next column.",
    ]


@pytest.mark.parametrize(
    ("core_title", "body", "title"),
    [
        (
            "  ",
            paragraph("Plain words first.") + '<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr>'
            "<w:r><w:t>The heading</w:t></w:r></w:p>",
            "The heading",
        ),
        (
            "",
            paragraph("Plain words only, and no heading at all in this document."),
            "Plain words only, and no heading at all in this document.",
        ),
        ("Set in the properties", paragraph("Plain words."), "Set in the properties"),
    ],
    ids=["first-heading", "first-line", "core-properties"],
)
def test_the_title_is_the_documents_own_else_its_first_heading_else_its_first_line(tmp_path, core_title, body, title):
    document = docx.Document()
    document.core_properties.title = core_title
    out = io.BytesIO()
    document.save(out)
    path = tmp_path / "titled.docx"
    path.write_bytes(with_body(out.getvalue(), body))
    assert read_document(path).title == title


def test_a_file_without_core_properties_is_not_titled_word_document(tmp_path):
    """python-docx makes up core properties titled "Word Document" when a file has none."""

    def drop_core(name, part):
        if name == "docProps/core.xml":
            return None
        return re.sub(rb"<Relationship [^>]*core-properties\"[^>]*/>", b"", part) if name == "_rels/.rels" else part

    path = tmp_path / "bare.docx"
    path.write_bytes(rewrite(write_docx(tmp_path / "full.docx").read_bytes(), drop_core))
    assert read_document(path).title == "Gull Rock lighthouse"


def ole(*streams: str) -> bytes:
    """The start of a compound file (Office's container for .doc and encrypted .docx) naming ``streams``."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"".join(s.encode("utf-16-le") for s in streams)


def zip_of(**parts: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in parts.items():
            package.writestr(name.replace("__", "/"), data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            lambda: b"Just some text, not a Word file.",
            r"is not a readable Word document \(not a zip file.*save it again",
        ),
        (lambda: empty_docx()[:2000], r"is not a readable Word document \(not a zip file, or cut short"),
        (lambda: b"", r"not a zip file"),
        (lambda: zip_of(word__other=b"<x/>"), r"is not a readable Word document .*save it again as \.docx"),
        (
            lambda: rewrite(empty_docx(), lambda name, part: None if name == "word/document.xml" else part),
            r"no item named 'word/document\.xml'",
        ),
        (lambda: ole("EncryptionInfo", "EncryptedPackage"), r"is protected by a password; save a copy without one"),
        (lambda: ole("WordDocument"), r"is an old Word 97-2003 document; save it as \.docx"),
        (lambda: empty_docx(), r"holds no text in its body .*put its text in paragraphs or tables"),
        (
            lambda: with_body(empty_docx(), "<w:tbl><w:tr><w:tc>" * 90 + "<w:p/>" + "</w:tc></w:tr></w:tbl>" * 90),
            r"goes past what the XML parser reads .*flatten or split it",
        ),
        (lambda: with_body(empty_docx(), paragraph("word " * 2_100_000)), r"10 MB of text in one run"),
    ],
    ids=[
        "text",
        "truncated",
        "empty",
        "zip-without-document",
        "missing-document",
        "encrypted",
        "doc-97",
        "no-text",
        "nested-deep",
        "long-text-node",
    ],
)
def test_a_broken_encrypted_or_empty_file_is_refused_in_one_line(tmp_path, data, reason):
    path = tmp_path / "report.docx"
    path.write_bytes(data())
    with pytest.raises(InputError, match=reason) as refused:
        read_document(path)
    assert "\n" not in str(refused.value) and str(refused.value).startswith(str(path))


def with_parts(data: bytes, parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as package:
        for name, part in parts.items():
            package.writestr(name, part)
    return out.getvalue()


def test_a_zip_bomb_or_a_package_over_the_budgets_is_refused_from_the_zips_directory(tmp_path, monkeypatch):
    """40 MiB of XML that compress to 40 KB, pictures over the package budget, too many parts:
    refused before python-docx unpacks anything."""
    bomb = with_body(empty_docx(), "<w:p/>" * (40 * 2**20 // 6))
    assert len(bomb) < 100_000
    pictures = with_parts(empty_docx(), {"word/media/image1.png": bytes(2 * 2**20)})
    parts = with_parts(empty_docx(), {f"word/media/image{number}.png": b"" for number in range(20)})
    monkeypatch.setattr(docx, "Document", lambda *_: pytest.fail("python-docx read a file over the budget"))
    monkeypatch.setattr(docx_loader, "MAX_PACKAGE_BYTES", 2**20)
    monkeypatch.setattr(docx_loader, "MAX_PARTS", 20)
    path = tmp_path / "bomb.docx"
    for data, reason in [
        (bomb, r"unpacks to over the limit of 32 MiB of XML; split it into smaller documents"),
        (pictures, r"unpacks to over the limit of 1 MiB; remove or compress its pictures"),
        (parts, r"holds over the limit of 20 parts; save its text as a \.txt file"),
    ]:
        path.write_bytes(data)
        with pytest.raises(InputError, match=reason):
            read_document(path)


def test_a_word_document_waits_for_one_of_the_readers_then_is_told_to_try_again(tmp_path, monkeypatch):
    """Each reader may take a core and some 300 MiB: uploads, which run in threads, share two."""
    path = write_docx(tmp_path / "lighthouse.docx")
    readers = threading.BoundedSemaphore(1)
    monkeypatch.setattr(docx_loader, "_READERS", readers)
    monkeypatch.setattr(docx_loader, "MAX_WAIT", 0.01)
    with readers, pytest.raises(BusyError, match=r"other Word documents are being read; try lighthouse\.docx again"):
        read_document(path)
    assert read_document(path).title == "The keeper's log", "the reader is free again"


def test_a_part_larger_than_its_directory_says_is_refused(tmp_path):
    """zipfile stops unpacking a part at the size the directory gives; the rest fails its CRC."""
    data = bytearray(with_body(empty_docx(), paragraph("Some words. ") + "<w:p/>" * 200_000))
    name = b"word/document.xml"
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at : start + name_at + len(name)] == name:
                data[start + size_at : start + size_at + 4] = (4096).to_bytes(4, "little")
            start += 4
    path = tmp_path / "understated.docx"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"is not a readable Word document \(Bad CRC-32"):
        read_document(path)


def test_uploads_of_word_documents_are_answered_from_and_refused_when_broken(tmp_path):
    data = write_docx(tmp_path / "lighthouse.docx").read_bytes()
    with ready_client(fake_engine(tmp_path / "index")) as client:
        reply = client.post("/api/documents", files={"file": ("lighthouse.docx", data, "application/octet-stream")})
        assert reply.status_code == 201, reply.text
        assert reply.json()["format"] == "docx" and reply.json()["title"] == "The keeper's log"
        listed = {d["id"]: d for d in client.get("/api/documents").json()["documents"]}
        assert listed["lighthouse"]["format"] == "docx"
        cited = client.post("/api/ask", json={"question": LIGHTHOUSE}).json()["citations"]
        assert cited[0]["document"] == "lighthouse", "the fake embedder matches the words"
        stored = client.get("/api/documents/lighthouse").json()["text"]
        assert stored[cited[0]["start"] : cited[0]["end"]] == cited[0]["text"] == LIGHTHOUSE

        for name, bad, detail in [
            ("broken.docx", b"PK\x03\x04 cut short", "broken.docx is not a readable Word document"),
            ("locked.docx", ole("EncryptionInfo"), "locked.docx is protected by a password"),
            ("notes.odt", data, "notes.odt is not a .txt, .md, .markdown, .html, .htm, .pdf or .docx file"),
        ]:
            reply = client.post("/api/documents", files={"file": (name, bad, "application/octet-stream")})
            assert reply.status_code == (415 if name.endswith(".odt") else 422), reply.text
            assert reply.json()["detail"].startswith(detail) and "\n" not in reply.json()["detail"]
        assert {d["id"] for d in client.get("/api/documents").json()["documents"]} == {ARTICLE.stem, "lighthouse"}


def test_rag_add_and_rag_documents_list_a_word_document_with_its_format(tmp_path, index_dir, capsys):
    code, _, err = rag(capsys, "add", "-q", str(write_docx(tmp_path / "lighthouse.docx")))
    assert code == 0, err
    code, out, err = rag(capsys, "documents")
    assert code == 0, err
    listed = [line.split("\t") for line in out.splitlines()]
    assert [(row[0], row[2], row[-1]) for row in listed if row[0] == "lighthouse"] == [
        ("lighthouse", "docx", "The keeper's log")
    ]


@pytest.mark.model
def test_a_word_document_beside_the_article_is_listed_and_cited_first(tmp_path, embedder):
    from rag.engine import Engine

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(ARTICLE, seeds / ARTICLE.name)
    write_docx(seeds / "lighthouse.docx")
    settings = Settings(index_dir=tmp_path / "index", seeds_dir=seeds, cache_dir=model_cache_dir())
    engine = Engine(settings, embedder=embedder)
    engine.build_index()
    with ready_client(engine) as client:
        listed = {d["id"]: d["format"] for d in client.get("/api/documents").json()["documents"]}
        assert listed == {ARTICLE.stem: "text", "lighthouse": "docx"}
        answer = client.post("/api/ask", json={"question": "How long did Elias Marrow keep the lighthouse?"}).json()
        first = answer["citations"][0]
        assert (first["document"], first["text"]) == ("lighthouse", LIGHTHOUSE)
        stored = client.get("/api/documents/lighthouse").json()["text"]
        assert stored[first["start"] : first["end"]] == LIGHTHOUSE
