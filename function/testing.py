"""Helpers for tests of code that uses this function, shipped with it as httpx ships
``MockTransport`` and structlog ``capture_logs``: a transport answering from a handler or a
script, and the function's log events captured as dicts. The function never imports this
module; it imports only the standard library and ``function`` modules already loaded."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from function import log
from function.cloud.transport import HttpResponse
from function.errors import TransportError

__all__ = [
    "MockTransport",
    "ScriptedTransport",
    "Sent",
    "capture_logs",
    "response",
]


@dataclass
class Sent:
    """One request as the transport received it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: tuple[float, float]


Handler = Callable[[Sent], "HttpResponse | TransportError"]


def response(
    status: int, body: object = None, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    """An HttpResponse whose body is ``body`` as JSON (bytes are used as they are)."""
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return HttpResponse(status, dict(headers or {}), raw)


class MockTransport:
    """A ``Transport`` answering each request with ``handler(request)``: a response to return
    or a ``TransportError`` to raise. Every request is kept in ``sent``, thread-safely."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[Sent] = []
        self._lock = threading.Lock()

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: tuple[float, float],
    ) -> HttpResponse:
        sent = Sent(method, url, dict(headers), body, timeout)
        with self._lock:
            self.sent.append(sent)
        item = self.handler(sent)
        if isinstance(item, TransportError):
            raise item
        return item


class ScriptedTransport(MockTransport):
    """A ``MockTransport`` answering from a script, in order; a request past its end fails
    the test (``AssertionError``)."""

    def __init__(self, *script: HttpResponse | TransportError) -> None:
        super().__init__(self._next)
        self.script = list(script)
        self._script_lock = threading.Lock()

    def _next(self, sent: Sent) -> HttpResponse | TransportError:
        with self._script_lock:
            if not self.script:
                raise AssertionError(f"unexpected request {sent.method} {sent.url}")
            return self.script.pop(0)


class _Lines(io.StringIO):
    """A stream that parses each JSON log line into ``events`` as it is written."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        super().__init__()
        self.events = events
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        self.events.extend(json.loads(line) for line in lines if line)
        return len(text)


@contextmanager
def capture_logs(level: str = "DEBUG") -> Iterator[list[dict[str, Any]]]:
    """The function's log events inside the block, as the dicts its JSON lines hold (keys
    ordered, secrets redacted). Logging is reset on the way out (``function.log.reset``),
    secrets registered inside the block included."""
    events: list[dict[str, Any]] = []
    sink = _Lines(events)
    log.use_stream(sink)
    log.configure(level, sink)
    try:
        yield events
    finally:
        log.reset()
