"""Route the event to its trigger, run the work, log and return the results.

Every outcome is a return value: errors are mapped to result events here, at the edge.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from function import log as logging_setup
from function.budget import SAFETY_MARGIN_MS
from function.config import Settings
from function.errors import ConfigError, ExportError, InvalidInput
from function.results import EventContext, outcome_event, policy_completed_event, summarize
from function.runtime import Runtime
from function.triggers import route
from function.work import ExportOrder, Outcome, PlanRequest, Rejection, Work

if TYPE_CHECKING:  # the cloud stack loads when an export needs it, not on import
    from function.cloud.client import CloudClient
    from function.cloud.transport import Transport
    from function.exporter import Reserve

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
    if trigger is None:
        work = Work("direct", runtime.request_id, [Rejection(None, _unknown_event(event))])
    else:
        work = trigger.parse(event, settings, runtime)
    structlog.contextvars.bind_contextvars(trigger=work.trigger, correlation_id=work.correlation_id)
    if work.response is not None:
        log.info("answered without export work", trigger=work.trigger)
        return work.response
    connect = Connection(settings, runtime, transport)
    if work.handoff is not None or work.image_query is not None:
        side = logging_setup.REDACTOR.mask(side_request(work, settings, runtime, connect))
        return work.respond(side) if work.respond is not None else side
    outcomes, notes = run_work(work, settings, runtime, connect)
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

        life = run_tasks(work, outcomes, ctx, connect, settings.max_concurrency)
        events += life.events
        notes = [*notes, *life.notes]
        sections.update(life.sections)
        per_policy = life.per_policy
        copies = life.copies
    events += policy_summaries(work, outcomes, per_policy, ctx, began, copies)
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


def sinks_configured(settings: Settings, work: Work) -> bool:
    """Whether result events go anywhere besides the log (webhook, SMN, Slack)."""
    return bool(settings.result_webhook_url or settings.result_smn_topic_urn or work.response_url)


class Connection:
    """The invocation's one signed client, built when first needed and shared by every
    phase (exports, life cycle, SMN), so a slow-down after 429s holds for all of them."""

    def __init__(self, settings: Settings, runtime: Runtime, transport: Transport | None) -> None:
        self._args = (settings, runtime, transport)
        self._client: CloudClient | None = None
        self._lock = threading.Lock()

    def __call__(self) -> CloudClient:
        """The client; ConfigError when the settings do not allow one."""
        with self._lock:
            if self._client is None:
                self._client = build_client(*self._args)
            return self._client


def run_work(
    work: Work, settings: Settings, runtime: Runtime, connect: Connection
) -> tuple[list[Outcome], list[str]]:
    """Resolve plans, drop duplicates and dry runs, export the rest; outcomes in order.
    Nothing is sent when the configuration is unusable."""
    from function.cloud.ecs import EcsClient
    from function.cloud.evs import EvsClient
    from function.cloud.ims import ImsClient
    from function.exporter import Exporter
    from function.plan import Planner

    items: list[ExportOrder | Rejection | Outcome] = list(work.items)
    needs_cloud = bool(work.plans) or any(isinstance(i, ExportOrder) for i in items)
    if not needs_cloud:
        return [_settled(i) for i in items], []
    try:
        client = connect()
    except ExportError as exc:
        log.error("configuration error", error=exc.as_dict())
        items += [Rejection(None, exc) for _ in work.plans]
        return [_settled(i, exc) for i in items], []
    planner = Planner(EvsClient(client), EcsClient(client), ImsClient(client))
    waits: list[PlanRequest] = []  # servers still stopping, to wait for in a later invocation
    waiting: list[Outcome] = []  # their disks, deferred
    for plan in work.plans:
        if plan.stop_deadline is not None:
            from function.stopwait import await_stopped

            wait = await_stopped(plan, planner.ecs, runtime)
            items.extend(wait.outcomes)
            waiting.extend(o for o in wait.outcomes if o.kind == "deferred")
            if wait.waiting is not None:
                waits.append(wait.waiting)
            if wait.ready is None:
                continue
            plan = wait.ready
        try:
            items.extend(planner.resolve(plan))
        except ExportError as exc:
            items.append(Outcome(exc.outcome, None, error=exc))
    work.selections.update(planner.selections)
    orders = [i for i in items if isinstance(i, ExportOrder)]
    try:
        # An order an earlier attempt may have exported is looked up by the exporter, which
        # reports the image it finds as that order's export (not a duplicate).
        settled = planner.dedupe([o for o in orders if not o.ambiguous])
    except ExportError as exc:
        # Without the duplicate check an export could make a second image: do not send.
        settled = {
            id(o): Outcome(exc.outcome, o.volume_id, o.image_name, error=exc, order=o)
            for o in orders
        }
    to_send = [o for o in orders if id(o) not in settled]
    from function.lifecycle import provenance_tagger

    tagger = provenance_tagger(planner.ims, work.trigger, runtime.clock)
    reserve = delivery_reserve(settings, work, client, len(items))
    exporter = Exporter(
        planner.evs,
        planner.ims,
        settings.max_concurrency,
        runtime,
        after_accept=tagger,
        max_attempts=settings.max_attempts,
        reserve=reserve,
    )
    settled.update({id(o): out for o, out in zip(to_send, exporter.run(to_send), strict=True)})
    # A deferred outcome carries its order as the continuation must see it (attempts spent,
    # whether one may have made an image).
    deferred = [o for o in orders if settled[id(o)].kind == "deferred"]
    if deferred or waits:
        carried = [settled[id(o)].order or o for o in deferred]
        handed = hand_on(
            work,
            carried,
            client,
            settings,
            runtime,
            planner.notes,
            waits,
            waiting,
            margin_ms=reserve.after_handoff_ms(),
        )
        for original, order in zip(deferred, carried, strict=True):
            if id(order) in handed:  # not handed on: failed, unless an earlier attempt made it
                recovered = exporter.recover(order) if order.ambiguous else None
                settled[id(original)] = recovered or handed[id(order)]
        settled.update({id(o): handed[id(o)] for o in waiting if id(o) in handed})
    return [settled.get(id(i)) or _settled(i) for i in items], planner.notes


def delivery_reserve(settings: Settings, work: Work, client: CloudClient, events: int) -> Reserve:
    """What the exporter keeps back for the hand-off and the delivery of ``events`` result
    events to the configured sinks, priced at what this invocation's requests cost."""
    from function.exporter import Reserve

    per_event = int(bool(settings.result_webhook_url)) + int(bool(settings.result_smn_topic_urn))
    return Reserve(
        lambda: client.limiter.cost_ms,
        events=events,
        per_event=per_event,
        batches=int(bool(work.response_url)),
        max_concurrency=settings.max_concurrency,
    )


