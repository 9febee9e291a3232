"""Server-sent events, as /api/ask and /v1/chat/completions stream them."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing

from fastapi.responses import StreamingResponse

# No cache and no proxy buffering (nginx reads X-Accel-Buffering), so that each event arrives as sent.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
FAILED = "the answer failed after it started; please ask again"

log = logging.getLogger("rag.http")


def event(data: dict | str, name: str | None = None) -> str:
    """One event: JSON ``data`` (a string as it is), named ``name`` if given."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (f"event: {name}\n" if name else "") + f"data: {text}\n\n"


def schema(names: list[str]) -> dict:
    """One event of a stream, for OpenAPI (3.1 has no itemSchema: ``schema`` is read as it)."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {"event": {"enum": names}, "data": {"type": "string", "contentMediaType": "application/json"}},
    }


def response(
    events: AsyncGenerator[str, None], failed: Callable[[str], str], headers: dict[str, str] | None = None
) -> StreamingResponse:
    """``events`` as a stream (with ``headers`` besides the stream's own); a failure after it
    started (its status is sent) ends it with the event ``failed`` makes of a message, instead of
    a connection cut with no word."""
    return StreamingResponse(
        _ended_in_words(events, failed), media_type="text/event-stream", headers={**HEADERS, **(headers or {})}
    )


async def _ended_in_words(events: AsyncGenerator[str, None], failed: Callable[[str], str]) -> AsyncIterator[str]:
    try:
        async with aclosing(events):  # closed here, not left to the garbage collector
            async for text in events:
                yield text
    except Exception:
        log.exception("a stream failed after it started")
        yield failed(FAILED)
