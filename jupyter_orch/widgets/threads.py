"""The panels' threads: one worker per panel for HTTP and refreshes, one per followed log.

The kernel's main thread only queues work, so a panel never blocks a cell. Every thread here
is a daemon, registered until stopped, and stopped at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from ..sdk.errors import OrchClientError
from ..sdk.logs import LogFollower, LogLine
from ..sdk.transport import Transport

log = logging.getLogger(__name__)
Job = Callable[[], None]
_LIVE: set[Worker | LiveLog] = set()
_LIVE_LOCK = threading.Lock()
_NAMES = itertools.count(1)


class _Daemon:
    """A daemon thread of a panel's, known to `stop_all` while it lives."""

    _thread: threading.Thread

    def _start(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=f"jupyter_orch-{name}", daemon=True)
        with _LIVE_LOCK:
            _LIVE.add(self)  # type: ignore[arg-type]
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the thread still runs."""
        return self._thread.is_alive()


def _unregister(thing: Worker | LiveLog) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(thing)


@atexit.register
def stop_all() -> None:
    """Stop every panel thread (at kernel shutdown)."""
    with _LIVE_LOCK:
        things = list(_LIVE)
    for thing in things:
        thing.stop(wait=False)  # daemon threads: exiting ends them, so no need to wait


class Worker(_Daemon):
    """A daemon thread that runs jobs in order of due time, each at most once."""

    def __init__(self, name: str, on_error: Callable[[Exception], None]) -> None:
        self._on_error = on_error
        self._jobs: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._start(self._loop, f"{name}-{next(_NAMES)}")

    def call(self, job: Job, delay: float = 0.0) -> None:
        """Run `job` on the worker thread, `delay` seconds from now."""
        with self._cond:
            if not self._stopped:
                due = time.monotonic() + delay
                heapq.heappush(self._jobs, (due, next(self._order), job))
                self._cond.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every job due by now has run, or the worker stopped; False at the deadline."""
        done = threading.Event()
        self.call(done.set)
        deadline = time.monotonic() + timeout
        # A stopped worker drops its jobs, this one too: look at `_stopped` now and then.
        while not done.wait(min(0.1, max(deadline - time.monotonic(), 0))):
            if self._stopped:
                return True
            if time.monotonic() >= deadline:
                return False
        return True

    def stop(self, wait: bool = True) -> None:
        """Drop pending jobs and end the thread, waiting for the job it runs if `wait`."""
        with self._cond:
            self._stopped = True
            self._jobs.clear()
            self._cond.notify()
        _unregister(self)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _next(self) -> Job | None:
        """The next due job, waiting for it; None once stopped."""
        with self._cond:
            while not self._stopped:
                if self._jobs and self._jobs[0][0] <= time.monotonic():
                    return heapq.heappop(self._jobs)[2]
                wait = self._jobs[0][0] - time.monotonic() if self._jobs else None
                self._cond.wait(wait)
            return None

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            try:
                job()
            except Exception as exc:  # a failed job is shown by the panel; the thread goes on
                self._report(exc)

    def _report(self, exc: Exception) -> None:
        try:
            self._on_error(exc)
        except Exception:
            log.exception("a panel could not show an error")


class StoppableTransport(Transport):
    """A transport whose streamed answer can be cut from another thread."""

    def __init__(self, api_url: str, token: str) -> None:
        super().__init__(api_url, token)
        self._response: requests.Response | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def stopped(self) -> bool:
        """Whether `interrupt()` was called."""
        return self._stop.is_set()

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if self._stop.is_set():
            raise Stopped
        response = super()._send(method, path, **kwargs)
        with self._lock:
            self._response = response
            if self._stop.is_set():
                response.close()
                raise Stopped
        return response

    def interrupt(self) -> None:
        """Wake a blocked read: shutting the socket down ends it at once (closing may not)."""
        with self._lock:
            self._stop.set()
            response = self._response
        if response is not None:
            connection = getattr(response.raw, "connection", None)
            sock = getattr(connection, "sock", None)
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.close()


class Stopped(Exception):
    """The follower was stopped."""


class LiveLog(_Daemon):
    """Follows one run's log in a daemon thread, handing each line on as it is written."""

    def __init__(
        self,
        api_url: str,
        token: str,
        run_id: str,
        on_line: Callable[[LogLine], None],
        on_end: Callable[[str | None, Exception | None], None],
    ) -> None:
        self.run_id = run_id
        self._transport = StoppableTransport(api_url, token)
        self._on_line = on_line
        self._on_end = on_end
        self._start(self._follow, f"log-{run_id[:8]}")

    def stop(self, wait: bool = True) -> None:
        """Cut the stream, and wait for the thread to end if `wait`."""
        self._transport.interrupt()
        _unregister(self)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _follow(self) -> None:
        follower = LogFollower(self._transport, self.run_id)
        problem: Exception | None = None
        try:
            for line in follower:
                if self._transport.stopped:
                    return
                self._on_line(line)
        except (Stopped, OrchClientError, requests.RequestException) as exc:
            problem = exc
        finally:
            _unregister(self)
        if not self._transport.stopped:
            self._on_end(follower.status, problem)
