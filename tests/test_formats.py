"""Loaders on real files of each type, written by the tests: title, language, headings, pages
and exact offsets into the stored text."""

from __future__ import annotations

import pytest
from fpdf import FPDF

from rag.errors import InputError
from rag.ingest.discover import load_documents, read_document
from rag.ingest.segment import split_sentences

MARKDOWN = """---
title: Bees in trouble
date: 2026-05-01
---
# Why honeybee colonies are collapsing

Beekeepers lost **almost half** of their colonies last winter, according to a
[national survey](https://example.org/survey) published on Monday.

## The varroa mite

Scientists blame the *varroa* mite. Dr. Smith said the trend would continue.

- Pesticides weaken the bees.
- Cold springs shorten `foraging`.

| Year | Losses |
|------|--------|
| 2025 | 30 % |

```python
print("code is not prose")
```
"""

HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Bees in trouble | Example News</title></head>
<body><nav><a href="/">Home</a> <a href="/world">World news</a> <a href="/sport">Sport</a></nav>
<article><h1>Why honeybee colonies are collapsing</h1>
<p>Beekeepers lost almost half of their colonies last winter, according to a national survey
published on Monday. The losses were highest in the north.</p>
<h2>The varroa mite</h2>
<p>Scientists blame the <em>varroa</em> mite, a parasite that spreads viruses between bees.
Treatments have become less effective.</p>
<p>Dr. Smith said the trend would continue unless farmers change their practices.</p></article>
<footer>Copyright 2026 Example News. All rights reserved. <a href="/privacy">Privacy policy</a></footer>
</body></html>"""

PAGES = [
    (
        "Glaciers of the Alps",
        [
            "Swiss glaciers lost three percent of their volume in 2026, the second largest loss on record. "
            "Researchers measured the ice with radar from helicopters flying over forty glaciers.",
            "The Rhone glacier retreated by sixty metres.",
        ],
    ),
    (None, ["On the second page, the authors recommend cutting emissions quickly to save the remaining ice."]),
]


def write_pdf(path, pages=PAGES, title="Glacier report"):
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    for heading, paragraphs in pages:
        pdf.add_page()
        if heading:
            pdf.set_font("helvetica", size=16)
            pdf.cell(text=heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, text=paragraph)
            pdf.ln(4)
    pdf.output(str(path))
    return path


def sentences_of(document):
    """Every sentence's text, checked to be exactly the stored text at its offsets."""
    texts = []
    for sentence in split_sentences(document):
        text = document.text[sentence.start : sentence.end]
        assert text == text.strip() and text
        texts.append(text)
    return texts


def headings_of(document):
    return [(document.text[h.start : h.end], h.level) for h in document.headings]


def test_markdown_is_parsed_headings_are_sections_and_markup_is_not_text(tmp_path):
    path = tmp_path / "bees.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    document = read_document(path)
    assert (document.format, document.language, document.title) == ("markdown", "en", "Bees in trouble")
    assert headings_of(document) == [("Why honeybee colonies are collapsing", 1), ("The varroa mite", 2)]
    for markup in ("#", "**", "*varroa*", "`", "](", "https://", "---", "date:", "print("):
        assert markup not in document.text, markup
    texts = sentences_of(document)
    assert texts[:4] == [
        "Beekeepers lost almost half of their colonies last winter, according to a national survey "
        "published on Monday.",
        "Scientists blame the varroa mite.",
        "Dr. Smith said the trend would continue.",  # English rules: "Dr." ends no sentence
        "Pesticides weaken the bees.",
    ]
    assert not any("collapsing" in text for text in texts), "a heading is never cited"


def test_markdown_without_front_matter_takes_its_first_heading_as_title(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("Intro line.\n\n## Second *level* title\n\nText here.", encoding="utf-8")
    assert read_document(path).title == "Second level title"


def test_html_keeps_the_main_content_and_drops_navigation_and_footer(tmp_path):
    path = tmp_path / "bees.html"
    path.write_text(HTML, encoding="utf-8")
    document = read_document(path)
    assert (document.format, document.language) == ("html", "en")
    assert document.title == "Why honeybee colonies are collapsing", "the article's heading, not the site's name"
    assert headings_of(document) == [("Why honeybee colonies are collapsing", 1), ("The varroa mite", 2)]
    for boilerplate in ("World news", "Sport", "All rights reserved", "Privacy policy", "<"):
        assert boilerplate not in document.text, boilerplate
    assert "Scientists blame the varroa mite, a parasite that spreads viruses between bees." in sentences_of(document)


def test_pdf_text_comes_with_its_pages_and_lines_joined_into_sentences(tmp_path):
    document = read_document(write_pdf(tmp_path / "glaciers.pdf"))
    assert (document.format, document.language, document.title) == ("pdf", "en", "Glacier report")
    assert headings_of(document) == [("Glaciers of the Alps", 2)]
    assert len(document.pages) == 2 and document.pages[0] == 0
    second = document.text[document.pages[1] :]
    assert second.startswith("On the second page, the authors recommend")
    texts = sentences_of(document)
    assert "Researchers measured the ice with radar from helicopters flying over forty glaciers." in texts
    assert texts[-1] == "On the second page, the authors recommend cutting emissions quickly to save the remaining ice."


def test_numbered_headings_of_a_pdf_stand_alone(tmp_path):
    pages = [
        ("Regional line: report 2025", []),
        (None, ["Regional observatory, published in March 2026"]),
        (None, ["1. Presentation"]),
        (None, ["The line links the town to the plateau over 74 kilometres. It reopened on 7 July 2024."]),
    ]
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for heading, paragraphs in pages:
        for line in [heading, *paragraphs] if heading else paragraphs:
            pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    path = tmp_path / "report.pdf"
    pdf.output(str(path))
    document = read_document(path)
    assert [text for text, _ in headings_of(document)] == [
        "Regional line: report 2025",
        "Regional observatory, published in March 2026",
        "1. Presentation",
    ]
    assert sentences_of(document)[0] == "The line links the town to the plateau over 74 kilometres."


def test_a_pdf_without_a_title_takes_its_first_heading(tmp_path):
    assert read_document(write_pdf(tmp_path / "untitled.pdf", title=None)).title == "Glaciers of the Alps"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("broken.pdf", b"%PDF-1.7 not really", "is not a readable PDF"),
        ("empty.html", b"<html><head><title>x</title></head><body><script>go()</script></body></html>", "no main text"),
        ("markup.md", b"---\n\n***\n", "holds no text"),
        ("latin1.md", b"caf\xe9", "is not UTF-8 text"),
    ],
)
def test_a_file_without_usable_text_is_refused_in_one_line(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=reason) as refused:
        load_documents([path])
    assert "\n" not in str(refused.value)


