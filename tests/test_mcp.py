"""The MCP server (rag/mcp_server.py): its tools and resources with the SDK's own client, in
process on the fake embedder; /mcp on the app behind the key and the host list; and, with the
real model, `rag mcp` over stdio and /mcp on a real `rag serve`."""

import json
import logging
import sys

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from rag.mcp_server import MAX_SPAN, Gate, create_server

from .conftest import REPO, call, fake_engine, model_cache_dir, rag, ready_client, running_server

KEY = "a-key-of-twenty-chars"
QUESTION = "What did Putin demand?"
JSON_RPC = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = fake_engine(tmp_path_factory.mktemp("mcp") / "index")
    engine.build_index()
    return engine


def session(server, work, seconds=60):
    """What ``work(client)`` returns, with the SDK's client connected to ``server``."""

    async def run():
        with anyio.fail_after(seconds):
            async with Client(server) as client:
                return await work(client)

    return anyio.run(run)


def tool(engine, name, arguments):
    return tool_through(Gate(engine), name, arguments)


def tool_through(gate, name, arguments):
    return session(create_server(gate), lambda client: client.call_tool(name, arguments))


def test_the_tools_say_their_limits(engine):
    listed = session(create_server(Gate(engine)), lambda client: client.list_tools())
    tools = {t.name: t for t in listed.tools}
    assert set(tools) == {"ask", "search", "list_documents", "read_passage"}
    question = tools["ask"].input_schema["properties"]["question"]
    assert (question["minLength"], question["maxLength"]) == (1, 1000)
    top_k = tools["search"].input_schema["properties"]["top_k"]["anyOf"][0]
    assert (top_k["minimum"], top_k["maximum"]) == (1, 10)
    assert all(t.annotations.read_only_hint and "\n" not in t.description for t in tools.values())
    assert "citations" in tools["ask"].output_schema["properties"]


def test_ask_answers_as_the_api_does_with_titles(engine):
    result = tool(engine, "ask", {"question": QUESTION, "top_k": 2})
    expected = engine.answer(QUESTION, 2).to_dict()
    assert not result.is_error
    reply = result.structured_content
    for field in ("answer", "abstained", "outcome", "confidence", "mode"):
        assert reply[field] == expected[field]
    assert [{k: c[k] for k in expected["citations"][0]} for c in reply["citations"]] == expected["citations"]
    title = engine.index.listed[expected["citations"][0]["document"]].title
    assert {c["title"] for c in reply["citations"]} == {title}


def test_an_abstention_is_a_result_not_an_error(engine):
    result = tool(engine, "ask", {"question": "???"})
    assert not result.is_error
    assert result.structured_content["abstained"] is True
    assert result.structured_content["outcome"] == "none"


@pytest.mark.parametrize(
    ("name", "arguments", "says"),
    [
        ("ask", {}, "question: Field required"),
        ("ask", {"question": "x" * 1001}, "question: String should have at most 1000 characters"),
        ("ask", {"question": "Who?", "top_k": 11}, "top_k: Input should be less than or equal to 10"),
        ("ask", {"question": "   "}, "the question is empty"),
        ("search", {"query": "Putin", "top_k": 0}, "top_k: Input should be greater than or equal to 1"),
        ("search", {"query": "???"}, "the question holds no words to look up"),  # as ask abstains on it
        ("search", {"query": "🙂 !!!"}, "the question holds no words to look up"),
        ("read_passage", {"document": "nope", "start": 0, "end": 5}, "there is no document 'nope'"),
        ("read_passage", {"document": "000_8cb13a5d0c7818f1", "start": 9, "end": 5}, "0 <= start <= end <= 4871"),
        ("read_passage", {"document": "000_8cb13a5d0c7818f1", "start": 0, "end": 4800}, f"at most {MAX_SPAN}"),
        ("read_passage", {"document": "000_8cb13a5d0c7818f1", "start": 0, "end": 1, "context": 9999}, "context"),
    ],
)
def test_bad_input_is_a_one_line_tool_error(engine, name, arguments, says):
    result = tool(engine, name, arguments)
    assert result.is_error
    text = result.content[0].text
    assert says in text
    assert "\n" not in text and "Traceback" not in text and "input_value" not in text


