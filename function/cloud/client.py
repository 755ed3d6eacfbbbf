"""One signed client over the transport: endpoints, signing, error mapping, and retries of
what is transient with capped full-jitter backoff that honours ``Retry-After``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from function.cloud.signing import sign_request
from function.cloud.transport import HttpResponse, Transport
from function.config import Settings
from function.errors import ApiError, BudgetExhausted, ExportError, TransportError
from function.model import parse_error_body
from function.runtime import Runtime

T = TypeVar("T")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 30.0
SAFETY_MARGIN_MS = 3000
TAG_PAGE = 1000  # the most a resource_instances filter returns per request
LOOK_MIN_MS = 1000  # a last lookup is tried while at least this much time is left


class Limiter:
    """Bounds requests in flight and their rate, shared by every client of one invocation.

    The rate is a token bucket: a burst of up to ``min(rate, max_in_flight)`` requests goes at
    once, then requests are spaced ``1/rate`` apart (a request may borrow ahead and wait its
    turn). A 429 slows the whole invocation down (the rate halves, the burst is spent, and
    every request waits out the ``Retry-After``); each success wins back a little (AIMD).
    """

    MIN_RATE = 0.5

    def __init__(
        self,
        max_in_flight: int,
        per_second: float,
        sleep: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self.max_rate = per_second
        self.rate = per_second
        self._burst = max(1.0, min(per_second, float(max_in_flight)))
        self._tokens = self._burst
        self._last = clock()
        self._pause_until = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep
        self._clock = clock
        self.in_flight = 0
        self.peak_in_flight = 0
        self.sent = 0
        self.throttles = 0

    def __enter__(self) -> Limiter:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            wait = max(-self._tokens / self.rate, self._pause_until - now)
        if wait > 0:
            self._sleep(wait)
        self._slots.acquire()
        with self._lock:
            self.in_flight += 1
            self.sent += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.in_flight -= 1
        self._slots.release()

    def throttled(self, retry_after: float | None) -> None:
        """The API said 429: halve the rate and hold every request for ``retry_after``."""
        with self._lock:
            self.throttles += 1
            self.rate = max(self.MIN_RATE, self.rate / 2)
            self._tokens = min(self._tokens, 0.0)
            if retry_after:
                self._pause_until = max(
                    self._pause_until, self._clock() + min(retry_after, RETRY_AFTER_CAP)
                )

    def succeeded(self) -> None:
        with self._lock:
            if self.rate < self.max_rate:
                self.rate = min(self.max_rate, self.rate + max(0.5, self.max_rate / 20))


class Retrier:
    """Runs an attempt until it succeeds, fails for good, or the budget would run out."""

    def __init__(self, runtime: Runtime, max_attempts: int) -> None:
        self.runtime = runtime
        self.max_attempts = max_attempts

    def run(
        self, attempt: Callable[[], T], before_resend: Callable[[], T | None] | None = None
    ) -> T:
        """``before_resend`` runs after an ambiguous failure of a non-idempotent call; a
        non-None answer (the work was done after all) ends the loop without sending again."""
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except ApiError as exc:
                if exc.outcome != "failed":
                    raise
                error: ExportError = exc
                ambiguous = exc.http_status not in (429, 503)
                retry_after = exc.retry_after
            except TransportError as exc:
                error, ambiguous, retry_after = exc, exc.maybe_sent, None
            delay = self.delay(tries, retry_after)
            final: ExportError | None = None
            if tries >= self.max_attempts:
                final = error
            elif self.runtime.remaining_ms() - delay * 1000 < SAFETY_MARGIN_MS:
                final = BudgetExhausted(
                    f"gave up after {tries} attempt(s): the time budget would not cover a retry "
                    f"({error.message})",
                    error,
                )
            if final is not None:
                found = self._last_look(ambiguous, before_resend)
                if found is not None:
                    return found
                raise final
            self.runtime.sleep(delay)
            if ambiguous and before_resend is not None:
                found = before_resend()
                if found is not None:
                    return found

    def _last_look(self, ambiguous: bool, before_resend: Callable[[], T | None] | None) -> T | None:
        """Before giving up after an ambiguous last attempt, look once more: the work the
        lost answer was about may have been done."""
        if not ambiguous or before_resend is None or self.runtime.remaining_ms() < LOOK_MIN_MS:
            return None
        try:
            return before_resend()
        except ExportError:
            return None

    def delay(self, tries: int, retry_after: float | None) -> float:
        jitter = self.runtime.rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (tries - 1)))
        if retry_after is not None:
            return max(jitter, min(retry_after, RETRY_AFTER_CAP))
        return jitter


class CloudClient:
    """Signs and sends requests to one project's services."""

    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        transport: Transport,
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.transport = transport
        self.limiter = limiter or Limiter(
            settings.max_concurrency, settings.max_requests_per_second, runtime.sleep
        )
        self.retrier = Retrier(runtime, settings.max_attempts)

    @property
    def project_id(self) -> str:
        return self.settings.require_project()

    def send(
        self,
        service: str,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: object = None,
    ) -> HttpResponse:
        """One attempt: a 2xx/3xx answer, or ApiError / TransportError."""
        credentials = self.settings.require_credentials()
        base = self.settings.endpoint(service)
        raw = b"" if body is None else json.dumps(body).encode()
        request = sign_request(
            method,
            base,
            path,
            credentials,
            self.project_id,
            self.runtime.clock(),
            query=query,
            body=raw,
        )
        # Both timeouts together stay within what is left of the budget.
        budget = max(1.0, self.runtime.remaining_ms() / 1000 - SAFETY_MARGIN_MS / 1000)
        connect_timeout = min(self.settings.connect_timeout, budget / 2)
        read_timeout = min(self.settings.read_timeout, budget - connect_timeout)
        with self.limiter:
            resp = self.transport.send(
                method,
                request.url,
                request.headers,
                request.body,
                (connect_timeout, read_timeout),
            )
        if resp.status >= 400:
            code, message = parse_error_body(resp.json(), resp.status)
            error = ApiError(resp.status, code, message, resp.request_id)
            error.retry_after = parse_retry_after(resp.header("Retry-After"), self.runtime)
            if resp.status == 429:
                self.limiter.throttled(error.retry_after)
            raise error
        self.limiter.succeeded()
        return resp

    def resources_by_tag(
        self,
        service: str,
        path: str,
        tags: Mapping[str, Sequence[str]],
        *,
        string_paging: bool = False,
    ) -> list[dict[str, Any]]:
        """Every resource carrying each tag key with one of its values, as a
        ``resource_instances/action`` filter lists them (``resource_id``, ``resource_name``,
        ``resource_detail``, ``tags``), paged by offset. IMS wants ``limit``/``offset`` as
        strings (``string_paging``), EVS as integers."""
        wanted = [{"key": k, "values": list(v)} for k, v in sorted(tags.items())]
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            limit: int | str = str(TAG_PAGE) if string_paging else TAG_PAGE
            start: int | str = str(offset) if string_paging else offset
            body = {"action": "filter", "tags": wanted, "limit": limit, "offset": start}
            data = self.call(service, "POST", path, body=body).json()
            page = data.get("resources") if isinstance(data, dict) else None
            if not isinstance(page, list) or not page:
                return found
            found.extend(r for r in page if isinstance(r, dict))
            offset += len(page)
            total = data.get("total_count")
            if len(page) < TAG_PAGE or (isinstance(total, int) and offset >= total):
                return found

    def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: object = None,
    ) -> HttpResponse:
        """An idempotent call, retried while the fault is transient."""
        return self.retrier.run(lambda: self.send(service, method, path, query=query, body=body))


def parse_retry_after(value: str | None, runtime: Runtime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - runtime.clock()).total_seconds())
