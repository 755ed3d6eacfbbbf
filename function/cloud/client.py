"""One signed client over the transport: endpoints, signing, error mapping, a shared rate
limiter with congestion control (429s), and retries of what is transient with capped
full-jitter backoff that honours ``Retry-After``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from function.budget import LOOK_MIN_MS, SAFETY_MARGIN_MS
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
TAG_PAGE = 1000  # the most a resource_instances filter returns per request


class Limiter:
    """Bounds requests in flight and their rate, shared by every client of one invocation.

    The rate is a token bucket: a burst of up to ``min(rate, max_in_flight)`` requests goes at
    once, then requests are spaced ``1/rate`` apart (a request may borrow ahead and wait its
    turn). The rate follows a congestion model like TCP CUBIC and the AWS SDKs' adaptive
    retry mode:

    - **Only a 429 is congestion.** 5xx answers, resets and timeouts are retried per request,
      with that request's own backoff; they leave the shared rate alone.
    - **A burst is one signal.** A 429 for a request sent before the last decrease was
      answered under the old rate, and is part of the burst that decrease already answered:
      it is counted (``throttles``) but changes nothing. Nor does one that comes less than
      ``DECREASE_INTERVAL`` after the last decrease (the gateway counts its limits over
      windows of one second or more: 429s within one are the same signal). So twenty 429s
      answered together cost one decrease, and there is at most one per round trip and per
      interval.
    - **Multiplicative decrease to a relative floor**: ``rate = max(floor, BETA * rate)``
      with ``floor = FLOOR_FRACTION * max_rate`` (never an absolute figure), and the burst
      is spent.
    - **Recovery over time**: each success sets the rate to the cubic
      ``W(t) = C * (t - K)**3 + W_max`` (``t``: seconds since the last decrease, ``W_max``:
      the rate before it, ``K = cbrt(W_max * (1 - BETA) / C)``), capped at ``max_rate``: fast
      at first, flat near the rate that was throttled, then probing beyond it.
    - A ``Retry-After`` (which Huawei's gateway does not send, but others may) holds every
      request until then.

    It also keeps the smoothed round-trip time (``srtt``, on its clock) and, in the
    invocation's budget, what a request costs (``cost_ms``, smoothed as TCP smooths its round
    trip), which the exporter's reserve uses.
    """

    BETA = 0.7
    C = 0.4
    DECREASE_INTERVAL = 1.0
    FLOOR_FRACTION = 0.1
    FIRST_COST_MS = 1000.0

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
        self.floor = per_second * self.FLOOR_FRACTION
        self._burst = max(1.0, min(per_second, float(max_in_flight)))
        self._tokens = self._burst
        self._last = clock()
        self._pause_until = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep
        self._clock = clock
        self._decreased_at: float | None = None
        self._w_max = per_second
        self._k = 0.0
        self.srtt: float | None = None
        self._cost: float | None = None
        self.in_flight = 0
        self.peak_in_flight = 0
        self.sent = 0
        self.throttles = 0
        self.decreases = 0

    def now(self) -> float:
        """The limiter's clock: stamp a request with it when it is sent."""
        return self._clock()

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

    def throttled(self, retry_after: float | None, sent_at: float | None = None) -> None:
        """The API said 429 to a request sent at ``sent_at`` (default: one round trip ago).
        Decrease the rate once per burst, and hold every request for ``retry_after``."""
        with self._lock:
            self.throttles += 1
            now = self._clock()
            if sent_at is None:
                sent_at = now - (self.srtt or 0.0)
            last = self._decreased_at
            if last is None or (sent_at > last and now - last >= self.DECREASE_INTERVAL):
                self._refill(now)
                self.decreases += 1
                self._w_max = self.rate
                self.rate = max(self.floor, self.BETA * self.rate)
                self._k = (max(0.0, self._w_max - self.rate) / self.C) ** (1 / 3)
                self._decreased_at = now
                self._tokens = min(self._tokens, 0.0)
            if retry_after:
                self._pause_until = max(self._pause_until, now + min(retry_after, RETRY_AFTER_CAP))

    def succeeded(self, sent_at: float | None = None) -> None:
        """A request sent at ``sent_at`` was answered: learn the round trip, win rate back."""
        with self._lock:
            now = self._clock()
            if sent_at is not None:
                rtt = max(0.0, now - sent_at)
                self.srtt = rtt if self.srtt is None else 0.875 * self.srtt + 0.125 * rtt
            if self._decreased_at is None or self.rate >= self.max_rate:
                return
            t = now - self._decreased_at
            cubic = self.C * (t - self._k) ** 3 + self._w_max
            self._refill(now)
            self.rate = min(self.max_rate, max(self.rate, cubic))

    def _refill(self, now: float) -> None:
        """Credit the tokens earned at the current rate before the rate changes."""
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def observe_cost(self, ms: float) -> None:
        """What one request cost of the invocation's time budget (answered or not)."""
        with self._lock:
            self._cost = ms if self._cost is None else 0.875 * self._cost + 0.125 * ms

    @property
    def cost_ms(self) -> float:
        """The smoothed cost of a request in the budget (``FIRST_COST_MS`` until one has been
        seen): a request sent now is likely to cost about this much."""
        with self._lock:
            return self.FIRST_COST_MS if self._cost is None else self._cost