def test_search_lists_documents_and_reads_passages(engine):
    async def work(client):
        return (
            await client.call_tool("search", {"query": QUESTION, "top_k": 4}),
            await client.call_tool("list_documents", {}),
            await client.call_tool("read_passage", {"document": "000_8cb13a5d0c7818f1", "start": 100, "end": 150}),
            await client.read_resource("rag://documents/000_8cb13a5d0c7818f1"),
        )

    found, listed, passage, resource = session(create_server(Gate(engine)), work)
    expected = engine.search(QUESTION, 4)
    assert [(r["document"], r["start"], r["score"]) for r in found.structured_content["results"]] == [
        (c.document, c.start, c.score) for c in expected
    ]
    assert listed.structured_content["documents"][0] == {
        **{key: value for key, value in engine.documents()[0].items() if key != "sha256"},
        "uri": "rag://documents/000_8cb13a5d0c7818f1",
    }
    text = engine.index.documents["000_8cb13a5d0c7818f1"].text
    assert resource.contents[0].text == text
    read = passage.structured_content
    assert (read["start"], read["end"]) == (0, 450)  # 300 characters each side, cut at the start
    assert read["text"] == text[0:450]


def test_every_document_is_a_listed_resource_whatever_its_name(tmp_path):
    """Clients such as Claude Desktop offer only listed resources; ids are file names, which may
    hold "?", "#", "&" or spaces: the URIs given are percent-encoded and read back."""
    engine = fake_engine(tmp_path / "index")
    engine.build_index()
    odd = tmp_path / "Q&A #3 what?.txt"
    odd.write_text("The keeper of the lighthouse wrote in green ink. He kept a log.", encoding="utf-8")
    engine.add_documents([odd])

    async def work(client):
        listed = await client.list_resources()
        documents = await client.call_tool("list_documents", {})
        return listed, documents, [await client.read_resource(r.uri) for r in listed.resources]

    listed, documents, read = session(create_server(Gate(engine)), work)
    ids = [d["id"] for d in engine.documents()]
    assert [r.name for r in listed.resources] == ids and len(ids) == 2
    assert [str(r.uri) for r in listed.resources] == [d["uri"] for d in documents.structured_content["documents"]]
    assert [contents.contents[0].text for contents in read] == [engine.index.documents[i].text for i in ids]


def test_an_unknown_document_resource_is_not_found(engine):
    from mcp.shared.exceptions import MCPError

    async def work(client):
        try:
            await client.read_resource("rag://documents/nope")
        except MCPError as exc:
            return exc

    refused = session(create_server(Gate(engine)), work)
    assert "there is no document 'nope'" in str(refused)


def test_the_server_leaves_logging_as_it_was(engine):
    """The SDK's MCPServer calls logging.basicConfig: `rag serve` printed each of its lines twice,
    and every library's INFO messages (a line per MCP request)."""
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    root.handlers.clear()  # as in `rag serve` and `rag mcp`; pytest's own handlers would hide the change
    try:
        create_server(Gate(engine))
        assert (root.handlers, root.level) == ([], kept[1])
    finally:
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])


