"""uvicorn's HTTP/1.1 protocol on httptools (llhttp, in C: about 0.2 ms less per request than
the pure-Python h11, measured with benchmarks/performance.py) with a deadline for a request's
head. uvicorn has none of its own: its keep-alive timer restarts at every byte, so a client
sending a header byte every few seconds ("slowloris") holds a connection as long as it likes,
and enough of them hold the server. Here the head (request line and headers) must arrive within
``head_seconds`` of the connection opening or of the previous response; a slow body is the body
limit's concern."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_SECONDS = 10.0


class HeadDeadlineProtocol(HttpToolsProtocol):
    head_seconds = HEAD_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.head_seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _waiting_for_a_head(self) -> bool:
        """No request is being answered or queued behind one: what comes now is a new head."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _expire(self) -> None:
        self._deadline = None
        if self._waiting_for_a_head() and not self.transport.is_closing():
            self.transport.close()  # the head never came whole: no response, as for a dropped line

    def on_headers_complete(self) -> None:
        self._disarm()  # the head is in: the request is on its way
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
