"""Word documents (.docx) through python-docx: the body's paragraphs and tables in document
order (content controls included), paragraphs styled Title or Heading 1-9 as the sections, each
table cell's paragraphs as blocks of their own, text as Word shows it with tracked changes
accepted. Tables of contents, hidden text, the prompts of empty form fields, headers, footers,
footnotes, comments and text boxes are left out; so are symbols (w:sym) and equations."""

from __future__ import annotations

import io
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import BusyError, InputError
from .layout import Extracted, Layout

# Budgets checked in the zip's directory before python-docx reads a byte of it: it unpacks every
# part into memory and parses the XML ones with lxml (31 MiB of XML: 1.7 s and 278 MiB peak as
# prose; 15 s and 725 MiB as empty paragraphs, the costliest; benchmarks/docx_limits.py).
# zipfile stops unpacking a part at the size the directory gives (one that unpacks further fails
# its CRC), so a small file that unpacks to gigabytes is refused at the cost of reading its
# directory (plain python-docx: 256 MiB of XML took 5.7 GiB, then a 500).
MAX_XML_BYTES = 32 * 2**20  # all XML parts unpacked: 10 MiB hold 100,000 paragraphs of a line (9 MB of text)
MAX_PACKAGE_BYTES = 128 * 2**20  # all parts unpacked, pictures included
MAX_PARTS = 2_000  # python-docx walks the parts with a list of those seen: 20,000 took 6.6 s
MAX_READERS = 2  # files read at once (uploads run in threads): each may take a core and ~730 MiB
MAX_WAIT = 30  # seconds a file waits for a reader: one at the budgets takes up to ~18 s
_READERS = threading.BoundedSemaphore(MAX_READERS)
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a compound file: a .doc, or a .docx encrypted by Office
_ENCRYPTED = "EncryptionInfo".encode("utf-16-le")  # the stream an encrypted one holds
_XML_PARTS = (".xml", ".rels")
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_P, _TC, _SDT, _SDT_CONTENT = f"{_W}p", f"{_W}tc", f"{_W}sdt", f"{_W}sdtContent"
_BLOCKS = (_P, f"{_W}tbl", f"{_W}tr", _TC, _SDT, f"{_W}customXml")  # paragraphs, and what holds them
_GALLERY = f"{_W}sdtPr/{_W}docPartObj/{_W}docPartGallery"  # what kind of building block a control holds
# What python-docx reads as a run's text, in runs anywhere in the paragraph but in a text box's
# own paragraphs, a ruby's phonetic guide, text deleted or moved away (tracked changes), hidden
# text (w:vanish, which Word neither shows nor prints) and the grey prompt of an empty form field.
_OFF = "@w:val='0' or @w:val='false' or @w:val='off'"
_RUN_TEXT = (
    ".//w:r[not(ancestor::w:txbxContent or ancestor::w:rt or ancestor::w:del or ancestor::w:moveFrom"
    f" or w:rPr/w:vanish[not({_OFF})] or ancestor::w:sdt[w:sdtPr/w:showingPlcHdr[not({_OFF})]])]"
    "/*[self::w:t or self::w:tab or self::w:br or self::w:cr or self::w:noBreakHyphen or self::w:ptab]"
)
_BR = f"{_W}br"
# A line of a table of contents made as a field, not a content control (older files, generators):
# styled "toc 1".."toc 9", it repeats a heading with its page number.
_CONTENTS = 0
_HEADINGS = {"Title": 1} | {f"Heading {level}": min(level, 6) for level in range(1, 10)}


def _check_package(data: bytes, source: Path) -> None:
    """InputError unless ``data`` is a zip within the budgets."""
    if data.startswith(_OLE):
        if _ENCRYPTED in data:
            raise InputError(f"{source} is protected by a password; save a copy without one and add that")
        raise InputError(f"{source} is an old Word 97-2003 document; save it as .docx (Word Document) and add that")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            parts = package.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise InputError(
            f"{source} is not a readable Word document (not a zip file, or cut short: {exc}); save it again as "
            ".docx and add that"
        ) from None
    if len(parts) > MAX_PARTS:
        raise InputError(
            f"{source} holds over the limit of {MAX_PARTS:,} parts; save its text as a .txt file to add it"
        )
    if sum(part.file_size for part in parts if part.filename.endswith(_XML_PARTS)) > MAX_XML_BYTES:
        raise InputError(
            f"{source} unpacks to over the limit of {MAX_XML_BYTES // 2**20} MiB of XML; split it into "
            "smaller documents, or save its text as a .txt file"
        )
    if sum(part.file_size for part in parts) > MAX_PACKAGE_BYTES:
        raise InputError(
            f"{source} unpacks to over the limit of {MAX_PACKAGE_BYTES // 2**20} MiB; remove or compress "
            "its pictures, or save its text as a .txt file"
        )


