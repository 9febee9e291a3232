"""uvicorn's HTTP/1.1 protocol on httptools (llhttp, in C: about 0.2 ms less per request than
the pure-Python h11, measured with benchmarks/performance.py), with what uvicorn lacks:

- A deadline for a request's head. uvicorn's keep-alive timer restarts at every byte, so a
  client sending a header byte every few seconds ("slowloris") holds a connection as long as it
  likes, and enough of them hold the server. Here the head (request line and headers) must
  arrive within ``head_seconds`` of the connection opening or of the previous response; a slow
  body is the body limit's concern.
- A deadline for taking the answer. A client that reads nothing keeps its connection, and the
  answer waiting in the server's write buffer, for ever: closing a connection waits until what
  was written has been sent. Here a client that takes nothing of a waiting answer for
  ``write_seconds`` is cut off (as nginx's send_timeout); one that reads on, however slowly, is not.
- A cap of ``per_client`` open connections from one address, so that one client cannot take
  every connection; beyond it, a request is answered 503 at once.
- uvicorn's own refusals (400 for a request it cannot parse, 503 beyond limit_concurrency) with
  the security headers, in our error shape, the 503 with Retry-After: the app never sees them."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from collections import Counter
from typing import ClassVar

import uvicorn
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..settings import Settings
from .middleware import SECURITY_HEADERS
from .openai_api import refusal_for

HEAD_SECONDS = 10.0
WRITE_SECONDS = 10.0
STOP_SECONDS = 0.5  # what is in flight when the server stops may take this long
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets, dropping what was not sent
REFUSAL_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


def _busy(path: str, detail: str):
    """A 503 for the client to come back to, with our headers (no middleware sees it)."""
    return refusal_for(path, 503, detail, {**SECURITY_HEADERS, "Retry-After": "1", "Connection": "close"})


class HeadDeadlineProtocol(HttpToolsProtocol):
    head_seconds = HEAD_SECONDS
    write_seconds = WRITE_SECONDS
    per_client = 0  # open connections from one address; 0: no cap
    open_from: ClassVar[Counter[str]] = Counter()  # each server's own (server_config)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._write_check: asyncio.TimerHandle | None = None
        self._answering = None  # the request whose answer is being written (others wait in the pipeline)
        self._waiting = 0  # bytes waiting in the write buffer at the last check
        self._drained = False  # the buffer ran low since the last check
        self._address = self.client[0] if self.client else ""
        self.open_from[self._address] += 1
        self._crowded = 0 < self.per_client < self.open_from[self._address]
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

    def _start_asgi_task(self, cycle, app) -> None:
        self._answering = cycle
        # uvicorn's limit_concurrency chose its plain-text 503, or this address has too many connections.
        if app is service_unavailable:
            app = _busy(cycle.scope["path"], "too many connections at once; try again in a moment")
        elif self._crowded:
            app = _busy(cycle.scope["path"], "too many connections from one address; try again in a moment")
        super()._start_asgi_task(cycle, app)

    def send_400_response(self, msg: str) -> None:
        """A request that cannot be parsed, refused as uvicorn does but in our shape and headers."""
        body = json.dumps({"detail": "the request is not valid HTTP/1.1"}).encode()
        headers = [
            *self.server_state.default_headers,
            *REFUSAL_HEADERS,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(STATUS_LINE[400] + head + b"\r\n" + body)
        self.transport.close()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_writes()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._drained = True

    def _watch_writes(self) -> None:
        """While bytes wait for the client, check every ``write_seconds`` that it took some."""
        waiting = self.transport.get_write_buffer_size()
        if self._write_check is None and waiting:
            self._waiting, self._drained = waiting, False
            self._write_check = self.loop.call_later(self.write_seconds, self._check_writes)

    def _check_writes(self) -> None:
        self._write_check = None
        if self._drained or self.transport.get_write_buffer_size() < self._waiting:
            self._watch_writes()  # it reads on
            return
        # Reset, not closed: closing would wait for the client, and the kernel keep the bytes.
        connection = self.transport.get_extra_info("socket")
        if connection is not None:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
        self.transport.abort()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_writes()  # the answer's last bytes must be taken too, even once closing
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        # uvicorn marks only its newest request's cycle, which may be a pipelined one still
        # queued; the one being answered would then write to the closed transport and log an error.
        if self._answering is not None and not self._answering.response_complete:
            self._answering.disconnected = True
        self._disarm()
        if self._write_check is not None:
            self._write_check.cancel()
        self.open_from[self._address] -= 1
        if not self.open_from[self._address]:
            del self.open_from[self._address]
        super().connection_lost(exc)


def server_config(app, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """How `rag serve` runs ``app``: this protocol, with the deadlines and caps of ``settings``."""
    protocol = type(
        "Protocol",
        (HeadDeadlineProtocol,),
        {
            "head_seconds": settings.head_seconds,
            "write_seconds": settings.write_seconds,
            "per_client": settings.max_connections_per_client,
            "open_from": Counter(),  # this server's connections by client address
        },
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        http=protocol,
        ws="none",  # no WebSocket routes; an upgraded connection would leave the count by address
        limit_concurrency=settings.max_connections,  # beyond: 503 at once, memory bounded
        timeout_keep_alive=5,  # an idle kept-alive connection closes after 5 s
        # Ctrl-C cuts off what is still in flight half a second on (an upload being indexed, an
        # answer streaming), rather than waiting for it; a build cut off never went live.
        timeout_graceful_shutdown=STOP_SECONDS,
        # The client's address from X-Forwarded-For only when a trusted proxy sent it; uvicorn
        # would trust any process on 127.0.0.1 by default.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
    )
    logging.getLogger("uvicorn.error").addFilter(_not_cut_off)  # after the Config set logging up
    return config


def _not_cut_off(record: logging.LogRecord) -> bool:
    """False for a request's traceback when stopping cut it off: uvicorn says how many it cut."""
    return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))