def is_ambiguous(exc: ExportError) -> bool:
    """Whether a failed request may have been processed: a reset or timeout after it was
    sent, or a 5xx other than 503 (429 and 503 are refusals before any work)."""
    if isinstance(exc, TransportError):
        return exc.maybe_sent
    if isinstance(exc, ApiError):
        return exc.http_status not in (429, 503)
    return False


class Retrier:
    """Runs an idempotent attempt (or one whose resend is checked first) in place until it
    succeeds, fails for good, or the budget would run out. The export itself is not retried
    here but requeued by the exporter (``function.exporter``), which uses ``delay``."""

    def __init__(self, runtime: Runtime, max_attempts: int) -> None:
        self.runtime = runtime
        self.max_attempts = max_attempts

    def run(
        self,
        attempt: Callable[[], T],
        before_resend: Callable[[], T | None] | None = None,
        margin_ms: float = SAFETY_MARGIN_MS,
    ) -> T:
        """``before_resend`` runs after an ambiguous failure of a non-idempotent call; a
        non-None answer (the work was done after all) ends the loop without sending again.
        A retry is made only while ``margin_ms`` of the budget would be left after its wait
        (what must still fit after this call)."""
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except (ApiError, TransportError) as exc:
                if exc.outcome != "failed":
                    raise
                error: ExportError = exc
                ambiguous = is_ambiguous(exc)
                retry_after = exc.retry_after if isinstance(exc, ApiError) else None
            delay = self.delay(tries, retry_after)
            final: ExportError | None = None
            if tries >= self.max_attempts:
                final = error
            elif not self.runtime.budget.covers(delay * 1000, margin_ms):
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
        if not ambiguous or before_resend is None or not self.runtime.budget.covers(0, LOOK_MIN_MS):
            return None
        try:
            return before_resend()
        except ExportError:
            return None

    def delay(self, tries: int, retry_after: float | None, cap: float = BACKOFF_CAP) -> float:
        """Full-jitter backoff after the ``tries``-th failure, at least ``Retry-After``."""
        jitter = self.runtime.rng.uniform(0, min(cap, BACKOFF_BASE * 2 ** (tries - 1)))
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
            settings.max_concurrency,
            settings.max_requests_per_second,
            runtime.sleep,
            runtime.monotonic,
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
        budget = max(1.0, self.runtime.budget.seconds_left(SAFETY_MARGIN_MS))
        connect_timeout = min(self.settings.connect_timeout, budget / 2)
        read_timeout = min(self.settings.read_timeout, budget - connect_timeout)
        with self.limiter:
            sent_at = self.limiter.now()
            before_ms = self.runtime.remaining_ms()
            try:
                resp = self.transport.send(
                    method,
                    request.url,
                    request.headers,
                    request.body,
                    (connect_timeout, read_timeout),
                )
            finally:
                self.limiter.observe_cost(max(0, before_ms - self.runtime.remaining_ms()))
        if resp.status >= 400:
            code, message = parse_error_body(resp.json(), resp.status)
            error = ApiError(resp.status, code, message, resp.request_id)
            error.retry_after = parse_retry_after(resp.header("Retry-After"), self.runtime)
            if resp.status == 429:
                self.limiter.throttled(error.retry_after, sent_at)
            raise error
        self.limiter.succeeded(sent_at)
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
        margin_ms: float = SAFETY_MARGIN_MS,
    ) -> HttpResponse:
        """An idempotent call, retried while the fault is transient and ``margin_ms`` of the
        budget would be left after the wait."""
        return self.retrier.run(
            lambda: self.send(service, method, path, query=query, body=body),
            margin_ms=margin_ms,
        )


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
