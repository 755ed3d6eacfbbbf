"""CTS trigger (``{"cts": {...}}``): ``stopServer`` of a server tagged ``evs-export=on-stop``
exports its disks. Other traces, and untagged servers, are acknowledged and left alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from function.config import Settings
from function.errors import InvalidInput
from function.model import is_uuid
from function.runtime import Runtime
from function.times import parse_time
from function.work import PlanRequest, Rejection, Work

NAME = "cts"
TRACES = ("stopServer",)
SERVER_TAG = ("evs-export", "on-stop")
TEMPLATE = "{server_name}-{volume_name}-stop-{time:%Y%m%d-%H%M%S}"


def matches(event: object) -> bool:
    return isinstance(event, Mapping) and "cts" in event


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Work:
    cts = event.get("cts")
    trace_id = cts.get("trace_id") if isinstance(cts, Mapping) else None
    correlation = (
        f"cts:{trace_id}" if isinstance(trace_id, str) and trace_id else runtime.request_id
    )
    work = Work(NAME, correlation[:128])
    if not isinstance(cts, Mapping):
        work.items.append(
            Rejection(None, InvalidInput("cts", "cts must be a JSON object (a trace)"))
        )
        return work
    trace = cts.get("trace_name")
    service = str(cts.get("service_type", "")).upper()
    resource = str(cts.get("resource_type", "")).lower()
    if trace not in TRACES or (service != "ECS" and resource != "ecs"):
        work.note = f"trace {str(trace)[:64]!r} of {service or 'unknown service'} needs no export"
        return work
    server_id = _server_id(cts)
    if server_id is None:
        work.items.append(
            Rejection(
                None, InvalidInput("cts.resource_id", "the stopServer trace names no server UUID")
            )
        )
        return work
    try:
        when = parse_time(cts.get("time"), "cts.time") or parse_time(
            cts.get("record_time"), "cts.record_time"
        )
    except InvalidInput as exc:
        work.items.append(Rejection(None, exc))
        return work
    work.plans.append(
        PlanRequest(
            policy="on-stop",
            template=TEMPLATE,
            time=when or runtime.clock(),
            options={"force": True},
            server_ids=(server_id,),
            server_tag=SERVER_TAG,
        )
    )
    return work


def _server_id(cts: Mapping[str, Any]) -> str | None:
    """The stopped server: ``resource_id``, else the request body's server reference."""
    candidate = cts.get("resource_id")
    if is_uuid(candidate):
        return str(candidate)
    request = _json_field(cts.get("request"))
    for key in ("server_id", "id"):
        value = request.get(key)
        if is_uuid(value):
            return str(value)
    return None


def _json_field(value: object) -> Mapping[str, Any]:
    """``request``/``response`` arrive as objects or as JSON strings."""
    if isinstance(value, str) and len(value) <= 65536:
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}
