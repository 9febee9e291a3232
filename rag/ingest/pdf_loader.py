"""PDF through pypdf: the text of each page, its printed lines joined back into paragraphs."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import resource
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import BusyError, InputError
from .layout import Extracted, Layout

# Budgets for one PDF. A client waits on it (an upload, `rag add`, `rag index`), pypdf is
# slow (about 1 MB of content, 100,000 operators a second here) and has steps we cannot interrupt
# (a font's CMap, a form's stream): a file small on disk but costly to read must be refused soon.
MAX_PAGE_BYTES = 8 * 2**20  # a page's decoded content: a page of text is 5-50 KB, a detailed figure a few MiB
MAX_FILE_BYTES = 32 * 2**20  # all pages, a stream counted for each page that draws it: a 1,000-page book is ~20 MiB
MAX_PAGE_OPERATORS = 200_000  # forms included: a dense page of text has under 10,000, a plot of 50,000 points fits
MAX_SECONDS = 30  # wall time per file, then the worker is killed: a 1,000-page book reads in ~20 s here
MAX_MEMORY = 2**30  # the worker's address space, plus twice the file: ~45 MiB idle, ~300 MiB on an 8 MiB page
MAX_READERS = 2  # workers at once (uploads run in threads): each may take a core and MAX_MEMORY
# pypdf decodes each stream (fonts and forms too) up to these limits, 75 MB by default.
_DECODED_LIMITS = (
    "zlib_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "brotli_maximum_output_length",
)
_WHAT_TO_DO = "split it into smaller PDFs, or add its text as a .txt file"
# Each file is read in a process forked from multiprocessing's fork server, which has pypdf loaded
# (~30 ms a file; the first starts the server, ~0.3 s): only a process can be stopped at any step
# and have its memory capped. Not plain fork: our server runs threads (ONNX Runtime, uvicorn).
_WORKERS = multiprocessing.get_context("forkserver")
_WORKERS.set_forkserver_preload(["pypdf", "pypdf.filters", __name__])
_READERS = threading.BoundedSemaphore(MAX_READERS)

_ENDS_SENTENCE = tuple(".!?:;…»”\"'")
# A line much shorter than the page's longest ends its paragraph (its last line), or stands
# alone (a heading) when it does not end a sentence and the next line starts a new one: with a
# capital, or with a digit, as a numbered heading does ("1. Présentation"); else a report's
# subtitle and its first heading were glued to the first sentence of the text.
_SHORT_LINE = 0.75


def _starts_anew(line: str) -> bool:
    return line[:1].isupper() or line[:1].isdigit()


def _add_page(layout: Layout, text: str) -> None:
    lines = [line.strip() for line in text.splitlines()]
    width = max((len(line) for line in lines), default=0)
    paragraph: list[str] = []

    def flush() -> None:
        block = "".join(paragraph)
        paragraph.clear()
        if any(char.isalpha() for char in block):  # page numbers and rules are not text
            layout.paragraph(block)

    for number, line in enumerate(lines):
        if not line:
            flush()
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        short = len(line) < _SHORT_LINE * width
        if short and not paragraph and not line.endswith(_ENDS_SENTENCE) and _starts_anew(following):
            flush()
            layout.heading(line, level=2)
            continue
        # A line broken after a hyphen joins the next without a space; others with one.
        paragraph.append(line if line.endswith("-") else line + " ")
        if short and line.endswith(_ENDS_SENTENCE):
            flush()
    flush()


class _Budget:
    """The limits for one file, and what reading it has cost so far; InputError as soon as it is
    over one. Built in the caller, so that the worker gets the values of the moment."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.page_bytes = MAX_PAGE_BYTES
        self.file_bytes = MAX_FILE_BYTES
        self.page_operators = MAX_PAGE_OPERATORS
        self.memory = MAX_MEMORY
        self.read_bytes = 0
        self.page = 0
        self.operators = 0

    def over(self, limit: str) -> InputError:
        return InputError(f"{self.source} is over the limit of {limit}; {_WHAT_TO_DO}")

    def start_page(self, page) -> None:
        from pypdf.errors import LimitReachedError

        self.page += 1
        self.operators = 0
        page_limit = f"{self.page_bytes / 2**20:g} MiB of content on page {self.page}"
        try:
            contents = page.get_contents()
        except LimitReachedError as exc:
            if "decompressing" in str(exc):  # pypdf stopped decoding at our budget
                raise self.over(page_limit) from None
            raise
        size = len(contents.get_data()) if contents is not None else 0
        if size > self.page_bytes:
            raise self.over(page_limit)
        self.read_bytes += size
        if self.read_bytes > self.file_bytes:
            raise self.over(f"{self.file_bytes / 2**20:g} MiB of page content per file at page {self.page}")

    def count(self, *_operation) -> None:
        """pypdf's visitor, called before each operator of the page and of the forms it draws."""
        self.operators += 1
        self.check()

    def check(self) -> None:
        # Checked again after each page: pypdf catches what the visitor raises inside a form.
        if self.operators > self.page_operators:
            raise self.over(f"{self.page_operators:,} operators on page {self.page}")

    def read(self, data: bytes) -> tuple[list[str], str | None]:
        """The text of each page and the title, read by pypdf within the budgets."""
        from pypdf import PdfReader, apply_configuration
        from pypdf.errors import LimitReachedError

        logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings name no file; ours do
        texts = []
        try:
            # pypdf parses a whole content stream before the visitor sees its first operator: five
            # tokens (operators and operands) an operator bounds that step (2,000,000 by default).
            limits = dict.fromkeys(_DECODED_LIMITS, self.page_bytes)
            with apply_configuration(stream_parsing_work_maximum_count=5 * self.page_operators, **limits):
                reader = PdfReader(io.BytesIO(data))
                if reader.is_encrypted:
                    raise InputError(f"{self.source} is an encrypted PDF; save a copy without a password and add that")
                for page in reader.pages:
                    self.start_page(page)
                    texts.append(page.extract_text(visitor_operand_before=self.count) or "")
                    self.check()
                return texts, reader.metadata.title if reader.metadata else None
        except InputError:
            raise
        except MemoryError:
            raise self.over(f"{self.memory // 2**20:,} MiB of memory") from None
        # A hostile or broken file makes pypdf raise nearly anything (its own errors, RecursionError,
        # AssertionError, zlib.error...): all of it is the file's fault, none of it a server error.
        except Exception as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            if isinstance(exc, LimitReachedError):
                raise InputError(f"{self.source} is over a limit of the PDF reader ({detail}); {_WHAT_TO_DO}") from exc
            raise InputError(f"{self.source} is not a readable PDF ({detail})") from exc


