"""The fake's shape: backends keyed by service, region and project; the control routes table;
the explicit transitions of asynchronous work (fakecloud.progress)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from fakecloud import FakeCloud, ManualClock, serve
from fakecloud.backends import GLOBAL
from fakecloud.control import ROUTES as CONTROL_ROUTES
from fakecloud.ims.models import ImsBackend
from fakecloud.progress import FINISH, RUN, Schedule
from fakecloud.services import REGISTRY
from tests.contract.conftest import AK, PROJECT, REGION, SK, START

TARGET, TARGET_PROJECT = "cn-east-3", "fedcba9876543210fedcba9876543210"


def test_home_region_has_one_backend_per_service() -> None:
    """Every service has a backend under (service, home region, home project)."""
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION)
    for name in REGISTRY:
        assert (name, REGION, PROJECT) in cloud.backends
    assert cloud.ims is cloud.backends.get("ims", REGION, PROJECT, ImsBackend)
    assert ("ims-jobs", GLOBAL, PROJECT) in cloud.backends


def test_add_region_registers_only_ims_under_its_project() -> None:
    """A region added later holds an IMS backend for its own project and nothing else."""
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION)
    target = cloud.add_region(TARGET, TARGET_PROJECT)
    assert cloud.backends.get("ims", TARGET, TARGET_PROJECT, ImsBackend) is target
    assert cloud.ims_in(TARGET) is target
    assert ("evs", TARGET, TARGET_PROJECT) not in cloud.backends
    assert list(cloud.regions) == [REGION, TARGET]


def test_reset_resets_every_backend_and_keeps_regions() -> None:
    """reset() empties each registered backend, the added regions' too."""
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION)
    target = cloud.add_region(TARGET, TARGET_PROJECT)
    cloud.evs.add_volume("vol-1")
    target.add_image(name="replica")
    cloud.jobs.add_done(REGION, "imsBatchAddMembersJob", [])
    cloud.reset()
    assert (cloud.evs.volumes, target.images, cloud.jobs.jobs) == ({}, {}, {})
    assert cloud.ims_in(TARGET) is target


def test_control_routes_are_unique() -> None:
    """No two control routes share a method and a name pattern."""
    keys = [(r.method, r.pattern.pattern) for r in CONTROL_ROUTES]
    assert len(set(keys)) == len(keys)


def test_unknown_control_route_is_404_and_recorded() -> None:
    """A method or name the table lacks is 404 with its name, and the request is logged."""
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION)
    with serve(cloud) as server, requests.Session() as s:
        answer = s.put(f"{server.url}/_fake/state")
        assert answer.status_code == 404
        assert answer.json() == {"error": "no control route PUT /_fake/state"}
    assert [(r.method, r.service, r.status) for r in cloud.requests] == [("PUT", "control", 404)]


def test_timeline_polls_mode() -> None:
    """Polls mode: the first read changes nothing, reads 2..N run, read N+1 finishes."""
    schedule = Schedule(("SUCCESS", "FAIL"))
    schedule.set("polls", 3, "FAIL")
    timeline = schedule.start("x", START)
    assert not timeline.final_at_start()
    assert [timeline.poll() for _ in range(4)] == [None, RUN, RUN, FINISH]
    assert timeline.outcome == "FAIL"
    assert timeline.at(START + timedelta(hours=1)) is None


def test_timeline_duration_mode() -> None:
    """Duration mode: nothing at the start, running once the clock moved, final after N s."""
    clock = ManualClock(START)
    schedule = Schedule(("active", "killed"))
    schedule.set("duration", 10, "active")
    schedule.set_outcome("bad", "killed")
    timeline = schedule.start("bad", clock())
    assert (timeline.at(clock()), timeline.poll()) == (None, None)
    assert timeline.at(clock.advance(1)) == RUN
    assert timeline.at(clock.advance(9)) == FINISH
    assert timeline.outcome == "killed"


@pytest.mark.parametrize(
    ("mode", "after", "final"),
    [("immediate", 5, True), ("duration", 0, True), ("duration", 1, False), ("polls", 0, False)],
)
def test_final_at_start(mode: str, after: float, final: bool) -> None:
    """Immediate work, and duration work with no wait, is final when created."""
    schedule = Schedule(("SUCCESS", "FAIL"))
    schedule.set(mode, after, "SUCCESS")
    assert schedule.start("x", START).final_at_start() is final


@pytest.mark.parametrize(
    ("strict", "mode", "after", "outcome"),
    [
        (False, "never", 0, "active"),
        (False, "polls", 0, "SUCCESS"),
        (False, "polls", -1, "active"),
        (True, "polls", True, "SUCCESS"),
    ],
)
def test_schedule_refuses_what_it_cannot_apply(
    strict: bool, mode: str, after: float, outcome: str
) -> None:
    """Unknown modes and outcomes, negative waits, and (strict) non-numbers are ValueError;
    the schedule is unchanged."""
    outcomes = ("SUCCESS", "FAIL") if strict else ("active", "killed")
    schedule = Schedule(outcomes, strict_after=strict)
    with pytest.raises(ValueError):
        schedule.set(mode, after, outcome)
    with pytest.raises(ValueError):
        schedule.set_outcome("x", "never")
    assert schedule.to_dict() == {
        "mode": "immediate",
        "after": 0.0,
        "outcome": outcomes[0],
        "outcomes": {},
    }
