"""CTS trigger (``{"cts": {...}}``): ``stopServer`` of a server tagged ``evs-export=on-stop``
exports its disks once the server is ``SHUTOFF`` (``function.stopwait``). Other traces, and
untagged servers, are acknowledged and left alone.

The stopped servers are the trace's ``resource_id`` and, for a batch stop
(``POST /v1/{project_id}/cloudservers/action``), the request's ``os-stop.servers[].id``; the
request arrives as an object or as a JSON string (PLATFORM.md 10.4). Each server is handled
once, however often the trace names it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from function.config import Settings
from function.errors import InvalidInput
from function.model import is_uuid
from function.runtime import Runtime
from function.times import parse_time
from function.work import Exports, PlanRequest, Rejection, correlation_id

NAME = "cts"
TRACES = ("stopServer",)
SERVER_TAG = ("evs-export", "on-stop")
TEMPLATE = "{server_name}-{volume_name}-stop-{time:%Y%m%d-%H%M%S}"


def matches(event: object) -> bool:
    return isinstance(event, Mapping) and "cts" in event


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Exports:
    cts = event.get("cts")
    trace_id = cts.get("trace_id") if isinstance(cts, Mapping) else None
    correlation = correlation_id(
        f"cts:{trace_id}" if isinstance(trace_id, str) and trace_id else None, runtime.request_id
    )

    def rejected(error: InvalidInput) -> Exports:
        return Exports(NAME, correlation, items=(Rejection(None, error),))

    if not isinstance(cts, Mapping):
        return rejected(InvalidInput("cts", "cts must be a JSON object (a trace)"))
    trace = cts.get("trace_name")
    service = str(cts.get("service_type", "")).upper()
    resource = str(cts.get("resource_type", "")).lower()
    if trace not in TRACES or (service != "ECS" and resource != "ecs"):
        note = f"trace {str(trace)[:64]!r} of {service or 'unknown service'} needs no export"
        return Exports(NAME, correlation, note=note)
    server_ids = _server_ids(cts)
    if not server_ids:
        return rejected(
            InvalidInput(
                "cts.resource_id",
                "the stopServer trace names no server UUID (in resource_id, nor in "
                "request os-stop.servers[].id)",
            )
        )
    try:
        when = parse_time(cts.get("time"), "cts.time") or parse_time(
            cts.get("record_time"), "cts.record_time"
        )
    except InvalidInput as exc:
        return rejected(exc)
    plan = PlanRequest(
        policy="on-stop",
        template=TEMPLATE,
        time=when or runtime.clock(),
        options={"force": True},
        server_ids=server_ids,
        server_tag=SERVER_TAG,
        stop_deadline=runtime.clock() + timedelta(seconds=settings.stop_wait_seconds),
    )
    return Exports(NAME, correlation, plans=(plan,))


def _server_ids(cts: Mapping[str, Any]) -> tuple[str, ...]:
    """The stopped servers, each once: ``resource_id``, then the request's references
    (a batch ``os-stop.servers[].id``, or a single ``server_id``/``id``)."""
    found: list[str] = []
    candidate = cts.get("resource_id")
    if is_uuid(candidate):
        found.append(str(candidate))
    request = _json_field(cts.get("request"))
    stop = request.get("os-stop")
    servers = stop.get("servers") if isinstance(stop, Mapping) else None
    for row in servers if isinstance(servers, list) else []:
        value = row.get("id") if isinstance(row, Mapping) else None
        if is_uuid(value):
            found.append(str(value))
    for key in ("server_id", "id"):
        value = request.get(key)
        if is_uuid(value):
            found.append(str(value))
    return tuple(dict.fromkeys(found))


def _json_field(value: object) -> Mapping[str, Any]:
    """``request``/``response`` arrive as objects or as JSON strings."""
    if isinstance(value, str) and len(value) <= 65536:
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}
