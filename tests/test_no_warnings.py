"""A normal run says nothing it need not: `rag index` on a document of each format and `rag ask`,
each in a new process with every Python warning shown (-W default), print nothing to stderr: no
library's warning (lxml's html_clean, a tokenizer's, onnxruntime's, ...). The default model."""

import os
import subprocess
import sys

import pytest

from .conftest import ARTICLE, REPO, model_cache_dir
from .test_docx import write_docx
from .test_formats import HTML, MARKDOWN, write_pdf


def rag(*argv, env):
    result = subprocess.run(
        [sys.executable, "-W", "default", "-m", "rag", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.model
def test_rag_index_and_rag_ask_print_no_library_warning(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "article.txt").write_bytes(ARTICLE.read_bytes())
    (folder / "bees.html").write_text(HTML, encoding="utf-8")
    (folder / "notes.md").write_text(MARKDOWN, encoding="utf-8")
    write_pdf(folder / "report.pdf")
    write_docx(folder / "keeper.docx")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_INDEX_DIR=str(tmp_path / "index"), RAG_CACHE_DIR=str(model_cache_dir()))
    indexed = rag("index", "-q", str(folder), env=env)
    assert indexed.stdout.startswith("Indexed 5 documents") and indexed.stderr == "", indexed.stderr[-2000:]
    asked = rag("ask", "Why are honeybee colonies collapsing?", env=env)
    assert "bees, sentence" in asked.stdout and asked.stderr == "", asked.stderr[-2000:]