def _work(budget: _Budget, data: bytes, sender) -> None:
    """In the worker: the pages' texts and the title, or the refusal, as JSON (not pickle: the
    reply comes from a process that read a hostile file)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)  # a lower one set by the operator stays
    limit = budget.memory + 2 * len(data)  # the file is held twice: as sent, and in pypdf's reader
    resource.setrlimit(resource.RLIMIT_AS, (hard if 0 <= hard < limit else limit, hard))
    try:
        texts, title = budget.read(data)
        reply = {"texts": texts, "title": title}
    except InputError as exc:
        reply = {"refused": str(exc)}
    with sender:
        sender.send_bytes(json.dumps(reply).encode())


def _read_in_worker(data: bytes, source: Path) -> dict:
    receiver, sender = _WORKERS.Pipe(duplex=False)
    worker = _WORKERS.Process(target=_work, args=(_Budget(source), data, sender), daemon=True)
    with receiver:
        worker.start()
        sender.close()
        try:
            if not receiver.poll(MAX_SECONDS):
                raise InputError(f"{source} took over the limit of {MAX_SECONDS:g} s to read; {_WHAT_TO_DO}")
            return json.loads(receiver.recv_bytes())
        except EOFError:  # it died without a word: killed for memory, or a crash in a C library
            worker.join()
            raise InputError(f"{source} stopped the PDF reader (exit code {worker.exitcode}); {_WHAT_TO_DO}") from None
        finally:
            worker.kill()
            worker.join()


@dataclass(frozen=True)
class PdfLoader:
    format: str = "pdf"

    def extract(self, data: bytes, source: Path) -> Extracted:
        if not _READERS.acquire(timeout=MAX_SECONDS):  # the others may each take that long
            raise BusyError(f"other PDFs are being read; try {source.name} again in a moment")
        try:
            reply = _read_in_worker(data, source)
        finally:
            _READERS.release()
        if "refused" in reply:
            raise InputError(reply["refused"])
        layout = Layout()
        for text in reply["texts"]:
            layout.page()
            _add_page(layout, text)
        try:
            return layout.extracted(source, reply["title"])
        except InputError:
            raise InputError(f"{source} holds no text (a scanned PDF needs OCR first)") from None
