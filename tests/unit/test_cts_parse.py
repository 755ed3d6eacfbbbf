"""function/triggers/cts.py: a stopServer trace to the servers whose disks to export
(vectors: resource_id, batch os-stop.servers[].id as object or JSON string, dedupe)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from function.triggers import cts
from function.work import Rejection
from tests.unit.fakes import START, make_runtime, make_settings

S1 = "b6d1f0c2-3e4a-4f5b-9c8d-1a2b3c4d5e6f"
S2 = "c0ffee00-1111-4222-8333-444455556666"
S3 = "e1d2c3b4-a596-4877-8899-aabbccddeeff"


def trace(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "trace_id": "t-1",
        "trace_name": "stopServer",
        "service_type": "ECS",
        "resource_type": "ecs",
        "time": 1740794400000,
    }
    base.update(fields)
    return {"cts": {k: v for k, v in base.items() if v is not None}}


def batch(*ids: object) -> dict[str, Any]:
    return {"os-stop": {"type": "SOFT", "servers": [{"id": i} for i in ids]}}


def servers(event: dict[str, Any]) -> tuple[str, ...]:
    work = cts.parse(event, make_settings(), make_runtime())
    [plan] = work.plans
    return plan.server_ids


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (trace(resource_id=S1), (S1,)),
        (trace(resource_id=None, request=batch(S1, S2)), (S1, S2)),
        (trace(resource_id=None, request=json.dumps(batch(S1, S2))), (S1, S2)),
        (trace(resource_id=S1, request=batch(S2, S1, S2)), (S1, S2)),
        (trace(resource_id=S1, request=json.dumps(batch(S1))), (S1,)),
        (trace(resource_id="not-a-uuid", request=batch(S2, "x", 7, None)), (S2,)),
        (trace(resource_id=None, request={"server_id": S3}), (S3,)),
        (trace(resource_id=S1, request={"id": S3, "server_id": S1}), (S1, S3)),
        (trace(resource_id=S1, request="{not json"), (S1,)),
        (trace(resource_id=S1, request={"os-stop": {"servers": "all"}}), (S1,)),
        (trace(resource_id=S1, request={"os-stop": [S2]}), (S1,)),
    ],
)
def test_server_ids_vectors(event: dict[str, Any], expected: tuple[str, ...]) -> None:
    """resource_id then the batch's os-stop.servers[].id (object or JSON string) and a single
    server_id/id, each UUID once in first-seen order; anything else is ignored."""
    assert servers(event) == expected


def test_plan_exports_tagged_servers_after_shutoff() -> None:
    """A stopServer trace plans the on-stop policy: force, the server tag, the trace's time,
    and a stop deadline of the configured wait after now."""
    work = cts.parse(trace(resource_id=S1), make_settings(stop_wait_seconds=90), make_runtime())
    [plan] = work.plans
    assert work.correlation_id == "cts:t-1"
    assert plan.policy == "on-stop"
    assert plan.template == cts.TEMPLATE
    assert dict(plan.options) == {"force": True}
    assert plan.server_tag == ("evs-export", "on-stop")
    assert plan.time == datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
    assert plan.stop_deadline == START + timedelta(seconds=90)


def test_cts_record_time_is_used_without_time() -> None:
    """Without time, record_time (CTS's own format) is the plan's time."""
    event = trace(resource_id=S1, time=None, record_time="2016/12/08 11:07:28 GMT+08:00")
    [plan] = cts.parse(event, make_settings(), make_runtime()).plans
    assert plan.time == datetime(2016, 12, 8, 3, 7, 28, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "event",
    [
        trace(trace_name="startServer", resource_id=S1),
        trace(service_type="EVS", resource_type="evs", resource_id=S1),
    ],
)
def test_other_traces_need_nothing(event: dict[str, Any]) -> None:
    """A trace other than an ECS stopServer is acknowledged with a note, no plan, no rejection."""
    work = cts.parse(event, make_settings(), make_runtime())
    assert (work.plans, work.items) == ((), ())
    assert work.note is not None and "needs no export" in work.note


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"cts": "stopServer"}, "cts"),
        (trace(resource_id=None), "cts.resource_id"),
        (trace(resource_id=S1, time="later"), "cts.time"),
    ],
)
def test_unusable_trace_is_one_rejection(event: dict[str, Any], field: str) -> None:
    """A trace that is no object, names no server UUID, or has no readable time is rejected."""
    work = cts.parse(event, make_settings(), make_runtime())
    [item] = work.items
    assert isinstance(item, Rejection)
    assert item.error.field == field
    assert work.plans == ()


def test_correlation_falls_back_to_the_request_id() -> None:
    """Without a trace_id the correlation ID is the invocation's request ID."""
    work = cts.parse(trace(trace_id=None, resource_id=S1), make_settings(), make_runtime())
    assert work.correlation_id == "req-0001"


@pytest.mark.parametrize(
    ("event", "match"), [({"cts": {}}, True), ({"CTS": {}}, False), ([], False), ("cts", False)]
)
def test_matches_only_cts_events(event: object, match: bool) -> None:
    """An event is a CTS trace when it is a mapping holding ``cts``."""
    assert cts.matches(event) is match