def test_rag_mcp_without_an_index_says_so_on_stderr(tmp_path, monkeypatch, fake_backend, capsys):
    monkeypatch.delenv("RAG_INDEX_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = rag(capsys, "mcp")
    assert (code, out) == (1, "")
    assert "no index in" in err and "`rag index` builds one" in err


def test_http_mcp_needs_the_key(tmp_path):
    with ready_client(fake_engine(tmp_path / "index", api_key=KEY)) as client:
        refused = client.post("/mcp", json=TOOLS_LIST, headers=JSON_RPC)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        for header in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
            answered = client.post("/mcp", json=TOOLS_LIST, headers={**JSON_RPC, **header})
            assert answered.status_code == 200, answered.text
            assert {t["name"] for t in answered.json()["result"]["tools"]} >= {"ask", "read_passage"}
        keyed = {**JSON_RPC, "Authorization": f"Bearer {KEY}"}
        # Stateless: a GET's event stream would stay silent for as long as the client held it.
        assert client.get("/mcp", headers=keyed).status_code == 405
        assert client.post("/mcp", content=b"{" * 70_000, headers=keyed).status_code == 413


def test_the_server_s_tools_wait_until_it_is_ready(engine):
    from rag.http.mcp_endpoint import ServerGate
    from rag.http.runtime import Runtime

    result = tool_through(ServerGate(Runtime(engine)), "ask", {"question": QUESTION})  # never started
    assert result.is_error
    assert result.content[0].text == "Error executing tool ask: getting ready: starting"


def test_http_mcp_serves_the_hosts_the_app_serves(tmp_path):
    """RAG_ALLOWED_HOSTS decides for /mcp too: the SDK's own check would refuse any name but localhost's."""
    engine = fake_engine(tmp_path / "index", allowed_hosts=("rag.example.org",))
    with ready_client(engine, base_url="http://rag.example.org") as client:
        assert client.post("/mcp", json=TOOLS_LIST, headers=JSON_RPC).status_code == 200
        assert client.post("/mcp", json=TOOLS_LIST, headers={**JSON_RPC, "Host": "evil.test"}).status_code == 400


# With the real model: the SDK's client against `rag mcp` and `rag serve`, as assistants connect.


def cited(citations):
    return [(c["document"], c["start"], c["end"]) for c in citations]


@pytest.mark.model
def test_rag_mcp_over_stdio_cites_what_the_engine_cites(seeds_engine):
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rag", "mcp"],
        cwd=REPO,
        env={
            "RAG_INDEX_DIR": str(seeds_engine.settings.index_dir),
            "RAG_CACHE_DIR": str(model_cache_dir()),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        },
    )

    async def work(client):
        return await client.list_tools(), await client.call_tool("ask", {"question": QUESTION})

    listed, result = session(server, work, seconds=180)
    assert {t.name for t in listed.tools} == {"ask", "search", "list_documents", "read_passage"}
    assert not result.is_error
    expected = seeds_engine.answer(QUESTION).to_dict()
    assert expected["citations"]  # an answer, or the closest passage: either way, what it cites
    assert cited(result.structured_content["citations"]) == cited(expected["citations"])
    assert result.structured_content["outcome"] == expected["outcome"]
    # The sentence the dev set marks as the answer (eval/dev.jsonl) is the one cited first.
    marked = next(json.loads(line) for line in (REPO / "eval" / "dev.jsonl").open() if QUESTION in line)
    assert any(phrase in result.structured_content["citations"][0]["text"] for phrase in marked["expect"])


@pytest.mark.model
def test_mcp_on_rag_serve_cites_what_the_api_cites(tmp_path, seeds_engine):
    index = str(seeds_engine.settings.index_dir)
    with running_server(tmp_path, RAG_API_KEY=KEY, RAG_INDEX_DIR=index) as server:
        status, _, api = call(server.base, "/api/ask", {"question": QUESTION}, headers={"X-API-Key": KEY})
        assert status == 200

        async def ask():
            with anyio.fail_after(120):
                async with (
                    httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http,
                    Client(streamable_http_client(server.base + "/mcp", http_client=http)) as client,
                ):
                    return await client.call_tool("ask", {"question": QUESTION})

        result = anyio.run(ask)
        assert not result.is_error
        assert api["citations"]
        assert cited(result.structured_content["citations"]) == cited(api["citations"])
        status, headers, _ = call(server.base, "/mcp", TOOLS_LIST, headers=JSON_RPC)
        assert (status, headers["WWW-Authenticate"]) == (401, "Bearer")
