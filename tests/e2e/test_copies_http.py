"""Copies over real HTTP: the fake served on two ports (home, and cn-east-3's IMS), the
function reaching the target through IMS_ENDPOINT_CN_EAST_3 with its production transport."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from fakecloud import FakeCloud, ManualClock, serve
from function.app import handle
from function.config import Settings
from function.runtime import Runtime
from tests.functional.conftest import START, VOLUME_A
from tests.support import AK, PROJECT, REGION, SK, reset_logging

TARGET = "cn-east-3"
TARGET_PROJECT = "fedcba9876543210fedcba9876543210"


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts and ends with structlog, its context and the redactor reset."""
    reset_logging()
    yield
    reset_logging()


def test_a_copy_over_http_reaches_the_target_through_its_endpoint_variable() -> None:
    """With IMS_ENDPOINT_CN_EAST_3 pointing at the target's port, a policy's image is
    replicated, followed and tagged there in the target project, over HTTP."""
    clock = ManualClock(START)
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION, clock=clock)
    cloud.add_region(TARGET, TARGET_PROJECT)
    cloud.evs.add_volume(id=VOLUME_A, name="app-data", status="available", size=40)
    policy = {
        "policy": "dr",
        "select": {"volume_ids": [VOLUME_A]},
        "image_name": "dr-{volume_name}",  # the second run's export is a duplicate
        "copies": [{"region": TARGET, "project_id": TARGET_PROJECT}],
    }
    with serve(cloud) as home, serve(cloud, region=TARGET) as there:
        env = {"REGION": REGION, "PROJECT_ID": PROJECT, "HUAWEICLOUD_SDK_AK": AK}
        env |= {"HUAWEICLOUD_SDK_SK": SK, "IMS_ENDPOINT_CN_EAST_3": there.url}
        for service in ("EVS", "IMS", "ECS", "SMN", "FUNCTIONGRAPH"):
            env[f"{service}_ENDPOINT"] = home.url
        types: list[str] = []
        for n in range(2):
            when = START + timedelta(minutes=n)
            clock.set(when)
            event = {
                "trigger_type": "TIMER",
                "trigger_name": "t",
                "time": when.isoformat().replace("+00:00", "Z"),
                "user_event": json.dumps(policy),
            }
            runtime = Runtime(request_id=f"r{n}", clock=clock, remaining_ms=lambda: 60_000)
            result = handle(event, Settings.from_env(env), runtime)
            types += [e["type"] for e in result["results"] if e["type"].startswith("evs.copy")]
    assert types == ["evs.copy.started", "evs.copy.completed"]
    [replica] = cloud.ims_in(TARGET).images.values()
    assert replica.tags["evs-export"] == "copy"
    assert replica.tags["evs-export-policy"] == "dr"
