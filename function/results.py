"""Outcomes to CloudEvents 1.0 (JSON, structured mode), and the invocation's summary.
Pure: time and IDs are passed in."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from function.times import iso_z
from function.work import Outcome

TYPE_PREFIX = "evs.export."
SUMMARY_KINDS = ("accepted", "rejected", "failed", "skipped")


@dataclass(frozen=True)
class EventContext:
    """What every event of one invocation shares."""

    source: str
    trigger: str
    correlation_id: str
    now: Callable[[], datetime]
    new_id: Callable[[], str]


def event_type(kind: str) -> str:
    return TYPE_PREFIX + kind


def cloud_event(
    ctx: EventContext, type_: str, subject: str | None, data: dict[str, Any]
) -> dict[str, Any]:
    """A CloudEvents 1.0 envelope; ``data`` always carries trigger and correlation_id."""
    data = {**data, "trigger": ctx.trigger, "correlation_id": ctx.correlation_id}
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": ctx.new_id(),
        "source": ctx.source,
        "type": type_,
        "time": iso_z(ctx.now()),
        "datacontenttype": "application/json",
        "data": data,
    }
    if subject:
        event["subject"] = subject
    return event


def outcome_event(ctx: EventContext, outcome: Outcome) -> dict[str, Any]:
    """The result event of one volume's outcome."""
    data: dict[str, Any] = {"volume_id": outcome.volume_id}
    upload = outcome.order.upload if outcome.order is not None else None
    if outcome.image_name is not None:
        data["image_name"] = outcome.image_name
    if outcome.order is not None and outcome.order.policy:
        data["policy"] = outcome.order.policy
    if outcome.accepted is not None:
        acc = outcome.accepted
        data.update(
            image_id=acc.image_id,
            image_name=acc.image_name,
            status=acc.status,
            disk_format=acc.disk_format or (upload.disk_format if upload else None),
            container_format=acc.container_format or (upload.container_format if upload else None),
            size_gb=acc.size_gb,
            request_id=acc.request_id,
        )
        if acc.recovered:
            data["recovered"] = True
    if outcome.error is not None:
        data["error"] = outcome.error.as_dict()
        if outcome.error.request_id:
            data["request_id"] = outcome.error.request_id
    if outcome.reason is not None:
        data["reason"] = outcome.reason
    data.update(outcome.extra)
    return cloud_event(ctx, event_type(outcome.kind), outcome.volume_id, data)


POLICY_COMPLETED = "evs.policy.completed"
OUTCOME_KINDS = (*SUMMARY_KINDS, "deferred")


def policy_completed_event(
    ctx: EventContext,
    *,
    policy: str,
    hop: int,
    selected: int,
    excluded: int,
    outcomes: Sequence[str],
    lifecycle: Mapping[str, int],
    duration_s: float,
    copies: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``evs.policy.completed``: one per invocation that works on a timer policy, so that
    monitoring can alert on its absence. ``outcomes`` are the kinds of its volumes' outcomes;
    deferred ones were handed on to the next invocation of the chain."""
    counts = {kind: sum(1 for k in outcomes if k == kind) for kind in OUTCOME_KINDS}
    data: dict[str, Any] = {
        "policy": policy,
        "hop": hop,
        "selected": selected,
        "excluded": excluded,
        **counts,
        "deleted": lifecycle.get("deleted", 0),
        "orphaned": lifecycle.get("orphaned", 0),
        "stale": lifecycle.get("stale", 0),
        "duration_s": round(duration_s, 3),
        "handed_on": counts["deferred"],
    }
    if copies is not None:  # counts, and per region and volume the newest active copy
        data["copies"] = dict(copies)
    return cloud_event(ctx, POLICY_COMPLETED, policy, data)


def summarize(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Counts per final kind (and deferred, when there is any)."""
    counts = dict.fromkeys(SUMMARY_KINDS, 0)
    for event in events:
        kind = str(event.get("type", "")).removeprefix(TYPE_PREFIX)
        if kind in counts or kind == "deferred":
            counts[kind] = counts.get(kind, 0) + 1
    return counts
