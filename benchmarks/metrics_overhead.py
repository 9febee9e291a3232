"""What GET /metrics costs the server; prints the figures.

    .venv/bin/python benchmarks/metrics_overhead.py [--requests 100000]

- the time the request middleware (rag/http/metrics.py) adds to one request, against the same
  request without it: routed (the router named its route), and not routed (a 404, a request the
  key guard refused, a static file: matched against the app's routes instead);
- one scrape rendered, its size, with every route timed once per method and status class seen.
Nothing here needs a model or an index: the app is the server's, its index never loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fastapi.routing import iter_route_contexts  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402

from rag.engine import Engine  # noqa: E402
from rag.http.app import create_app  # noqa: E402
from rag.http.metrics import RequestMetrics  # noqa: E402
from rag.settings import Settings  # noqa: E402


def per_request(app, scope: dict, requests: int) -> float:
    """Microseconds per call of ``app`` on a copy of ``scope``, best of three rounds."""

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        pass

    async def rounds() -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(requests):
                await app(dict(scope), receive, send)
            best = min(best, time.perf_counter() - started)
        return best / requests * 1e6

    return asyncio.run(rounds())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Engine(Settings(index_dir=Path(folder) / "index")))
    metrics = app.state.runtime.metrics
    route = next(r for r in app.router.routes if getattr(r, "path_format", None) == "/openapi.json")

    async def routed(scope, receive, send):
        scope["route"] = route  # as the router names it
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def unrouted(scope, receive, send):
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    base = {"type": "http", "method": "GET", "path": "/openapi.json", "root_path": "", "app": app, "headers": []}
    bare = per_request(routed, base, args.requests)
    print(f"a request without the middleware        {bare:6.2f} µs")
    timed = per_request(RequestMetrics(routed, metrics.requests), base, args.requests)
    print(f"routed, with it                          {timed:6.2f} µs  (+{timed - bare:.2f})")
    for path in ("/static/chat.js", "/api/ask", "/no/such/path"):
        timed = per_request(RequestMetrics(unrouted, metrics.requests), {**base, "path": path}, args.requests // 10)
        print(f"not routed, {path:<28} {timed:6.2f} µs  (+{timed - bare:.2f})")

    # Every route template, by each of two methods and three status classes: more series than a
    # server sees in practice.
    templates = {r.path_format for r in iter_route_contexts(app.routes)}
    for template in templates:
        for method in ("GET", "POST"):
            for status in ("2xx", "4xx", "5xx"):
                metrics.requests.labels(template, method, status).observe(0.01)
    started = time.perf_counter()
    for _ in range(100):
        text = generate_latest(metrics.registry)
    render = (time.perf_counter() - started) / 100 * 1e3
    print(f"one scrape, {len(templates) * 6} request series: {render:.2f} ms, {len(text) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
