"""Route the event to its trigger, run the work, log and return the results.

Every outcome is a return value: errors are mapped to result events here, at the edge.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from function import log as logging_setup
from function.config import Settings
from function.errors import ConfigError, InvalidInput
from function.handoff import function_urn, side_request
from function.pipeline import Connection, policy_summaries, run_work
from function.results import EventContext, outcome_event, summarize
from function.runtime import Runtime
from function.triggers import route
from function.work import Exports, HandOff, ImageQuery, Rejection, Reply, Work

if TYPE_CHECKING:  # the cloud stack loads when an export needs it, not on import
    from function.cloud.transport import Transport

log = structlog.get_logger("evs_export")

ACCEPTED_SHAPES = (
    'a direct export {"volume_id": "<uuid>", "os-volume_upload_image": {"image_name": ...}}, '
    'a batch {"exports": [...]}, a TIMER event, an API Gateway request or a CTS trace'
)


def invoke(
    event: object,
    context: Any,
    *,
    cold_start: bool = False,
    env: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> dict[str, Any]:
    """The whole invocation: settings and runtime from the context, logging, then ``handle``."""
    settings = Settings.from_env(os.environ if env is None else env, context)
    runtime = Runtime.from_context(context, cold_start)
    logging_setup.configure(settings.log_level)
    logging_setup.start_invocation(
        cold_start=cold_start,
        function_name=runtime.function_name,
        function_version=runtime.function_version,
        request_id=runtime.request_id,
        correlation_id=runtime.request_id,  # until the trigger names the correlation
    )
    return handle(event, settings, runtime, transport)


def handle(
    event: object, settings: Settings, runtime: Runtime, transport: Transport | None = None
) -> dict[str, Any]:
    logging_setup.REDACTOR.register(settings.secret_values())
    began = runtime.clock()
    trigger = route(event)
    work: Work
    if trigger is None:
        rejection = Rejection(None, _unknown_event(event))
        work = Exports("direct", runtime.request_id, items=(rejection,))
    else:
        work = trigger.parse(event, settings, runtime)
    structlog.contextvars.bind_contextvars(trigger=work.trigger, correlation_id=work.correlation_id)
    match work:
        case Reply():
            log.info("answered without export work", trigger=work.trigger)
            return work.response
        case HandOff() | ImageQuery():
            connect = Connection(settings, runtime, transport)
            side = logging_setup.REDACTOR.mask(side_request(work, settings, runtime, connect))
            return work.respond(side)
        case Exports():
            return run_exports(work, settings, runtime, transport, began)


def run_exports(
    work: Exports,
    settings: Settings,
    runtime: Runtime,
    transport: Transport | None,
    began: datetime,
) -> dict[str, Any]:
    """The export pipeline, the life cycle, the deliveries and the summary of ``work``."""
    connect = Connection(settings, runtime, transport)
    ran = run_work(work, settings, runtime, connect)
    outcomes, notes = ran.outcomes, ran.notes
    ctx = EventContext(
        source=event_source(settings, runtime),
        trigger=work.trigger,
        correlation_id=work.correlation_id,
        now=runtime.clock,
        new_id=runtime.new_id,
    )
    events = [outcome_event(ctx, o) for o in outcomes]
    sections: dict[str, Any] = {}
    per_policy: dict[str, dict[str, int]] = {}
    copies: dict[str, dict[str, Any]] = {}
    if work.tasks:
        from function.lifecycle import run_tasks

        life = run_tasks(work, outcomes, ctx, connect, settings.max_concurrency, ran.selections)
        events += life.events
        notes = [*notes, *life.notes]
        sections.update(life.sections)
        per_policy = life.per_policy
        copies = life.copies
    events += policy_summaries(work, outcomes, per_policy, ctx, began, copies, ran.selections)
    # An API may echo what it was sent: no registered secret leaves in a result or delivery.
    events = logging_setup.REDACTOR.mask(events)
    for ev in events:
        level = "warning" if ev["type"].endswith(("rejected", "failed")) else "info"
        getattr(log, level)(ev["type"], cloudevent=ev)
    summary = summarize(events)
    result: dict[str, Any] = {"results": events, "summary": summary, **sections}
    if sinks_configured(settings, work):
        from function.cloud.transport import default_transport
        from function.sinks import build_sinks, deliver_all

        sinks = build_sinks(
            settings, runtime, work, lambda: transport or default_transport(), connect
        )
        result["deliveries"] = deliver_all(sinks, events, settings.max_concurrency)
    notes = [n for n in [work.note, *notes] if n]
    if notes:
        result["message"] = "; ".join(notes)
    log.info("invocation summary", summary=summary, notes=notes or None)
    # The events were masked above; the rest of the result is masked here, once.
    result = {k: v if k == "results" else logging_setup.REDACTOR.mask(v) for k, v in result.items()}
    return work.respond(result) if work.respond is not None else result


def sinks_configured(settings: Settings, work: Exports) -> bool:
    """Whether result events go anywhere besides the log (webhook, SMN, Slack)."""
    return bool(settings.result_webhook_url or settings.result_smn_topic_urn or work.response_url)


def event_source(settings: Settings, runtime: Runtime) -> str:
    """The CloudEvents ``source``: this function's URN where it can be known."""
    try:
        return function_urn(settings, runtime)
    except ConfigError:
        return f"urn:fss:local:function:{runtime.function_name}"


def _unknown_event(event: object) -> InvalidInput:
    kind = type(event).__name__ if not isinstance(event, Mapping) else "object"
    if event is None:
        what = "the event is empty (null)"
    elif isinstance(event, Mapping):
        keys = ", ".join(sorted(str(k) for k in list(event)[:8])) or "no keys"
        what = f"the event object ({keys}) is not a known shape"
    else:
        what = f"the event is a JSON {kind}, not an object"
    return InvalidInput("event", f"{what}; expected {ACCEPTED_SHAPES}", "UnsupportedEvent")
