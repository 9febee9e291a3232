"""The `rag` command line. Domain errors become one-line messages and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from .errors import RagError

EXIT_ERROR = 1
EXIT_BELOW_BAR = 3
EXIT_INTERRUPTED = 130
# The Host names `rag serve --host` on the loopback answers unless RAG_ALLOWED_HOSTS says otherwise.
LOOPBACK = ("127.0.0.1", "localhost")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _engine(builds: bool = False, settings=None):
    """The engine on the settings (the environment's unless given). Unless the command ``builds``
    an index where there is none (index, serve), an index must have been found (or RAG_INDEX_DIR
    set, which has its own word)."""
    from .engine import Engine
    from .errors import IndexMissingError
    from .settings import Settings, holds_index

    settings = settings or Settings.from_env()
    if not (builds or os.environ.get("RAG_INDEX_DIR") or holds_index(settings.index_dir)):
        raise IndexMissingError(
            f"no index in {settings.index_dir} or any parent folder's index/; `rag index` builds one"
        )
    return Engine(settings)


def _print_build(report) -> None:
    print(
        f"Indexed {_plural(report.documents, 'document')}, {_plural(report.sentences, 'sentence')} "
        f"with {report.model} in {report.seconds:.1f} s into {report.location}"
    )
    if report.embedded < report.sentences:
        print(f"Embedded {report.embedded}; {report.sentences - report.embedded} kept their vectors (unchanged)")
    for skipped in report.skipped:
        print(f"Skipped {skipped.path}: {skipped.reason}")
    if report.left_out:
        shown = ", ".join(report.left_out[:5]) + (", ..." if len(report.left_out) > 5 else "")
        print(
            f"Left out {_plural(len(report.left_out), 'document')} of the previous index ({shown}); "
            "`rag add PATH` adds documents and keeps the others"
        )


def cmd_index(args: argparse.Namespace) -> int:
    _print_build(_engine(builds=True).build_index(args.paths, progress=not args.quiet, language=args.language))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    _print_build(_engine().add_documents(args.paths, progress=not args.quiet, language=args.language))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    engine = _engine()
    titles = {d["id"]: d["title"] for d in engine.documents()}
    report = engine.remove_documents(args.ids)
    # An id the listing lacked was added by another build meanwhile: named without its title.
    removed = ", ".join(f"{i} ({titles[i]})" if i in titles else i for i in dict.fromkeys(args.ids))
    print(
        f"Removed {removed}; the index now holds {_plural(report.documents, 'document')}, "
        f"{_plural(report.sentences, 'sentence')}"
    )
    return 0


def cmd_documents(args: argparse.Namespace) -> int:
    documents = _engine().documents()
    if args.json:
        print(api_json({"documents": documents}))
        return 0
    for d in documents:
        print(f"{d['id']}\t{d['language'] or '-'}\t{d['format']}\t{_plural(d['sentences'], 'sentence')}\t{d['title']}")
    return 0


def api_json(content: dict) -> str:
    """JSON exactly as the HTTP API sends it (Starlette's JSONResponse settings)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def _print_text(text: str) -> None:
    print(text, end="", flush=True)


def _print_answer(answer, written: bool = False) -> None:
    """The answer for a person (unless ``written``: its text is out already, as it came), how a
    follow-up was read and how much of a long conversation was cut, its confidence, then where
    each cited sentence is; for the closest passage (not a sure answer), the cited sentences
    themselves too."""
    if answer.reason and answer.mode == "generated":
        print(f"\nrag: the LLM server's answer stopped there ({answer.reason})", file=sys.stderr)
    elif answer.reason:  # RAG_LLM_URL is set, and the server's answer could not be used
        print(f"rag: the extractive answer, as the LLM server's could not be used ({answer.reason})", file=sys.stderr)
    print("" if written else answer.answer)
    if answer.read_as:
        print(f"(read as: {answer.read_as})")
    if answer.history_cut:  # the conversation is read from its last turns, never cut silently
        print(f"({_plural(answer.history_cut, 'earlier turn')} of the conversation left out or shortened)")
    closest = answer.outcome == "closest"
    if answer.confidence is not None and answer.outcome != "none":
        print(f"(confidence {answer.confidence:.2f})")
    if answer.citations:
        print(("\nClosest passage:" if len(answer.citations) == 1 else "\nClosest passages:") if closest else "")
    for citation in answer.citations:
        print(
            f"[{citation.id}] {citation.document}, sentence {citation.sentence}, "
            f"characters {citation.start}-{citation.end} (score {citation.score:.3f})"
        )
        if closest:
            print(f"    {citation.text}")


def cmd_ask(args: argparse.Namespace) -> int:
    if args.json:
        print(api_json(_engine().answer(args.question, args.top_k).to_dict()))
        return 0
    answer = _engine().answer(args.question, args.top_k, on_text=_print_text)
    _print_answer(answer, written=answer.mode == "generated")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """A conversation in the terminal: each question answered with the earlier ones as history,
    as POST /api/ask answers it. Line editing and recall of earlier lines come from readline."""
    import readline  # noqa: F401 - input() gains line editing and history

    from .answer.questions import Turn
    from .errors import InputError

    engine = _engine()
    engine.index  # noqa: B018 - a missing index is an error before the first prompt, not after it
    history: list[Turn] = []
    print("Ask about the documents; a follow-up may refer to earlier questions. Ctrl-D leaves.", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as a shell does
            print(file=sys.stderr)
            continue
        if not line.strip():
            continue
        try:
            # The whole conversation: the engine reads its last turns, and the answer says what it cut.
            answer = engine.answer(line, args.top_k, history=history, on_text=_print_text)
        except InputError as exc:
            print(f"rag: {exc}", file=sys.stderr)
            continue
        _print_answer(answer, written=answer.mode == "generated")
        print()
        history += [Turn("user", line.strip()), Turn("assistant", answer.answer)]


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .http.app import create_app

    server: uvicorn.Server | None = None

    def stop() -> None:
        server.should_exit = True

    from .http.protocol import server_config
    from .settings import Settings

    settings = Settings.from_env()
    if args.host in LOOPBACK and not settings.allowed_hosts:
        # DNS rebinding: a web page whose own name its attacker points at 127.0.0.1 could call a
        # local server (/api, /mcp) with that name as Host. Only the machine's own names are served.
        settings = replace(settings, allowed_hosts=LOOPBACK)
    engine = _engine(builds=True, settings=settings)
    app = create_app(engine, on_fatal=stop)
    server = uvicorn.Server(server_config(app, engine.settings, args.host, args.port))
    print(f"Serving on http://{args.host}:{args.port}/ (Ctrl+C stops)", file=sys.stderr)
    server.run()
    failure = app.state.runtime.failure
    if failure is not None:
        raise failure
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from .mcp_server import serve_stdio

    serve_stdio(_engine())
    return 0


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, not {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, not {text}")
    return value


BARS = {  # option name -> (figure in the report, label)
    "min_hit1": ("hit1", "hit@1"),
    "min_hit3": ("hit3", "hit@3"),
    "min_mrr": ("mrr", "MRR"),
    "min_abstention_precision": ("abstention_precision", "abstention precision"),
    "min_abstention_recall": ("abstention_recall", "abstention recall"),
}


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import describe, evaluate, read_questions

    questions = read_questions(args.file) + (read_questions(args.offtopic) if args.offtopic else [])
    engine = _engine()
    engine.answer("warm-up")  # model and index load outside the timing
    report = evaluate(questions, engine.answer)
    figures = report.figures()
    print(json.dumps(figures, indent=2) if args.json else describe(report))
    below = [
        f"{label} {figures[key]:.3f} < {getattr(args, option)}"
        for option, (key, label) in BARS.items()
        if getattr(args, option) is not None and figures[key] < getattr(args, option)
    ]
    if below:
        print("rag: below the bar: " + ", ".join(below), file=sys.stderr)
        return EXIT_BELOW_BAR
    return 0


def _reading_options(command: argparse.ArgumentParser) -> None:
    """The options of the commands that read documents (index, add)."""
    command.add_argument(
        "--language", metavar="CODE", help="the documents' language (ISO 639, e.g. en), instead of detecting it"
    )
    command.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _top_k_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--top-k", type=int, default=None, metavar="N", help="most citations, 1 to 10 (default 3)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Answer questions about news articles with their own sentences, cited.",
        epilog="Settings come from RAG_* environment variables; see docs/settings.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser(
        "index",
        help="rebuild the index from seeds/ or the given files and folders",
        description="Read .txt, .md, .html, .pdf and .docx documents, split them into sentences, embed them and "
        "replace the index atomically. The old index stays as it was if anything fails. Files of other "
        "types in a folder are skipped and named.",
    )
    index.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: seeds/)")
    _reading_options(index)
    index.set_defaults(handler=cmd_index)

    add = commands.add_parser(
        "add",
        help="add documents to the index (or replace them by a newer version)",
        description="Add the documents under PATH to the live index in a new generation. A file already "
        "in the index (the same path) replaces its old version and keeps its id. Only new or changed "
        "documents are embedded.",
    )
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    _reading_options(add)
    add.set_defaults(handler=cmd_add)

    remove = commands.add_parser(
        "remove",
        help="remove documents from the index",
        description="Remove the documents with these ids (see `rag documents`) from the live index, in a "
        "new generation. Nothing is embedded.",
    )
    remove.add_argument("ids", nargs="+", metavar="DOCUMENT_ID")
    remove.set_defaults(handler=cmd_remove)

    listing = commands.add_parser(
        "documents",
        help="list the documents of the index",
        description="List the documents of the live index: id, language, format, sentences, title.",
    )
    listing.add_argument("--json", action="store_true", help="print exactly the JSON of GET /api/documents")
    listing.set_defaults(handler=cmd_documents)

    ask = commands.add_parser(
        "ask",
        help="answer a question with cited sentences",
        description="Answer QUESTION from the index with the article's own sentences, each cited with "
        "its position, or say that the article does not answer it.",
    )
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("--json", action="store_true", help="print exactly the JSON of POST /api/ask")
    _top_k_option(ask)
    ask.set_defaults(handler=cmd_ask)

    chat = commands.add_parser(
        "chat",
        help="hold a conversation in the terminal, with follow-ups",
        description='Ask one question after another; a follow-up ("Did they hold?") is resolved with the '
        "earlier questions, as POST /api/ask does with history. Up and down recall earlier lines; Ctrl-D leaves.",
    )
    _top_k_option(chat)
    chat.set_defaults(handler=cmd_chat)

    serve = commands.add_parser(
        "serve",
        help="serve the chat page and the HTTP API",
        description="Load the model and the index (building it first if there is none) and serve "
        "the chat page and the API. /readyz answers 503 until answers can be given.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.set_defaults(handler=cmd_serve)

    mcp = commands.add_parser(
        "mcp",
        help="serve the answers to an assistant over MCP (stdio)",
        description="Serve the tools ask, search, list_documents and read_passage, and the documents as "
        "resources, over the Model Context Protocol on stdin and stdout, for an assistant that starts this "
        "command (Claude Desktop, Cursor, Cline; docs/mcp.md). The model and the index load first; logs go "
        "to stderr.",
    )
    mcp.set_defaults(handler=cmd_mcp)

    evaluation = commands.add_parser(
        "eval",
        help="score answers against a question file",
        description='Score answers against FILE.jsonl: lines {"question": ..., "expect": [substrings of '
        "a sentence that answers]}; lines without expect must be abstained on. Prints hit@1, hit@3, "
        f"MRR, abstention precision and recall, latency and each miss. Exits {EXIT_BELOW_BAR} below a --min bar.",
    )
    evaluation.add_argument("file", type=Path, metavar="FILE.jsonl")
    evaluation.add_argument("--offtopic", type=Path, metavar="FILE.jsonl", help="questions the article does not answer")
    for option, (_, label) in BARS.items():
        evaluation.add_argument(f"--{option.replace('_', '-')}", type=_fraction, metavar="X", help=f"least {label}")
    evaluation.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluation.set_defaults(handler=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logger = logging.getLogger("rag")
    for earlier in [h for h in logger.handlers if h.get_name() == "rag-cli"]:
        logger.removeHandler(earlier)  # main() may run again in one process (tests): one handler, today's stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("rag-cli")
    handler.setFormatter(logging.Formatter("rag: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return args.handler(args)
    except RagError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run() -> None:
    """The `rag` command (its console script and ``python -m rag``): ``main``, then an exit that
    frees nothing, as mypy's does. Freeing the model's tokenizer (a trie of 250,002 pieces) and
    the rest took half a second of `rag ask`'s two; the system takes the memory back at once."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
