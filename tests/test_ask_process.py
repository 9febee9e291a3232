"""`rag ask` as its own process: what it imports, and how it exits (without freeing what it
loaded, for speed: benchmarks/ask_latency.py)."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO

# Libraries the answering path has no use for: the torch backend and exporting the model,
# reading documents, serving, downloading. Each costs `rag ask` time to import.
UNNEEDED = (
    "requests",
    "robust_downloader",
    "torch",
    "sentence_transformers",
    "transformers",
    "huggingface_hub",
    "trafilatura",
    "lxml",
    "pypdf",
    "docx",
    "markdown_it",
    "fastapi",
    "uvicorn",
    "openai",
    "pymilvus",
)

# The fake embedder of the tests, registered in the child as conftest's fake_backend does.
FAKE = """
import sys
from tests.conftest import FakeEmbedder
from rag.embed.factory import EMBEDDERS
EMBEDDERS["fake"] = lambda settings: FakeEmbedder()
"""

ANSWER_THEN_LIST = """
from rag.cli import main
code = main(["ask", "Who met Vladimir Putin?"])
print(json.dumps({"code": code, "loaded": [name for name in UNNEEDED if name in sys.modules]}))
"""


def child(code: str, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Python running ``code`` with its output to pipes, buffered as a user's would be."""
    env = {k: v for k, v in (env or os.environ).items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def answered_with(code: str, env: dict | None = None) -> list[str]:
    """The unneeded libraries loaded by `rag ask` in a child process."""
    result = child(f"import json, sys\nUNNEEDED = {UNNEEDED!r}\n{code}{ANSWER_THEN_LIST}", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    *answer, last = result.stdout.splitlines()
    report = json.loads(last)
    assert report["code"] == 0 and "[1]" in "\n".join(answer), result.stdout
    return report["loaded"]


def test_rag_ask_imports_no_library_it_does_not_use(index_dir):
    assert answered_with(FAKE) == []


@pytest.mark.model
def test_rag_ask_on_the_default_model_imports_no_library_it_does_not_use(seeds_engine):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_INDEX_DIR=str(seeds_engine.settings.index_dir), RAG_CACHE_DIR=str(seeds_engine.settings.cache_dir))
    assert answered_with("", env) == []


def test_the_rag_command_exits_with_its_code_and_all_its_output(index_dir):
    """`rag` ends with os._exit: what it printed to a pipe is flushed first, and the code is kept."""
    run = FAKE + "from rag.cli import run\nrun()\n"
    listed = child(run, "documents", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["id"] for d in json.loads(listed.stdout)["documents"]] == ["000_8cb13a5d0c7818f1"]
    refused = child(run, "remove", "no-such-document")
    assert refused.returncode == 1
    assert "rag: error: no document 'no-such-document' in the index" in refused.stderr
