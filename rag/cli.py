"""The `rag` command line. Domain errors become one-line messages and a non-zero exit."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import RagError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def cmd_index(args: argparse.Namespace) -> int:
    from .config import Settings
    from .engine import Engine

    settings = Settings.from_env()
    report = Engine(settings).build_index(args.paths, progress=not args.quiet)
    print(
        f"Indexed {_plural(report.documents, 'document')}, {_plural(report.sentences, 'sentence')} "
        f"with {report.model} in {report.seconds:.1f} s into {report.location}"
    )
    for skipped in report.skipped:
        print(f"Skipped {skipped.path}: {skipped.reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Answer questions about news articles with their own sentences, cited.",
        epilog="Settings come from RAG_* environment variables; see the README.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser(
        "index",
        help="rebuild the index from seeds/ or the given files and folders",
        description="Read .txt and .md documents, split them into sentences, embed them and "
        "replace the index atomically. The old index stays as it was if anything fails.",
    )
    index.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: seeds/)")
    index.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    index.set_defaults(handler=cmd_index)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rag: %(message)s"))
    logging.getLogger("rag").addHandler(handler)
    logging.getLogger("rag").setLevel(logging.INFO)
    try:
        return args.handler(args)
    except RagError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
