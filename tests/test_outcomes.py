"""The three outcomes of a question (an answer, the closest passage offered as such, not in the
documents) and the answer's confidence, on every surface: POST /api/ask plain and streamed,
/v1/chat/completions plain and streamed, the page without JavaScript, and `rag ask`. In process
on the fake embedder, the answers made to order (the fake model has no calibration); the page's
script is tested in a browser in test_page.py."""

import json
import re
from dataclasses import replace

import httpx
import openai
import pytest

from rag.answer.base import Answer, Citation
from rag.answer.extractive import MAY_NOT_SAY
from rag.cli import _print_answer
from rag.http.schemas import AskResponse

from .conftest import fake_engine, ready_client

ASKED = "Qui a rencontré Vladimir Poutine ?"  # answered from the bundled article with the fake model
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(TestClient, {outcome: Answer}): the app, and one answer of each outcome that its engine
    gives whatever it is asked ("answer ...", "closest ...", "none ...")."""
    engine = fake_engine(tmp_path_factory.mktemp("outcomes") / "index")
    with ready_client(engine) as client:
        real = engine.extract(ASKED)
        cited = real.citations[:2]
        assert cited, "the fake model cites sentences for it"
        answers = {
            "answer": replace(real, abstained=False, confidence=0.8731),
            "closest": replace(
                real,
                abstained=True,
                answer=f"{MAY_NOT_SAY}{cited[0].text} [1]",
                citations=cited,
                confidence=0.4162,
            ),
            "none": Answer(ASKED, True, f"The documents do not say. They are about: {HOSTILE}.", [], confidence=0.02),
        }
        original = engine.extract

        def extract(question, *args, **kwargs):
            outcome = question.split()[0]
            if outcome not in answers:
                return original(question)
            return replace(answers[outcome], question=question, resolved_question=question)  # read alone

        engine.extract = extract  # what the routes call, through the runtime's admission line
        yield client, answers


def test_the_outcome_follows_abstained_and_citations():
    cited = [Citation(1, "d", 0, 0, 5, "Hello", 0.5)]
    outcomes = [Answer("q", False, "a", cited), Answer("q", True, "a", cited), Answer("q", True, "a", [])]
    assert [answer.outcome for answer in outcomes] == ["answer", "closest", "none"]


@pytest.mark.parametrize("outcome", ["answer", "closest", "none"])
def test_the_api_body_ends_with_the_confidence_and_the_outcome(made, outcome):
    client, answers = made
    question = f"{outcome} please"
    body = client.post("/api/ask", json={"question": question}).json()
    fields = ["question", "abstained", "answer", "citations", "mode", "reason", "confidence", "resolved_question"]
    assert list(body) == [*fields, "history_cut", "outcome"]
    assert (body["outcome"], body["confidence"]) == (outcome, answers[outcome].confidence)
    assert body == replace(answers[outcome], question=question, resolved_question=question).to_dict()
    assert body["abstained"] is (outcome != "answer") and bool(body["citations"]) is (outcome != "none")
    streamed = client.post("/api/ask", json={"question": question, "stream": True})
    (event,) = [line for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert json.loads(event[6:]) == body, "the stream's answer event is the plain body"


def test_a_real_answer_says_its_outcome(made):
    client, _ = made
    body = client.post("/api/ask", json={"question": ASKED}).json()
    expected = "answer" if not body["abstained"] else "closest" if body["citations"] else "none"
    assert body["outcome"] == expected and body["confidence"] is None, "the fake model has no calibration"
    smalltalk = client.post("/api/ask", json={"question": "???"}).json()  # no letter or digit
    assert (smalltalk["outcome"], smalltalk["confidence"], smalltalk["citations"]) == ("none", None, [])


def test_the_schema_describes_the_confidence_and_the_outcome(made):
    client, _ = made
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AskResponse"]
    assert {"confidence", "outcome"} <= set(schema["required"])
    assert schema["properties"]["outcome"]["enum"] == ["answer", "closest", "none"]
    described = schema["properties"]["confidence"]["description"]
    assert "calibrated probability (0-1) that the first citation answers" in described
    assert "SQuAD 2.0" in described and "null when" in described
    assert {"type": "null"} in schema["properties"]["confidence"]["anyOf"]
    assert list(AskResponse.model_fields)[-4:] == ["confidence", "resolved_question", "history_cut", "outcome"]
    assert {"resolved_question", "history_cut"} <= set(schema["required"])
    assert "the question as it was searched" in schema["properties"]["resolved_question"]["description"]
    assert "X-History-Cut" in schema["properties"]["history_cut"]["description"]
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/ask", "/v1/chat/completions"):
        assert "X-History-Cut" in paths[path]["post"]["responses"]["200"]["headers"], path


@pytest.mark.parametrize("outcome", ["answer", "closest", "none"])
def test_the_openai_message_and_last_chunk_carry_them(made, outcome):
    client, answers = made
    api = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client, max_retries=0)
    messages = [{"role": "user", "content": f"{outcome} please"}]
    message = api.chat.completions.create(model="rag", messages=messages).choices[0].message
    assert (message.outcome, message.confidence) == (outcome, answers[outcome].confidence)
    assert message.abstained is (outcome != "answer") and message.content == answers[outcome].answer
    chunks = list(api.chat.completions.create(model="rag", messages=messages, stream=True))
    last = chunks[-1].choices[0].delta
    assert (last.outcome, last.confidence, last.mode) == (outcome, answers[outcome].confidence, "extractive")
    assert last.citations == message.citations
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == message.content


def turn_of(page: str) -> str:
    """The last answer turn of a page rendered without JavaScript."""
    return re.findall(r'<li class="turn answer[^"]*".*?</li>\s*(?=<li class="turn|</ol>)', page, re.DOTALL)[-1]


def form(client: httpx.Client, question: str) -> str:
    reply = client.post("/", data={"question": question})
    assert reply.status_code == 200
    return reply.text


def test_the_page_shows_the_closest_passage_as_such(made):
    client, answers = made
    turn = turn_of(form(client, "closest please"))
    assert 'class="turn answer abstained closest" data-abstained="true" data-outcome="closest"' in turn
    assert '<p class="who">Closest passage</p>' in turn and "Not in the documents" not in turn
    # Said once, then the passages with their markers: the answer's wording would repeat the first.
    assert '<p class="text">The documents may not say this directly.</p>' in turn
    assert turn.count(f">{answers['closest'].citations[0].text}</span>") == 1
    heading = "Closest passage" if len(answers["closest"].citations) == 1 else "Closest passages"
    assert f'<p class="closest-heading">{heading}</p>' in turn
    assert turn.count("data-citation=") == len(answers["closest"].citations)
    assert re.search(r'<p class="confidence" title="[^"]+">Confidence 0\.42</p>', turn)


def test_the_page_shows_not_in_the_documents_with_no_list(made):
    client, _ = made
    turn = turn_of(form(client, "none please"))
    assert 'data-abstained="true" data-outcome="none"' in turn and "closest" not in turn
    assert '<p class="who">Not in the documents</p>' in turn
    assert "data-citation" not in turn and "Confidence" not in turn
    assert HOSTILE not in turn and "&lt;img src=x onerror=alert(1)&gt;" in turn, "escaped"


def test_the_page_shows_an_answers_confidence_quietly(made):
    client, _ = made
    turn = turn_of(form(client, "answer please"))
    assert 'data-abstained="false" data-outcome="answer"' in turn
    assert '<p class="who">From the documents</p>' in turn
    assert turn.rstrip().endswith(
        '<p class="confidence" title="The calibrated probability that the first citation '
        'answers the question">Confidence 0.87</p>\n        </li>'
    )
    without = turn_of(form(client, ASKED))  # the fake model: no confidence, no line
    assert "Confidence" not in without and 'data-outcome="' in without


def test_rag_ask_prints_the_outcome_and_the_confidence(made, capsys):
    _, answers = made
    _print_answer(answers["answer"])
    out = capsys.readouterr().out
    assert out.startswith(answers["answer"].answer + "\n(confidence 0.87)\n\n[1] ")
    assert "Closest" not in out

    _print_answer(answers["closest"])
    out = capsys.readouterr().out
    heading = "Closest passage:" if len(answers["closest"].citations) == 1 else "Closest passages:"
    assert out.startswith(answers["closest"].answer + f"\n(confidence 0.42)\n\n{heading}\n[1] ")
    for citation in answers["closest"].citations:
        assert f"\n    {citation.text}\n" in out

    _print_answer(answers["none"])
    assert capsys.readouterr().out == answers["none"].answer + "\n", "no confidence for nothing cited"

    _print_answer(replace(answers["closest"], citations=answers["closest"].citations[:1], confidence=None))
    out = capsys.readouterr().out
    assert "\nClosest passage:\n[1] " in out and "confidence" not in out
