"""Server-sent events, as /api/ask and /v1/chat/completions stream them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable

from fastapi.responses import StreamingResponse

# No cache and no proxy buffering (nginx reads X-Accel-Buffering), so that each event arrives as sent.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(data: dict | str, name: str | None = None) -> str:
    """One event: JSON ``data`` (a string as it is), named ``name`` if given."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (f"event: {name}\n" if name else "") + f"data: {text}\n\n"


def response(events: AsyncIterable[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)