def hand_on(
    work: Work,
    deferred: list[ExportOrder],
    client: CloudClient,
    settings: Settings,
    runtime: Runtime,
    notes: list[str],
    waits: Sequence[PlanRequest] = (),
    waiting: Sequence[Outcome] = (),
    margin_ms: float | None = None,
) -> dict[int, Outcome]:
    """Hand the orders the budget did not cover, and the servers still stopping (``waits``,
    whose disks are ``waiting``), to an asynchronous invocation of this function; if that is
    impossible they end ``failed`` here, never silently dropped. Keyed by ``id`` of the
    order or waiting outcome they replace. ``margin_ms`` defaults to the client's
    ``SAFETY_MARGIN_MS``."""
    from function.cloud.functiongraph import FunctionGraphClient
    from function.triggers import continuation

    error: ExportError | None = None
    waiting_chain = bool(waits) or any(p.stop_deadline is not None for p in work.plans)
    limit = continuation.MAX_WAIT_HOPS if waiting_chain else continuation.MAX_HOPS
    if work.hop >= limit:
        error = ExportError(
            "HopLimitReached",
            f"the time budget ran out {limit} invocations in a row; "
            "raise the function's timeout or narrow the selection",
        )
    else:
        try:
            urn = function_urn(settings, runtime)
            event = continuation.build(work, deferred, waits)
            margin = SAFETY_MARGIN_MS if margin_ms is None else margin_ms
            request_id = FunctionGraphClient(client).invoke_async(urn, event, margin)
        except ExportError as exc:
            error = ExportError("ContinuationFailed", f"could not hand the rest on: {exc.message}")
        else:
            if deferred:
                notes.append(
                    f"{len(deferred)} volume(s) handed to asynchronous invocation {request_id}"
                )
            servers = sum(len(p.server_ids) for p in waits)
            if servers:
                notes.append(
                    f"{servers} server(s) not yet SHUTOFF: waiting handed to asynchronous "
                    f"invocation {request_id}"
                )
            log.info(
                "work handed on",
                deferred=len(deferred),
                waiting_servers=servers,
                async_request_id=request_id,
            )
            return {}
    error.outcome = "failed"
    log.error(
        "deferred work not handed on",
        error=error.as_dict(),
        volumes=len(deferred) + len(waiting),
    )
    failed = {
        id(o): Outcome("failed", o.volume_id, o.image_name, error=error, order=o) for o in deferred
    }
    failed.update(
        {id(o): Outcome("failed", o.volume_id, error=error, extra=o.extra) for o in waiting}
    )
    return failed


