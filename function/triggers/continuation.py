"""The follow-up of an invocation whose time ran out: this function invoked itself
asynchronously with the volumes it had not finished (``evs.export.deferred``), with the same
options. Each order is validated again; the chain stops at ``MAX_HOPS``.

An order may also carry ``attempts`` (export attempts already spent on it, counted against
``max_attempts`` across the chain) and ``ambiguous: true`` (an earlier attempt may have made
its image: look for it by name before sending). Both are optional: events without them, as
earlier versions wrote, mean a fresh order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from function.config import Settings
from function.errors import InvalidInput
from function.model import is_uuid, parse_export
from function.runtime import Runtime
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
            "orders": [_order(o) for o in orders],
        }
    }


def _order(order: ExportOrder) -> dict[str, Any]:
    """One order of the event. ``attempts`` and ``ambiguous`` are written only when set, so
    a fresh order has the shape earlier versions wrote, and an order without them (from an
    earlier version) reads as fresh."""
    out: dict[str, Any] = {
        "volume_id": order.volume_id,
        "body": order.body,
        "policy": order.policy,
        "server_id": order.server_id,
        "dry_run": order.dry_run,
        "keep": order.keep,
    }
    if order.attempts:
        out["attempts"] = order.attempts
    if order.ambiguous:
        out["ambiguous"] = True
    return out


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
        attempts = raw.get("attempts")
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
                attempts=attempts
                if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0
                else 0,
                ambiguous=raw.get("ambiguous") is True,
            )
        )
    return work


def _opt_str(value: object) -> str | None:
    return value[:128] if isinstance(value, str) and value else None
