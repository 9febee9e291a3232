"""GET /metrics: the server's metrics in Prometheus's text format, each app with a registry of
its own (tests and several apps in one process do not collide). Requests are timed by route
template, never by raw path, so the number of series stays bounded; answers are counted by
outcome, builds by kind and result; the index and readiness are read at each scrape."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter

from fastapi import APIRouter, Request, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from starlette.routing import Match

from ..answer.base import Answer
from ..answer.smalltalk import CHITCHAT, NO_CONTENT
from ..errors import BusyError, InputError
from ..store.index import LoadedIndex
from .schemas import METHODS

OUTCOMES = ("answer", "closest", "none", "smalltalk")
BUILDS = ("upload", "delete", "build")
RESULTS = ("ok", "failed")
UNMATCHED = "unmatched"  # every path no route serves, as one label
# Answers with an LLM server writing them take seconds; builds of many documents, minutes.
ANSWER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BUILD_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

router = APIRouter(include_in_schema=False)


def outcome(answer: Answer) -> str:
    """The answer's outcome as the API names it, small talk apart (the API calls it "none")."""
    if not answer.citations and answer.answer in (CHITCHAT, NO_CONTENT):
        return "smalltalk"
    return answer.outcome


class Metrics:
    """The app's registry and metrics; ``ready`` and ``index`` say, at each scrape, whether the
    server answers and which index it answers from (None before one is loaded)."""

    def __init__(self, ready: Callable[[], bool], index: Callable[[], LoadedIndex | None]):
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "rag_http_request_duration_seconds",
            "Time from a request to its response's last byte, by route template, method and status class",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.answers = Counter("rag_answers", "Answers given, by outcome", ["outcome"], registry=self.registry)
        self.answer_seconds = Histogram(
            "rag_answer_duration_seconds",
            "Time from a question to its final answer (queue included), by mode and outcome",
            ["mode", "outcome"],
            buckets=ANSWER_BUCKETS,
            registry=self.registry,
        )
        self.builds = Counter(
            "rag_builds",
            "Index builds done by the server, by kind and result",
            ["kind", "result"],
            registry=self.registry,
        )
        self.build_seconds = Histogram(
            "rag_build_duration_seconds",
            "Time an index build done by the server took, by kind and result",
            ["kind", "result"],
            buckets=BUILD_BUCKETS,
            registry=self.registry,
        )
        for name in OUTCOMES:  # every series from the first scrape, so that rate() sees the first one
            self.answers.labels(name)
        for kind in BUILDS:
            for result in RESULTS:
                self.builds.labels(kind, result)
        self.registry.register(_IndexCollector(ready, index))
        ProcessCollector(registry=self.registry)

    def answered(self, answer: Answer, seconds: float | None) -> None:
        """Count ``answer``; ``seconds`` since its question, when known."""
        name = outcome(answer)
        self.answers.labels(name).inc()
        if seconds is not None:
            self.answer_seconds.labels(answer.mode, name).observe(seconds)

    @contextmanager
    def build(self, kind: str) -> Iterator[None]:
        """Time and count the build in the block. One refused for its input or because another
        build runs (a client's 4xx) built nothing and is not counted."""
        started = perf_counter()
        result = "failed"
        try:
            yield
            result = "ok"
        except (InputError, BusyError):
            result = None
            raise
        finally:
            if result is not None:
                self.builds.labels(kind, result).inc()
                self.build_seconds.labels(kind, result).observe(perf_counter() - started)


class _IndexCollector:
    """Readiness and the live index, read at each scrape."""

    def __init__(self, ready: Callable[[], bool], index: Callable[[], LoadedIndex | None]):
        self.ready, self.index = ready, index

    def collect(self):
        yield GaugeMetricFamily("rag_ready", "1 when the server answers questions, else 0", value=float(self.ready()))
        index = self.index()
        if index is None:
            return
        yield GaugeMetricFamily("rag_index_documents", "Documents in the live index", value=len(index.documents))
        yield GaugeMetricFamily("rag_index_sentences", "Sentences in the live index", value=len(index.sentences))
        generation = GaugeMetricFamily(
            "rag_index_generation",
            "The live generation's number N, its folder name gen-N-TIME as label",
            labels=["name"],
        )
        number = index.generation.split("-")[1] if "-" in index.generation else ""
        generation.add_metric([index.generation], int(number) if number.isdigit() else math.nan)
        yield generation


class RequestMetrics:
    """ASGI middleware, outermost: every HTTP request's time to its last byte, refusals by the
    other middleware included. The router names the route it chose in the scope; a request it
    never saw (refused before it, or a static file) is matched here, against the same routes."""

    def __init__(self, app, histogram: Histogram):
        self.app, self.histogram = app, histogram
        self._routes = None  # the app's routes, listed at the first request that needs them

    def _route(self, scope, root_path: str) -> str:
        template = getattr(scope.get("route"), "path_format", None)
        if template:
            return template
        if self._routes is None:
            self._routes = list(iter_route_contexts(scope["app"].routes))
        asked = {**scope, "root_path": root_path}  # as it came: a mount moved its own path into root_path
        partial = UNMATCHED
        for route in self._routes:
            match, _ = route.matches(asked)
            if match is Match.FULL:
                return route.path_format
            if match is Match.PARTIAL and partial == UNMATCHED:
                partial = route.path_format  # the path is served, not with this method
        return partial

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = perf_counter()
        root_path = scope.get("root_path", "")
        status = 500  # a request that ends without a response ended in an error

        async def send_noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.histogram.labels(self._route(scope, root_path), method, f"{status // 100}xx").observe(
                perf_counter() - started
            )


@router.head("/metrics")
@router.get("/metrics")
def metrics(request: Request) -> Response:
    # Not async: rendering takes milliseconds, better spent off the event loop.
    return Response(generate_latest(request.app.state.runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
