"""Where result events go besides the log (which ``app`` writes, one line per event): the
signed webhook, the SMN topic and, for chat-triggered work, Slack's ``response_url``.

Each sink has one method, ``deliver(event)``, raising an ``ExportError`` when the event could
not be delivered after its retries. ``deliver_all`` runs them concurrently within the time
budget and never loses a failure silently: each one is an ERROR log line naming the event and
the sink, and an entry of the return value's ``deliveries.failed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import structlog

from function.cloud.client import CloudClient
from function.cloud.transport import Transport
from function.concurrency import parallel_map
from function.config import Settings
from function.errors import ConfigError, ExportError, InternalError
from function.runtime import Runtime
from function.work import Exports

log = structlog.get_logger("evs_export.sinks")


class Sink(Protocol):
    name: str

    def deliver(self, event: dict[str, Any]) -> None:
        """Deliver one event, or raise ExportError once retries are spent."""
        ...


@runtime_checkable
class BatchSink(Protocol):
    """A sink that takes the invocation's events in one message (Slack)."""

    name: str

    def deliver(self, event: dict[str, Any]) -> None: ...

    def deliver_batch(self, events: list[dict[str, Any]]) -> None: ...


@dataclass
class BrokenSink:
    """A configured sink that cannot work (bad URL, missing secret): every delivery fails
    with the configuration error, so nothing is dropped silently."""

    name: str
    error: ExportError

    def deliver(self, event: dict[str, Any]) -> None:
        raise self.error


def build_sinks(
    settings: Settings,
    runtime: Runtime,
    work: Exports,
    transport: Callable[[], Transport],
    connect: Callable[[], CloudClient],
) -> list[Sink]:
    """The sinks the configuration asks for (a broken one reports every event as failed)."""
    sinks: list[Sink] = []
    if settings.result_webhook_url:
        from function.sinks.webhook import WebhookSink

        if not settings.result_webhook_secret:
            sinks.append(
                BrokenSink(
                    "webhook",
                    ConfigError(
                        "RESULT_WEBHOOK_SECRET",
                        "RESULT_WEBHOOK_SECRET is not set: result webhooks are always signed",
                    ),
                )
            )
        else:
            try:
                sinks.append(
                    WebhookSink(
                        settings.result_webhook_url,
                        settings.result_webhook_secret,
                        transport(),
                        runtime,
                        settings,
                    )
                )
            except ExportError as exc:
                sinks.append(BrokenSink("webhook", exc))
    if settings.result_smn_topic_urn:
        from function.sinks.smn import SmnSink

        try:
            sinks.append(SmnSink(settings.result_smn_topic_urn, connect))
        except ExportError as exc:
            sinks.append(BrokenSink("smn", exc))
    if work.response_url:
        from function.sinks.slack import SlackSink

        try:
            sinks.append(SlackSink(work.response_url, transport(), runtime, settings))
        except ExportError as exc:
            sinks.append(BrokenSink("slack", exc))
    return sinks


@dataclass(frozen=True)
class _Job:
    sink: Sink
    events: list[dict[str, Any]]
    batch: bool


def deliver_all(
    sinks: Sequence[Sink], events: Sequence[dict[str, Any]], max_workers: int
) -> dict[str, Any]:
    """Deliver every event to every sink; ``{"sinks", "delivered", "failed"}`` where
    ``delivered`` counts (event, sink) pairs and ``failed`` lists
    ``{"event_id", "sink", "error"}``. Order across events is not guaranteed."""
    jobs: list[_Job] = []
    for sink in sinks:
        if not events:
            continue
        if isinstance(sink, BatchSink):
            jobs.append(_Job(sink, list(events), True))
        else:
            jobs.extend(_Job(sink, [event], False) for event in events)
    results = parallel_map(_run, jobs, max_workers)
    delivered = 0
    failed: list[dict[str, Any]] = []
    for job, error in zip(jobs, results, strict=True):
        if error is None:
            delivered += len(job.events)
            continue
        for event in job.events:
            event_id = str(event.get("id"))
            log.error(
                "result delivery failed",
                event_id=event_id,
                event_type=event.get("type"),
                sink=job.sink.name,
                error=error.as_dict(),
            )
            failed.append({"event_id": event_id, "sink": job.sink.name, "error": error.as_dict()})
    if jobs:
        log.info(
            "results delivered",
            sinks=[s.name for s in sinks],
            delivered=delivered,
            failed=len(failed),
        )
    return {"sinks": [s.name for s in sinks], "delivered": delivered, "failed": failed}


def _run(job: _Job) -> ExportError | None:
    try:
        if job.batch:
            assert isinstance(job.sink, BatchSink)
            job.sink.deliver_batch(job.events)
        else:
            job.sink.deliver(job.events[0])
    except ExportError as exc:
        return exc
    except Exception as exc:  # a bug in one sink must not lose the other deliveries
        log.exception("result sink crashed", sink=job.sink.name)
        return InternalError(exc)
    return None
