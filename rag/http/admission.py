"""Admission control: at most ``running`` answers at once and ``waiting`` in line; the rest
are refused at once (503) rather than queued ever longer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool


class Busy(Exception):
    pass


class Admission:
    def __init__(self, running: int, waiting: int, timeout: float):
        self._running = asyncio.Semaphore(running)
        self._capacity = running + waiting
        self._inside = 0  # changed only on the event loop, so no lock
        self._timeout = timeout

    async def run(self, work: Callable, *args):
        """``work(*args)`` in the thread pool once admitted; Busy if the line is full or the
        wait runs out."""
        if self._inside >= self._capacity:
            raise Busy("too many questions at once; try again in a moment")
        self._inside += 1
        try:
            try:
                await asyncio.wait_for(self._running.acquire(), self._timeout)
            except TimeoutError:
                raise Busy("the server is busy; try again in a moment") from None
            try:
                return await run_in_threadpool(work, *args)
            finally:
                self._running.release()
        finally:
            self._inside -= 1
