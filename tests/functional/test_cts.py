"""CTS stopServer against servers that stop later, or never (PLATFORM.md 10.4): disks are
exported only once ECS reports the server SHUTOFF, the wait is handed on when the budget is
short and bounded by its deadline, and a batch stop exports every server it names."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from fakecloud import FakeCloud, ManualClock, mock_cloud
from function import app
from function.config import Settings
from function.stopwait import NOT_STOPPED
from function.triggers.continuation import KEY
from tests.functional.conftest import budget_runtime
from tests.functional.test_triggers import (
    AK,
    DATA_DISK,
    NOW,
    PROJECT,
    REGION,
    SERVER,
    SK,
    SYSTEM_DISK,
    ZERO,
    add_web01,
    cts_event,
    export_posts,
    make_env,
)

OTHER_SERVER = "e1d2c3b4-a596-4877-8899-aabbccddeeff"
OTHER_DISK = "f0e1d2c3-b4a5-4687-9889-aabbccddeeff"


def run(
    cloud: FakeCloud, clock: ManualClock, event: object, budget_s: float = 900, **env: str
) -> dict[str, Any]:
    with mock_cloud(cloud):
        return app.handle(
            event, Settings.from_env(make_env(**env)), budget_runtime(clock, budget_s)
        )


def new_cloud(clock: ManualClock, *, stops_after: float | None) -> FakeCloud:
    """web-01 (tagged evs-export=on-stop, two in-use disks), running and stopping
    ``stops_after`` seconds from now (None: the stop fails, it keeps running)."""
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION, clock=clock)
    add_web01(cloud, tags=["evs-export=on-stop"], status="ACTIVE")
    cloud.ecs.stop_server(SERVER, stops_after)
    return cloud


def export_times(cloud: FakeCloud) -> list[datetime]:
    return [r.time for r in export_posts(cloud) if r.time is not None]


def disk_results(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["subject"]: e for e in result["results"]}


def test_server_stopping_after_seconds_is_exported_only_once_shutoff() -> None:
    """A trace for a server that is SHUTOFF 7 s later exports both disks, and every export
    request is sent after the server stopped."""
    clock = ManualClock(NOW)
    cloud = new_cloud(clock, stops_after=7)
    result = run(cloud, clock, cts_event())
    assert result["summary"] == {**ZERO, "accepted": 2}
    times = export_times(cloud)
    assert len(times) == 2
    assert min(times) >= NOW + timedelta(seconds=7)
    polls = [r for r in cloud.requests if r.method == "GET" and r.path.endswith(SERVER)]
    assert len(polls) >= 3  # running, running, ..., SHUTOFF
    # Polling reads the server's details only; its disks are read once, by the planner.
    attachments = [r for r in cloud.requests if r.path.endswith("/os-volume_attachments")]
    assert len(attachments) == 1


def test_server_that_never_stops_ends_skipped_per_disk_without_an_export() -> None:
    """A server still ACTIVE when the wait's deadline passes gives one skipped event per
    disk, reason server_not_stopped, and no export request."""
    clock = ManualClock(NOW)
    cloud = new_cloud(clock, stops_after=None)
    result = run(cloud, clock, cts_event(), CTS_STOP_WAIT_SECONDS="120")
    assert result["summary"] == {**ZERO, "skipped": 2}
    by_disk = disk_results(result)
    assert set(by_disk) == {SYSTEM_DISK, DATA_DISK}
    for event in by_disk.values():
        assert event["type"] == "evs.export.skipped"
        assert event["data"]["reason"] == NOT_STOPPED
        assert event["data"]["server_id"] == SERVER
        assert event["data"]["server_status"] == "ACTIVE"
    assert export_posts(cloud) == []
    assert clock() >= NOW + timedelta(seconds=120)


def test_short_budget_hands_the_wait_on_and_the_continuation_exports_after_shutoff() -> None:
    """With 20 s of budget and a server stopping after 40 s, the first invocation defers the
    disks and hands the wait on; the chain exports both disks once, after SHUTOFF."""
    clock = ManualClock(NOW)
    cloud = new_cloud(clock, stops_after=40)
    first = run(cloud, clock, cts_event(), budget_s=20)
    assert first["summary"] == {**ZERO, "deferred": 2}
    assert {e["data"]["server_id"] for e in first["results"]} == {SERVER}
    assert "waiting handed to asynchronous invocation" in first["message"]
    assert cloud.functiongraph.invocations[0]["body"][KEY]["waits"][0]["server_ids"] == [SERVER]
    assert export_posts(cloud) == []

    outcomes: list[str] = []
    result = first
    hops = 0
    while result["summary"].get("deferred"):
        hops += 1
        assert hops < 10, "the wait never ended"
        result = run(cloud, clock, cloud.functiongraph.invocations[-1]["body"], budget_s=20)
        outcomes += [e["type"] for e in result["results"] if not e["type"].endswith("deferred")]
    assert outcomes == ["evs.export.accepted"] * 2
    assert {e["data"]["trigger"] for e in result["results"]} == {"cts"}
    assert min(export_times(cloud)) >= NOW + timedelta(seconds=40)
    assert len(export_posts(cloud)) == 2


def test_wait_deadline_holds_across_hand_offs() -> None:
    """A server that never stops, waited for by invocations of 12 s, ends skipped once the
    deadline set by the first invocation has passed, not later."""
    clock = ManualClock(NOW)
    cloud = new_cloud(clock, stops_after=None)
    result = run(cloud, clock, cts_event(), budget_s=12, CTS_STOP_WAIT_SECONDS="60")
    hops = 0
    while result["summary"].get("deferred"):
        hops += 1
        assert hops < 20
        result = run(cloud, clock, cloud.functiongraph.invocations[-1]["body"], budget_s=12)
    assert result["summary"] == {**ZERO, "skipped": 2}
    assert {e["data"]["reason"] for e in result["results"]} == {NOT_STOPPED}
    assert NOW + timedelta(seconds=60) <= clock() <= NOW + timedelta(seconds=75)
    assert export_posts(cloud) == []


def batch_cloud(clock: ManualClock) -> FakeCloud:
    """web-01 and a second tagged server with one disk, both already stopped."""
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION, clock=clock)
    add_web01(cloud, tags=["evs-export=on-stop"])
    cloud.ecs.add_server(OTHER_SERVER, "web-02", tags=["evs-export=on-stop"], status="SHUTOFF")
    cloud.evs.add_volume(
        OTHER_DISK,
        "web-02-data",
        "in-use",
        10,
        attachments=[{"server_id": OTHER_SERVER, "device": "/dev/vdb"}],
    )
    return cloud


@pytest.mark.parametrize("as_string", [False, True], ids=["request-object", "request-string"])
@pytest.mark.parametrize("resource_id", [None, "", "batch"], ids=["absent", "empty", "not-a-uuid"])
def test_batch_stop_exports_every_server_named_in_the_request(
    as_string: bool, resource_id: str | None
) -> None:
    """A batch stop names its servers in request os-stop.servers[].id (an object or a JSON
    string), with no usable resource_id: every disk of both servers is exported once."""
    clock = ManualClock(NOW)
    cloud = batch_cloud(clock)
    request: object = {
        "os-stop": {"type": "SOFT", "servers": [{"id": SERVER}, {"id": OTHER_SERVER}]}
    }
    if as_string:
        request = json.dumps(request)
    result = run(cloud, clock, cts_event(resource_id=resource_id, request=request))
    assert result["summary"] == {**ZERO, "accepted": 3}
    assert set(disk_results(result)) == {SYSTEM_DISK, DATA_DISK, OTHER_DISK}
    assert len(export_posts(cloud)) == 3


def test_server_named_twice_and_redelivered_trace_export_each_disk_once() -> None:
    """A server named both as resource_id and in the batch, and the same trace delivered
    again, still give one image per disk."""
    clock = ManualClock(NOW)
    cloud = batch_cloud(clock)
    request = {"os-stop": {"servers": [{"id": SERVER}, {"id": SERVER}, {"id": OTHER_SERVER}]}}
    event = cts_event(resource_id=SERVER, request=request)
    first = run(cloud, clock, event)
    assert first["summary"] == {**ZERO, "accepted": 3}
    clock.advance(30)
    again = run(cloud, clock, event)
    assert again["summary"] == {**ZERO, "skipped": 3}
    assert {e["data"]["reason"] for e in again["results"]} == {"duplicate"}
    assert len(export_posts(cloud)) == 3


def test_failed_hand_off_of_a_wait_ends_the_disks_failed_naming_the_cause() -> None:
    """When the wait cannot be handed on (no FUNCTION_URN nor REGION-derived URN that the
    platform accepts), the waiting disks end failed with ContinuationFailed, never dropped."""
    clock = ManualClock(NOW)
    cloud = new_cloud(clock, stops_after=None)
    wrong = f"urn:fss:{REGION}:{PROJECT}:function:default:missing-function"
    result = run(cloud, clock, cts_event(), budget_s=12, FUNCTION_URN=wrong + ":x:y")
    assert result["summary"] == {**ZERO, "failed": 2}
    codes = {e["data"]["error"]["code"] for e in result["results"]}
    assert codes == {"ContinuationFailed"}