def _paragraphs(body):
    """The w:p elements of the body in document order, those of tables (row by row, a merged
    cell once) and of content controls (w:sdt) and custom XML included, but not a table of
    contents (its lines are the headings again, with page numbers). python-docx's own walk
    (iter_inner_content) skips content controls, and its row.cells repeats a cell once per grid
    column it spans (w:gridSpan, any number) and finds a vertically merged cell by recursion up
    to the merge's first row (2,000 merged rows: RecursionError after 20 s). A stack, not
    recursion: each level of generators would cost every paragraph below it a step."""
    stack = [body.iterchildren(*_BLOCKS)]
    while stack:
        element = next(stack[-1], None)
        if element is None:
            stack.pop()
        elif element.tag == _P:
            yield element
        elif element.tag == _SDT:
            content, gallery = element.find(_SDT_CONTENT), element.find(_GALLERY)
            contents = gallery is not None and gallery.get(f"{_W}val", "").startswith("Table of Contents")
            if content is not None and not contents:
                stack.append(content.iterchildren(*_BLOCKS))
        elif element.tag != _TC or element.vMerge != "continue":  # a continued cell holds none of its text
            stack.append(element.iterchildren(*_BLOCKS))  # a table, row, cell or custom XML


@lru_cache(maxsize=1)
def _run_text():
    """Compiled once: python-docx's own xpath() compiles at each call (9 s a million paragraphs, this 1 s)."""
    from lxml import etree

    return etree.XPath(_RUN_TEXT, namespaces={"w": _W[1:-1]})


def _text(paragraph) -> str:
    """A paragraph's text as Word shows it (python-docx's elements give a tab as "\\t", a break as
    "\\n"...). Its Paragraph.text reads only the runs directly in it or in a hyperlink, and left
    out tracked insertions, fields' results and inline content controls, mid-sentence."""
    # A page or column break is "" to python-docx: the words on either side would run together.
    return "".join(str(item) or (" " if item.tag == _BR else "") for item in _run_text()(paragraph))


def _read(data: bytes, source: Path) -> tuple[Layout, str | None]:
    """The blocks of a package within the budgets, and its title from its core properties."""
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.opc.constants import RELATIONSHIP_TYPE
    from lxml import etree

    layout = Layout()
    try:
        document = docx.Document(io.BytesIO(data))
        # Looked up once: python-docx finds a paragraph's style by a search through all styles
        # (with Paragraph.style and .text, 100,000 paragraphs took 44 s; here 0.6 s).
        levels = {
            style.style_id: _HEADINGS.get(style.name, _CONTENTS if style.name.lower().startswith("toc ") else None)
            for style in document.styles
            if style.type == WD_STYLE_TYPE.PARAGRAPH
        }
        for paragraph in _paragraphs(document.element.body):
            level = levels.get(paragraph.style)
            if level == _CONTENTS:
                continue
            if level:
                layout.heading(_text(paragraph), level)
            else:
                layout.paragraph(_text(paragraph))
        # python-docx makes up core properties titled "Word Document" for a file without them.
        try:
            document.part.package.part_related_by(RELATIONSHIP_TYPE.CORE_PROPERTIES)
            title = document.core_properties.title
        except KeyError:
            title = None
    # A broken or hostile file makes python-docx, lxml or zipfile raise nearly anything
    # (KeyError for a missing part, XMLSyntaxError past lxml's limits, BadZipFile on a bad
    # CRC...): all of it is the file's fault, none of it a server error.
    except Exception as exc:
        if isinstance(exc, etree.XMLSyntaxError) and exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            raise InputError(
                f"{source} goes past what the XML parser reads (elements nested 256 deep, such as tables "
                "inside tables 80 deep, or 10 MB of text in one run); flatten or split it to add it"
            ) from exc
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(
            f"{source} is not a readable Word document ({detail}); save it again as .docx and add that"
        ) from exc
    return layout, title


@dataclass(frozen=True)
class DocxLoader:
    format: str = "docx"

    def extract(self, data: bytes, source: Path) -> Extracted:
        _check_package(data, source)
        if not _READERS.acquire(timeout=MAX_WAIT):  # the others may each take that long
            raise BusyError(f"other Word documents are being read; try {source.name} again in a moment")
        try:
            layout, title = _read(data, source)
        finally:
            _READERS.release()
        try:
            return layout.extracted(source, title)
        except InputError:
            raise InputError(
                f"{source} holds no text in its body (text boxes, headers and footers are not read); "
                "put its text in paragraphs or tables to add it"
            ) from None
