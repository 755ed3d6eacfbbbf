"""Orders to outcomes: each volume exported once, concurrently within the shared limits.
The exporter does not know which trigger it serves."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import structlog

from function.cloud.evs import EvsClient
from function.cloud.ims import ImsClient
from function.errors import ExportError
from function.work import ExportOrder, Outcome

log = structlog.get_logger("evs_export.exporter")


class Exporter:
    def __init__(self, evs: EvsClient, ims: ImsClient, max_workers: int) -> None:
        self.evs = evs
        self.ims = ims
        self.max_workers = max_workers

    def run(self, orders: Iterable[ExportOrder]) -> list[Outcome]:
        """Outcomes in the orders' order."""
        todo = list(orders)
        if len(todo) <= 1 or self.max_workers <= 1:
            return [self.export_one(o) for o in todo]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(todo))) as pool:
            base = contextvars.copy_context()  # log keys follow the work into the threads
            return list(pool.map(lambda o: base.copy().run(self.export_one, o), todo))

    def export_one(self, order: ExportOrder) -> Outcome:
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
        return Outcome(
            "accepted", order.volume_id, order.image_name, accepted=accepted, order=order
        )