def timer_policies(work: Work) -> list[str]:
    """The timer policies this invocation works on: the timer's own, or, in a continuation
    of a timer run, those its orders carry."""
    if work.trigger != "timer":
        return []
    names = [p.policy for p in work.plans if p.policy]
    if work.hop > 0:
        names += [i.policy for i in work.items if isinstance(i, ExportOrder) and i.policy]
    return list(dict.fromkeys(names))


def policy_summaries(
    work: Work,
    outcomes: list[Outcome],
    per_policy: Mapping[str, Mapping[str, int]],
    ctx: EventContext,
    began: datetime,
    copies: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One ``evs.policy.completed`` per timer policy this invocation worked on (with its
    disaster-recovery ``copies`` when it has any)."""
    events: list[dict[str, Any]] = []
    for name in timer_policies(work):
        mine = [o for o in outcomes if o.order is None or o.order.policy in (None, name)]
        selection = work.selections.get(name)
        if selection is None:  # a continuation: the orders handed to it
            selected, excluded = len(mine), 0
        else:
            selected, excluded = selection.selected, selection.excluded
        events.append(
            policy_completed_event(
                ctx,
                policy=name,
                hop=work.hop,
                selected=selected,
                excluded=excluded,
                outcomes=[o.kind for o in mine],
                lifecycle=per_policy.get(name, {}),
                duration_s=max(0.0, (ctx.now() - began).total_seconds()),
                copies=(copies or {}).get(name),
            )
        )
    return events


def _settled(item: ExportOrder | Rejection | Outcome, error: ExportError | None = None) -> Outcome:
    """The outcome of an item that is not sent."""
    if isinstance(item, Outcome):
        return item
    if isinstance(item, Rejection):
        return Outcome("rejected", item.volume_id, item.image_name, error=item.error)
    assert error is not None
    return Outcome(error.outcome, item.volume_id, item.image_name, error=error, order=item)


def side_request(
    work: Work, settings: Settings, runtime: Runtime, connect: Connection
) -> dict[str, Any]:
    """Work that is not an export: hand the work to an asynchronous invocation of this
    function, or read one image's status."""
    result: dict[str, Any] = {"results": [], "summary": summarize([])}
    key = "handoff" if work.handoff is not None else "image"
    try:
        client = connect()
        if work.handoff is not None:
            from function.cloud.functiongraph import FunctionGraphClient

            urn = function_urn(settings, runtime)
            request_id = FunctionGraphClient(client).invoke_async(urn, work.handoff)
            result["handoff"] = {"request_id": request_id, "function_urn": urn}
            log.info("work handed to an asynchronous invocation", async_request_id=request_id)
        elif work.image_query is not None:
            from function.cloud.ims import ImsClient

            result["image"] = ImsClient(client).get_image(work.image_query)
    except ExportError as exc:
        log.warning("side request failed", error=exc.as_dict())
        result[key] = {"error": exc.as_dict()} if key == "handoff" else None
        result["error"] = exc.as_dict()
    return result


def function_urn(settings: Settings, runtime: Runtime) -> str:
    """This function's URN, for invoking itself asynchronously."""
    if settings.function_urn:
        return settings.function_urn
    region, project = settings.region, settings.require_project()
    if region is None:
        raise ConfigError(
            "FUNCTION_URN", "set FUNCTION_URN (or REGION) so the function can invoke itself"
        )
    name, version = runtime.function_name, runtime.function_version
    return f"urn:fss:{region}:{project}:function:default:{name}:{version}"


def build_client(settings: Settings, runtime: Runtime, transport: Transport | None) -> CloudClient:
    """The signed client, after checking every setting the calls need (raises ConfigError)."""
    from function.cloud.client import CloudClient
    from function.cloud.transport import default_transport

    if settings.problems:
        raise settings.problems[0]
    settings.require_credentials()
    settings.require_project()
    for service in ("evs", "ims"):
        settings.endpoint(service)
    return CloudClient(settings, runtime, transport or default_transport())


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
