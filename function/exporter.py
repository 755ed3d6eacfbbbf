"""Orders to outcomes: each volume exported once, concurrently within the shared limits, and
only while the invocation's time budget covers it (the rest is ``deferred``).
The exporter does not know which trigger it serves."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from function.cloud.evs import Accepted, EvsClient
from function.cloud.ims import ImsClient
from function.errors import ExportError
from function.runtime import Runtime
from function.work import ExportOrder, Outcome

log = structlog.get_logger("evs_export.exporter")

# Time kept back at the end of an invocation: handing leftovers on, building and delivering
# the results.
RESERVE_MS = 8000
FIRST_ESTIMATE_MS = 1500.0

AfterAccept = Callable[[ExportOrder, Accepted], Mapping[str, Any] | None]


class Exporter:
    def __init__(
        self,
        evs: EvsClient,
        ims: ImsClient,
        max_workers: int,
        runtime: Runtime | None = None,
        after_accept: AfterAccept | None = None,
    ) -> None:
        self.evs = evs
        self.ims = ims
        self.max_workers = max_workers
        self.runtime = runtime or Runtime()
        self.after_accept = after_accept
        self._lock = threading.Lock()
        self._slowest_ms = FIRST_ESTIMATE_MS

    def run(self, orders: Iterable[ExportOrder]) -> list[Outcome]:
        """Outcomes in the orders' order."""
        todo = list(orders)
        if len(todo) <= 1 or self.max_workers <= 1:
            return [self.export_one(o) for o in todo]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(todo))) as pool:
            base = contextvars.copy_context()  # log keys follow the work into the threads
            return list(pool.map(lambda o: base.copy().run(self.export_one, o), todo))

    def covers_another(self) -> bool:
        """True while the remaining time covers one more export (as slow as the slowest
        seen so far, twice over) plus the reserve."""
        with self._lock:
            needed = RESERVE_MS + 2 * self._slowest_ms
        return self.runtime.remaining_ms() > needed

    def export_one(self, order: ExportOrder) -> Outcome:
        if not self.covers_another():
            return Outcome("deferred", order.volume_id, order.image_name, order=order)
        started = time.monotonic()
        try:
            accepted = self.evs.export(
                order.volume_id, order.body, order.image_name, self.ims.find_export
            )
        except ExportError as exc:
            return Outcome(exc.outcome, order.volume_id, order.image_name, error=exc, order=order)
        except Exception as exc:  # a bug must cost one volume, not the invocation
            log.exception("export crashed", volume_id=order.volume_id)
            error = ExportError("InternalError", f"unexpected {type(exc).__name__}")
            error.outcome = "failed"
            return Outcome("failed", order.volume_id, order.image_name, error=error, order=order)
        finally:
            took = (time.monotonic() - started) * 1000
            with self._lock:
                self._slowest_ms = max(self._slowest_ms * 0.9, took)
        extra = self.after_accept(order, accepted) if self.after_accept is not None else None
        return Outcome(
            "accepted",
            order.volume_id,
            order.image_name,
            accepted=accepted,
            order=order,
            extra=dict(extra or {}),
        )
