"""Orders to outcomes: each volume exported once, concurrently within the shared limits, and
only while the invocation's time budget covers it (the rest is ``deferred``).
The exporter does not know which trigger it serves.

**Transient failures wait their turn.** Workers take orders from one queue. An export
attempt that meets a transient fault (429, 5xx, reset, timeout) sends its order to the back
of the queue with a backoff before which it is not tried again (other orders go meanwhile),
so the volumes that met a storm are retried after it, not inside it. An order keeps its
attempt count across requeues and continuations; only one that fails ``max_attempts`` times
(or meets a permanent error) ends ``failed``. A 429 is the API saying "slower", not the
volume failing: it does not spend an attempt (the shared limiter slows down instead), but an
order throttled ``THROTTLES_PER_INVOCATION`` times in one invocation is handed on.

**Ambiguity is remembered.** After an attempt that may have been processed (a reset or
timeout once sent, a 5xx other than 503) the order is marked ``ambiguous``, and every later
attempt, here or in a continuation, first asks IMS for the image by name
(``ImsClient.find_export``): one order never makes two images.

**When time runs out, what is transient is handed on.** Before each attempt the exporter
checks that the remaining time covers it and the reserve; if not, the order (with its
attempts and ambiguity) ends ``deferred`` and ``handoff.hand_on`` gives it to the continuation.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from function.budget import LOOK_MIN_MS
from function.cloud.client import BACKOFF_CAP, RETRY_AFTER_CAP, is_ambiguous
from function.cloud.evs import EvsClient
from function.cloud.ims import ImsClient
from function.cloud.records import Accepted
from function.concurrency import run_workers
from function.errors import ApiError, ExportError, InternalError
from function.runtime import Runtime
from function.work import ExportOrder, Outcome

log = structlog.get_logger("evs_export.exporter")

THROTTLES_PER_INVOCATION = 20  # 429s one order may meet in one invocation before it is handed on
THROTTLE_BACKOFF_CAP = RETRY_AFTER_CAP  # a throttling window can be minutes long
DEFAULT_MAX_ATTEMPTS = 5

AfterAccept = Callable[[ExportOrder, Accepted], Mapping[str, Any] | None]


@dataclass
class Reserve:
    """The time an invocation keeps back after its last export, from what the rest costs.

    After the exports come the hand-off (one asynchronous invocation, with one retry) and the
    delivery of the result events (``per_event`` requests per event to the webhook and SMN,
    ``max_concurrency`` at a time, plus ``batches`` single messages such as Slack's), then the
    return itself (``RETURN_MS``). Each request is priced at ``cost_ms()``, what requests have
    cost of this invocation's budget so far (``Limiter.cost_ms``: cautious, and one second
    before the first answer).

    With FunctionGraph's default 3 s timeout the reserve is about two request costs plus
    ``RETURN_MS``: once measured requests are fast (tens of milliseconds) the invocation
    still exports a few volumes and hands the rest on; when nothing fits (slow answers) every
    order is deferred, each continuation again hands on, and at the hop limit the orders end
    ``failed`` (``HopLimitReached``, whose message says to raise the timeout). Calls before
    the exports (planning, duplicate checks) keep their own margin (``SAFETY_MARGIN_MS``) and
    may already run out of time there; give the function at least 30 s.
    """

    cost_ms: Callable[[], float]
    events: int = 0
    per_event: int = 0
    batches: int = 0
    max_concurrency: int = 1

    RETURN_MS = 500.0
    HANDOFF_REQUESTS = 2

    def ms(self) -> float:
        """The reserve, now."""
        return self.after_handoff_ms() + self.HANDOFF_REQUESTS * self.cost_ms()

    def after_handoff_ms(self) -> float:
        """What must still fit once the hand-off is done: the deliveries and the return (the
        hand-off's retries may use the rest)."""
        rounds = math.ceil(self.events * self.per_event / max(1, self.max_concurrency))
        return self.RETURN_MS + (rounds + self.batches) * self.cost_ms()


@dataclass
class _Entry:
    """One order in the queue, with what this invocation and earlier ones learnt of it."""

    index: int
    order: ExportOrder
    attempts: int
    ambiguous: bool
    throttles: int = 0
    not_before: float = 0.0


class Exporter:
    def __init__(
        self,
        evs: EvsClient,
        ims: ImsClient,
        max_workers: int,
        runtime: Runtime | None = None,
        after_accept: AfterAccept | None = None,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        reserve: Reserve | None = None,
    ) -> None:
        self.evs = evs
        self.ims = ims
        self.max_workers = max_workers
        self.runtime = runtime or Runtime()
        self.after_accept = after_accept
        self.max_attempts = max_attempts
        self.reserve = reserve or Reserve(lambda: evs.client.limiter.cost_ms)
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: deque[_Entry] = deque()
        self._busy = 0
        self._export_ms: float | None = None
        self.requeued = 0

    def run(self, orders: Iterable[ExportOrder]) -> list[Outcome]:
        """Outcomes in the orders' order."""
        todo = list(orders)
        results: list[Outcome | None] = [None] * len(todo)
        self._queue = deque(_Entry(i, o, o.attempts, o.ambiguous) for i, o in enumerate(todo))
        run_workers(lambda: self._work(results), min(self.max_workers, len(todo)))
        return [r for r in results if r is not None]

    def export_ms(self) -> float:
        """What one export costs of the budget, cautiously: the slowest recent attempt (its
        time includes waiting for the others in flight, which finish with it), or two
        request costs before the first."""
        with self._lock:
            seen = self._export_ms
        return seen if seen is not None else 2 * self.evs.client.limiter.cost_ms

    def covers(self, wait_s: float = 0.0) -> bool:
        """True while the remaining time covers a wait of ``wait_s``, one more export and
        the reserve."""
        return self.runtime.budget.covers(wait_s * 1000 + self.export_ms(), self.reserve.ms())

    def covers_another(self) -> bool:
        return self.covers()

    # --- the queue ---------------------------------------------------------------------------

    def _work(self, results: list[Outcome | None]) -> None:
        while (entry := self._take()) is not None:
            outcome: Outcome | None = None
            done = False
            try:
                outcome = self._step(entry)
                done = True
            finally:
                with self._ready:
                    self._busy -= 1
                    if outcome is not None:
                        results[entry.index] = outcome
                    elif done:  # back of the queue (an exception is not retried: it rises)
                        self._queue.append(entry)
                    self._ready.notify_all()

    def _take(self) -> _Entry | None:
        """The first order that may go now, else the one that may go soonest; None when the
        queue is empty and no order in flight can come back to it."""
        with self._ready:
            while not self._queue:
                if self._busy == 0:
                    return None
                self._ready.wait()
            now = self.runtime.monotonic()
            pick = next((e for e in self._queue if e.not_before <= now), None)
            if pick is None:
                pick = min(self._queue, key=lambda e: e.not_before)
            self._queue.remove(pick)
            self._busy += 1
            return pick

    def _step(self, entry: _Entry) -> Outcome | None:
        """One attempt of one order: its outcome, or None when it goes back to the queue."""
        wait = max(0.0, entry.not_before - self.runtime.monotonic())
        if not self.covers(wait):
            return self._deferred(entry)
        if wait > 0:
            self.runtime.sleep(wait)
        before = self.runtime.remaining_ms()
        try:
            return self._attempt(entry)
        finally:  # what the attempt cost, the provenance tags included
            self._observe(before - self.runtime.remaining_ms())

    def _attempt(self, entry: _Entry) -> Outcome | None:
        order = entry.order
        try:
            accepted = self.evs.export_once(
                order.volume_id,
                order.upload,
                self.ims.find_export if entry.ambiguous else None,
            )
        except ExportError as exc:
            if exc.outcome != "failed":
                return Outcome(
                    exc.outcome, order.volume_id, order.image_name, error=exc, order=order
                )
            return self._transient(entry, exc)
        except Exception as exc:  # a bug must cost one volume, not the invocation
            log.exception("export crashed", volume_id=order.volume_id)
            error = InternalError(exc)
            return Outcome(
                error.outcome, order.volume_id, order.image_name, error=error, order=order
            )
        return self._accepted(order, accepted)

    def _transient(self, entry: _Entry, exc: ExportError) -> Outcome | None:
        """After a transient failure: back to the queue, handed on, or failed for good."""
        order = entry.order
        entry.ambiguous = entry.ambiguous or is_ambiguous(exc)
        throttled = isinstance(exc, ApiError) and exc.http_status == 429
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        if throttled:
            entry.throttles += 1
            if entry.throttles >= THROTTLES_PER_INVOCATION:
                return self._deferred(entry)
            delay = self.evs.client.retrier.delay(
                entry.throttles, retry_after, THROTTLE_BACKOFF_CAP
            )
        else:
            entry.attempts += 1
            if entry.attempts >= self.max_attempts:
                return self._give_up(entry, exc)
            delay = self.evs.client.retrier.delay(entry.attempts, retry_after, BACKOFF_CAP)
        entry.not_before = self.runtime.monotonic() + delay
        with self._lock:
            self.requeued += 1
        log.info(
            "export requeued",
            volume_id=order.volume_id,
            attempts=entry.attempts,
            throttles=entry.throttles,
            ambiguous=entry.ambiguous,
            error=exc.as_dict(),
            delay_s=round(delay, 3),
        )
        return None

    def _give_up(self, entry: _Entry, exc: ExportError) -> Outcome:
        """Attempts spent: ``failed``, unless the last look finds the image an ambiguous
        attempt made."""
        order = entry.order
        found = self.recover(order) if entry.ambiguous else None
        if found is not None:
            return found
        return Outcome("failed", order.volume_id, order.image_name, error=exc, order=order)

    def recover(self, order: ExportOrder) -> Outcome | None:
        """A last look for the image an ambiguous attempt of ``order`` may have made (while
        at least ``LOOK_MIN_MS`` is left): its ``accepted`` outcome when IMS has it. Used
        before an order ends ``failed`` here or because it cannot be handed on."""
        if not self.runtime.budget.covers(0, LOOK_MIN_MS):
            return None
        try:
            found = self.ims.find_export(order.image_name)
        except ExportError:
            return None
        return self._accepted(order, found) if found is not None else None

    def _deferred(self, entry: _Entry) -> Outcome:
        carried = dataclasses.replace(
            entry.order, attempts=entry.attempts, ambiguous=entry.ambiguous
        )
        return Outcome("deferred", carried.volume_id, carried.image_name, order=carried)

    def _accepted(self, order: ExportOrder, accepted: Accepted) -> Outcome:
        extra = self.after_accept(order, accepted) if self.after_accept is not None else None
        return Outcome(
            "accepted",
            order.volume_id,
            order.image_name,
            accepted=accepted,
            order=order,
            extra=dict(extra or {}),
        )

    def _observe(self, ms: float) -> None:
        """An attempt cost ``ms`` of the budget: the estimate follows the slowest attempt
        seen, fading by a tenth per attempt."""
        with self._lock:
            prev = self._export_ms
            self._export_ms = max(0.0, ms) if prev is None else max(0.9 * prev, ms)
