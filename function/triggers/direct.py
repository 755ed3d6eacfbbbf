"""Direct invocation: the seed's request plus the volume, or a batch ``{"exports": [...]}``,
or ``{"action": "reconcile"}`` (report the images that finished since the last check).

A batch is all-or-nothing: if any item is invalid, nothing is sent and every item is reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from function.config import Settings
from function.errors import InvalidInput
from function.model import ACTION_KEY, is_uuid, parse_export
from function.runtime import Runtime
from function.work import ExportOrder, Exports, Rejection, Task

NAME = "direct"
RECONCILE: Task = (
    "reconcile"  # {"action": "reconcile"}: report finished images (function.lifecycle)
)
MAX_BATCH = 1000
_KEYS = ("volume_id", ACTION_KEY, "exports", "action")
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def matches(event: object) -> bool:
    """An export, a batch or an action: any ``action`` (not only a reconcile) is this
    trigger's to reject, as the router has always sent it here."""
    return isinstance(event, Mapping) and any(key in event for key in _KEYS)


def is_request(event: object) -> bool:
    """An export, a batch or a reconcile: what a webhook body may carry (any other action in
    a webhook body is a 400, not a rejected direct event)."""
    return isinstance(event, Mapping) and (
        any(key in event for key in _KEYS if key != "action") or event.get("action") == RECONCILE
    )


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Exports:
    body = dict(event)
    correlation = _correlation(body.pop("correlation_id", None), runtime.request_id)

    def work(*items: ExportOrder | Rejection, tasks: frozenset[Task] = frozenset()) -> Exports:
        return Exports(NAME, correlation, items=items, tasks=tasks)

    if body.get("action") == RECONCILE:
        extra = sorted(set(body) - {"action"})
        if extra:
            error = InvalidInput(extra[0], f"{extra[0]} is not a known field of a reconcile")
            return work(Rejection(None, error))
        return work(tasks=frozenset({RECONCILE}))
    if "exports" in body:
        extra = sorted(set(body) - {"exports"})
        if extra:
            error = InvalidInput(extra[0], f"{extra[0]} is not a known field of a batch")
            return work(Rejection(None, error))
        return work(*_batch(body["exports"]))
    try:
        request, upload = parse_export(body)
    except InvalidInput as exc:
        volume = body.get("volume_id")
        return work(Rejection(volume if is_uuid(volume) else None, exc))
    return work(ExportOrder(request.volume_id, upload))


def _batch(items: object) -> list[ExportOrder | Rejection]:
    if not isinstance(items, list):
        return [
            Rejection(None, InvalidInput("exports", "exports must be a list of export objects"))
        ]
    if not items:
        return [
            Rejection(None, InvalidInput("exports", "exports is empty: name at least one volume"))
        ]
    if len(items) > MAX_BATCH:
        return [
            Rejection(
                None,
                InvalidInput("exports", f"exports holds {len(items)} items; at most {MAX_BATCH}"),
            )
        ]
    parsed: list[ExportOrder | Rejection] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(items):
        where = f"exports[{i}]"
        try:
            request, upload = parse_export(raw, where)
        except InvalidInput as exc:
            volume = raw.get("volume_id") if isinstance(raw, Mapping) else None
            parsed.append(Rejection(volume if is_uuid(volume) else None, exc))
            continue
        key = request.volume_id.lower()
        if key in seen:
            parsed.append(
                Rejection(
                    request.volume_id,
                    InvalidInput(
                        f"{where}.volume_id",
                        f"volume {request.volume_id} is also exports[{seen[key]}]: "
                        "name each volume once",
                    ),
                    request.upload.image_name,
                )
            )
            continue
        seen[key] = i
        parsed.append(ExportOrder(request.volume_id, upload))
    bad = [p for p in parsed if isinstance(p, Rejection)]
    if not bad:
        return parsed
    first = bad[0].error.field or "exports"
    return [
        p
        if isinstance(p, Rejection)
        else Rejection(
            p.volume_id,
            InvalidInput(
                first, f"not sent: the batch has invalid items (first: {first})", "BatchRejected"
            ),
            p.image_name,
        )
        for p in parsed
    ]


def _correlation(value: object, default: str) -> str:
    if isinstance(value, str) and _CORRELATION_RE.fullmatch(value):
        return value
    return default
