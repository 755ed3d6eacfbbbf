"""The export pipeline of one invocation: the signed client it shares, plans resolved to
orders, the duplicate and dry-run checks, the exports, the hand-off of what the budget did
not cover, and the per-policy run summaries. The app calls ``run_work``; the pipeline never
knows which trigger it serves."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from function.config import Settings
from function.errors import ExportError
from function.handoff import hand_on
from function.results import EventContext, policy_completed_event
from function.runtime import Runtime
from function.work import ExportOrder, Exports, Outcome, PlanRequest, Rejection, Selection

if TYPE_CHECKING:  # the cloud stack loads when an export needs it, not on import
    from function.cloud.client import CloudClient
    from function.cloud.transport import Transport
    from function.exporter import Reserve
    from function.plan import Planner

log = structlog.get_logger("evs_export")


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


@dataclass(frozen=True)
class Ran:
    """What the pipeline came to: the outcomes in order, notes, and per policy what its
    selection matched (``Selection``, for the life cycle and the policy summaries)."""

    outcomes: list[Outcome]
    notes: list[str] = field(default_factory=list)
    selections: Mapping[str, Selection] = field(default_factory=dict)


def run_work(work: Exports, settings: Settings, runtime: Runtime, connect: Connection) -> Ran:
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
        return Ran([_settled(i) for i in items])
    try:
        client = connect()
    except ExportError as exc:
        log.error("configuration error", error=exc.as_dict())
        items += [Rejection(None, exc) for _ in work.plans]
        return Ran([_settled(i, exc) for i in items])
    planner = Planner(EvsClient(client), EcsClient(client), ImsClient(client))
    waits, waiting = _resolve(work.plans, planner, runtime, items)
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
    outcomes = [settled.get(id(i)) or _settled(i) for i in items]
    return Ran(outcomes, planner.notes, planner.selections)


def _resolve(
    plans: Sequence[PlanRequest],
    planner: Planner,
    runtime: Runtime,
    items: list[ExportOrder | Rejection | Outcome],
) -> tuple[list[PlanRequest], list[Outcome]]:
    """Resolve each plan into ``items`` (orders and early outcomes). A plan that waits for
    stopping servers (CTS) resolves only the servers now ``SHUTOFF``; returned: the waits to
    hand on, and the deferred outcomes of their disks."""
    waits: list[PlanRequest] = []
    waiting: list[Outcome] = []
    for plan in plans:
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
    return waits, waiting


def delivery_reserve(
    settings: Settings, work: Exports, client: CloudClient, events: int
) -> Reserve:
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


def timer_policies(work: Exports) -> list[str]:
    """The timer policies this invocation works on: the timer's own, or, in a continuation
    of a timer run, those its orders carry."""
    if work.trigger != "timer":
        return []
    names = [p.policy for p in work.plans if p.policy]
    if work.hop > 0:
        names += [i.policy for i in work.items if isinstance(i, ExportOrder) and i.policy]
    return list(dict.fromkeys(names))


def policy_summaries(
    work: Exports,
    outcomes: list[Outcome],
    per_policy: Mapping[str, Mapping[str, int]],
    ctx: EventContext,
    began: datetime,
    copies: Mapping[str, Mapping[str, Any]] | None = None,
    selections: Mapping[str, Selection] | None = None,
) -> list[dict[str, Any]]:
    """One ``evs.policy.completed`` per timer policy this invocation worked on (with its
    disaster-recovery ``copies`` when it has any)."""
    events: list[dict[str, Any]] = []
    for name in timer_policies(work):
        mine = [o for o in outcomes if o.order is None or o.order.policy in (None, name)]
        selection = (selections or {}).get(name)
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
