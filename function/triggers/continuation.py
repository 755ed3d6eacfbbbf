"""The follow-up of an invocation whose time ran out: this function invoked itself
asynchronously with the volumes it had not started (``evs.export.deferred``), with the same
options. Each order is validated again; the chain stops at ``MAX_HOPS``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from function.config import Settings
from function.errors import InvalidInput
from function.model import is_uuid, parse_export
from function.runtime import Runtime
from function.tagbudget import COPY_ROOM, MAX_KEY_CHARS, copyable
from function.times import parse_iso
from function.triggers import CONTINUATION_KEY
from function.triggers.chat_job import slack_url
from function.work import ExportOrder, Rejection, Work

NAME = "continuation"
KEY = CONTINUATION_KEY
MAX_HOPS = 8
TRIGGERS = ("direct", "timer", "webhook", "chat", "cts")


def matches(event: object) -> bool:
    return isinstance(event, Mapping) and KEY in event


def build(work: Work, orders: Sequence[ExportOrder]) -> dict[str, Any]:
    """The event that carries ``orders`` to the next invocation of the chain."""
    return {
        KEY: {
            "hop": work.hop + 1,
            "trigger": work.trigger,
            "correlation_id": work.correlation_id,
            "response_url": work.response_url,
            "orders": [
                {
                    "volume_id": o.volume_id,
                    "body": o.body,
                    "policy": o.policy,
                    "server_id": o.server_id,
                    "dry_run": o.dry_run,
                    "keep": o.keep,
                    **_policy_fields(o),
                }
                for o in orders
            ],
        }
    }


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Work:
    job = event.get(KEY)
    job = job if isinstance(job, Mapping) else {}
    trigger = job.get("trigger") if job.get("trigger") in TRIGGERS else "direct"
    correlation = job.get("correlation_id")
    work = Work(
        str(trigger),
        correlation[:128] if isinstance(correlation, str) and correlation else runtime.request_id,
    )
    hop = job.get("hop")
    work.hop = hop if isinstance(hop, int) and not isinstance(hop, bool) and hop > 0 else 1
    work.response_url = slack_url(job.get("response_url"))
    orders = job.get("orders")
    if not isinstance(orders, list) or not orders:
        work.items.append(
            Rejection(None, InvalidInput(f"{KEY}.orders", "orders must be a non-empty list"))
        )
        return work
    for i, raw in enumerate(orders):
        where = f"{KEY}.orders[{i}]"
        if not isinstance(raw, Mapping):
            work.items.append(Rejection(None, InvalidInput(where, f"{where} must be an object")))
            continue
        body = raw.get("body")
        try:
            request, wire = parse_export(
                {"volume_id": raw.get("volume_id"), **(body if isinstance(body, Mapping) else {})},
                where,
            )
        except InvalidInput as exc:
            volume = raw.get("volume_id")
            work.items.append(Rejection(volume if is_uuid(volume) else None, exc))
            continue
        keep = raw.get("keep")
        run_time, image_tags, dropped = _read_policy_fields(raw)
        work.items.append(
            ExportOrder(
                volume_id=request.volume_id,
                body=wire,
                policy=_opt_str(raw.get("policy")),
                server_id=_opt_str(raw.get("server_id")),
                dry_run=raw.get("dry_run") is True,
                keep=keep
                if isinstance(keep, int) and not isinstance(keep, bool) and keep > 0
                else None,
                run_time=run_time,
                image_tags=image_tags,
                tags_dropped=dropped,
            )
        )
    return work


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
