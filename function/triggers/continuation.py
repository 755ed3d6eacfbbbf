"""The follow-up of an invocation whose time ran out: this function invoked itself
asynchronously with the volumes it had not finished (``evs.export.deferred``), with the same
options, and with the servers it is still waiting for to stop (``waits``: CTS plans with
their deadline; ``function.stopwait``). Each order and wait is validated again; the chain
stops at ``MAX_HOPS`` (``MAX_WAIT_HOPS`` while it waits for servers, which its deadline
bounds too).

An order may also carry ``attempts`` (export attempts already spent on it, counted against
``max_attempts`` across the chain) and ``ambiguous: true`` (an earlier attempt may have made
its image: look for it by name before sending). Both are optional: events without them, as
earlier versions wrote, mean a fresh order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from function.config import Settings
from function.errors import InvalidInput
from function.model import ACTION_KEY, is_uuid, parse_export
from function.runtime import Runtime
from function.tagbudget import COPY_ROOM, MAX_KEY_CHARS, copyable
from function.times import parse_iso, parse_time
from function.triggers import CONTINUATION_KEY
from function.triggers.chat_job import slack_url
from function.work import ExportOrder, Exports, PlanRequest, Rejection, correlation_id

NAME = "continuation"
KEY = CONTINUATION_KEY
MAX_HOPS = 8
MAX_WAIT_HOPS = 64
MAX_TEMPLATE = 512
PROBE_VOLUME = "00000000-0000-4000-8000-000000000000"  # validates a wait's options only
TRIGGERS = ("direct", "timer", "webhook", "chat", "cts")


def matches(event: object) -> bool:
    return isinstance(event, Mapping) and KEY in event


def build(
    work: Exports, orders: Sequence[ExportOrder], waits: Sequence[PlanRequest] = ()
) -> dict[str, Any]:
    """The event that carries ``orders`` (and ``waits``) to the next invocation."""
    job: dict[str, Any] = {
        "hop": work.hop + 1,
        "trigger": work.trigger,
        "correlation_id": work.correlation_id,
        "response_url": work.response_url,
        "orders": [_order(o) for o in orders],
    }
    if waits:
        job["waits"] = [_wait_out(p) for p in waits]
    return {KEY: job}


def _wait_out(plan: PlanRequest) -> dict[str, Any]:
    assert plan.stop_deadline is not None
    return {
        "policy": plan.policy,
        "template": plan.template,
        "time": _iso(plan.time),
        "options": dict(plan.options),
        "server_ids": list(plan.server_ids),
        "server_tag": list(plan.server_tag) if plan.server_tag else None,
        "stop_deadline": _iso(plan.stop_deadline),
    }


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _order(order: ExportOrder) -> dict[str, Any]:
    """One order of the event. ``attempts`` and ``ambiguous`` are written only when set, so
    a fresh order has the shape earlier versions wrote, and an order without them (from an
    earlier version) reads as fresh."""
    from function.cloud.evs import upload_body

    out: dict[str, Any] = {
        "volume_id": order.volume_id,
        "body": upload_body(order.upload),
        "policy": order.policy,
        "server_id": order.server_id,
        "dry_run": order.dry_run,
        "keep": order.keep,
        **_policy_fields(order),
    }
    if order.attempts:
        out["attempts"] = order.attempts
    if order.ambiguous:
        out["ambiguous"] = True
    return out


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Exports:
    job = event.get(KEY)
    job = job if isinstance(job, Mapping) else {}
    trigger = job.get("trigger") if job.get("trigger") in TRIGGERS else "direct"
    hop = job.get("hop")

    def work(items: list[ExportOrder | Rejection], plans: list[PlanRequest]) -> Exports:
        return Exports(
            str(trigger),
            correlation_id(job.get("correlation_id"), lambda: runtime.request_id),
            items=tuple(items),
            plans=tuple(plans),
            response_url=slack_url(job.get("response_url")),
            hop=hop if isinstance(hop, int) and not isinstance(hop, bool) and hop > 0 else 1,
        )

    items: list[ExportOrder | Rejection] = []
    plans: list[PlanRequest] = []
    orders = job.get("orders")
    waits = job.get("waits")
    if isinstance(waits, list) and waits:
        for i, raw_wait in enumerate(waits):
            try:
                plans.append(_wait_in(raw_wait, f"{KEY}.waits[{i}]"))
            except InvalidInput as exc:
                items.append(Rejection(None, exc))
        if orders == []:
            return work(items, plans)
    if not isinstance(orders, list) or not orders:
        items.append(
            Rejection(None, InvalidInput(f"{KEY}.orders", "orders must be a non-empty list"))
        )
        return work(items, plans)
    for i, raw in enumerate(orders):
        items.append(_order_in(raw, f"{KEY}.orders[{i}]"))
    return work(items, plans)


def _order_in(raw: object, where: str) -> ExportOrder | Rejection:
    """One order as ``_order`` wrote it, or its rejection."""
    if not isinstance(raw, Mapping):
        return Rejection(None, InvalidInput(where, f"{where} must be an object"))
    body = raw.get("body")
    try:
        request, upload = parse_export(
            {"volume_id": raw.get("volume_id"), **(body if isinstance(body, Mapping) else {})},
            where,
        )
    except InvalidInput as exc:
        volume = raw.get("volume_id")
        return Rejection(volume if is_uuid(volume) else None, exc)
    keep = raw.get("keep")
    attempts = raw.get("attempts")
    run_time, image_tags, dropped = _read_policy_fields(raw)
    return ExportOrder(
        volume_id=request.volume_id,
        upload=upload,
        policy=_opt_str(raw.get("policy")),
        server_id=_opt_str(raw.get("server_id")),
        dry_run=raw.get("dry_run") is True,
        keep=keep if isinstance(keep, int) and not isinstance(keep, bool) and keep > 0 else None,
        attempts=attempts
        if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0
        else 0,
        ambiguous=raw.get("ambiguous") is True,
        run_time=run_time,
        image_tags=image_tags,
        tags_dropped=dropped,
    )


def _policy_fields(order: ExportOrder) -> dict[str, Any]:
    """What a policy order adds (absent for others, so older events read alike): the run's
    trigger time (recorded on the image) and the volume tags to copy onto it."""
    fields: dict[str, Any] = {}
    if order.run_time is not None:
        fields["run_time"] = order.run_time.isoformat()
    if order.image_tags:
        fields["image_tags"] = dict(order.image_tags)
    if order.tags_dropped:
        fields["tags_dropped"] = list(order.tags_dropped)
    return fields


def _read_policy_fields(
    raw: Mapping[str, Any],
) -> tuple[datetime | None, dict[str, str], tuple[str, ...]]:
    """``_policy_fields`` read back; what is malformed is left out (never fatal: the
    export itself is what the order is for), and copied tags must still be copyable."""
    when = raw.get("run_time")
    run_time = parse_iso(when) if isinstance(when, str) and len(when) <= 64 else None
    tags = raw.get("image_tags")
    image_tags = {
        k: v
        for k, v in (tags.items() if isinstance(tags, Mapping) else ())
        if isinstance(k, str) and isinstance(v, str) and copyable(k, v)
    }
    if len(image_tags) > COPY_ROOM:
        image_tags = {}
    dropped = raw.get("tags_dropped")
    names = tuple(
        d[: MAX_KEY_CHARS * 2]
        for d in (dropped if isinstance(dropped, list) else [])
        if isinstance(d, str)
    )[:10]
    return run_time, image_tags, names


def _opt_str(value: object) -> str | None:
    return value[:128] if isinstance(value, str) and value else None


def _wait_in(raw: object, where: str) -> PlanRequest:
    """A wait for stopping servers, as ``_wait_out`` wrote it; InvalidInput naming the field."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(where, f"{where} must be an object")
    servers = raw.get("server_ids")
    if not isinstance(servers, list) or not servers or not all(is_uuid(v) for v in servers):
        raise InvalidInput(f"{where}.server_ids", "server_ids must be a list of server UUIDs")
    template = raw.get("template")
    if not isinstance(template, str) or not template or len(template) > MAX_TEMPLATE:
        raise InvalidInput(f"{where}.template", "template must be a non-empty string")
    options = raw.get("options")
    if not isinstance(options, Mapping):
        raise InvalidInput(f"{where}.options", "options must be an object")
    probe = {ACTION_KEY: {"image_name": "probe", **options}}
    parse_export({"volume_id": PROBE_VOLUME, **probe}, f"{where}.options")
    tag = raw.get("server_tag")
    if tag is not None and not (
        isinstance(tag, list) and len(tag) == 2 and all(isinstance(t, str) for t in tag)
    ):
        raise InvalidInput(f"{where}.server_tag", "server_tag must be [key, value] or null")
    when = parse_time(raw.get("time"), f"{where}.time")
    deadline = parse_time(raw.get("stop_deadline"), f"{where}.stop_deadline")
    if when is None or deadline is None:
        raise InvalidInput(f"{where}.stop_deadline", "time and stop_deadline are required")
    return PlanRequest(
        policy=_opt_str(raw.get("policy")),
        template=template,
        time=when,
        options=dict(options),
        server_ids=tuple(str(v) for v in servers),
        server_tag=(tag[0], tag[1]) if tag is not None else None,
        stop_deadline=deadline,
    )