def test_a_pdf_of_images_only_says_it_needs_ocr(tmp_path):
    pdf = FPDF()
    pdf.add_page()
    pdf.output(str(tmp_path / "scan.pdf"))
    with pytest.raises(InputError, match=r"holds no text .*OCR"):
        read_document(tmp_path / "scan.pdf")


def test_each_document_gets_its_language_and_its_language_rules(tmp_path):
    (tmp_path / "de.md").write_text(
        "# Bienen\n\nDie Imker verloren im Winter fast die Hälfte ihrer Völker. Das sagte Dr. Müller am Montag.",
        encoding="utf-8",
    )
    (tmp_path / "fr.txt").write_text(
        "Les apiculteurs ont perdu près de la moitié de leurs colonies. Selon M. Dupont, cela va continuer.",
        encoding="utf-8",
    )
    documents, _ = load_documents([tmp_path])
    assert {d.id: d.language for d in documents} == {"de": "de", "fr": "fr"}
    by_id = {d.id: sentences_of(d) for d in documents}
    assert by_id["de"][1] == "Das sagte Dr. Müller am Montag."
    assert by_id["fr"][1] == "Selon M. Dupont, cela va continuer."
    forced, _ = load_documents([tmp_path / "fr.txt"], language="it")
    assert forced[0].language == "it", "the language can be given"


def test_files_of_other_types_among_documents_are_skipped_and_named_hidden_ones_ignored(tmp_path):
    (tmp_path / "good.md").write_text("# Title\n\nOne sentence.", encoding="utf-8")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.txt").write_text("not a document", encoding="utf-8")
    (tmp_path / ".notes.txt").write_text("hidden", encoding="utf-8")
    documents, skipped = load_documents([tmp_path])
    assert [d.id for d in documents] == ["good"]
    assert [(s.path, s.reason) for s in skipped] == [
        (
            str(tmp_path / "photo.png"),
            f"{tmp_path / 'photo.png'} is not a .txt, .md, .markdown, .html, .htm, .pdf or .docx file",
        )
    ]


def test_anything_but_a_regular_file_is_refused_at_once_or_skipped_and_named(tmp_path):
    import os

    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)  # reading it would wait for a writer forever
    with pytest.raises(InputError, match=r"pipe\.txt is not a regular file"):
        load_documents([pipe])
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(InputError, match=r"zero\.txt is not a regular file"):
        load_documents([zero])
    (tmp_path / "good.txt").write_text("One sentence.", encoding="utf-8")
    documents, skipped = load_documents([tmp_path])
    assert [d.id for d in documents] == ["good"]
    assert sorted((s.path, s.reason) for s in skipped) == [
        (str(pipe), f"{pipe} is not a regular file"),
        (str(zero), f"{zero} is not a regular file"),
    ]


def test_a_folder_that_cannot_be_read_is_named(tmp_path, monkeypatch):
    import os

    (tmp_path / "good.txt").write_text("One sentence.", encoding="utf-8")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "secret.txt").write_text("Hidden from us.", encoding="utf-8")
    scandir = os.scandir

    def refusing(path="."):  # as chmod 000 does for anyone but root
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    documents, skipped = load_documents([tmp_path])
    assert [d.id for d in documents] == ["good"]
    locked = tmp_path / "locked"
    assert [(s.path, s.reason) for s in skipped] == [
        (str(locked), f"cannot read the folder {locked}: Permission denied")
    ]


@pytest.mark.parametrize("name", ["bom.txt", "bom.md"])
def test_a_byte_order_mark_is_not_text(tmp_path, name):
    path = tmp_path / name
    path.write_bytes("\ufeffTitle line\n\nA sentence.".encode())
    document = read_document(path)
    assert document.title == "Title line" and not document.text.startswith("\ufeff")
