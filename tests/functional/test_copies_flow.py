"""Disaster-recovery copies end to end against the two-region fake (ManualClock): replication
once per image, keep per volume in the target, the 5-in-flight limit across runs, skips,
failed jobs, RPO breaches and sharing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from fakecloud import Image
from function.copies import copy_key
from function.lifecycle import MARKER_KEY, POLICY_KEY, REPORTED_KEY, STARTED_KEY, VOLUME_KEY
from tests.functional.conftest import START, VOLUME_A, VOLUME_B, Harness, timer_event

TARGET = "cn-east-3"
TARGET_PROJECT = "fedcba9876543210fedcba9876543210"
SHARE_PROJECT = "abcdef0123456789abcdef0123456789"
COPY_POST = r"/cross_region_copy$"


def policy(**target: Any) -> dict[str, Any]:
    return {
        "policy": "dr",
        "select": {"volume_ids": [VOLUME_A]},
        "copies": [{"region": TARGET, "project_id": TARGET_PROJECT, **target}],
    }


def of_type(result: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in result["results"] if e["type"] == type_]


def copy_types(result: dict[str, Any]) -> list[str]:
    return [e["type"] for e in result["results"] if e["type"].startswith(("evs.copy", "evs.rpo"))]


def summary(result: dict[str, Any]) -> dict[str, Any]:
    [done] = of_type(result, "evs.policy.completed")
    copies = done["data"]["copies"]
    assert isinstance(copies, dict)
    return copies


@pytest.fixture
def dr(harness: Harness) -> Iterator[Harness]:
    """The harness with IMS in cn-east-3 for the target project; the runs' own exports stay
    unfinished (so the seeded images are the ones copied) unless a test says otherwise."""
    harness.cloud.add_region(TARGET, TARGET_PROJECT)
    harness.cloud.set_progress("duration", after=10**6)
    yield harness


def source_image(
    h: Harness,
    n: int,
    volume: str = VOLUME_A,
    made: datetime | None = None,
    policy_name: str = "dr",
    **extra: Any,
) -> Image:
    """An active, reported image the policy made of ``volume`` at ``made``."""
    when = made or START - timedelta(hours=n)
    return h.cloud.ims.add_image(
        id=f"00000000-0000-4000-8000-{n:012d}",
        name=f"dr-src-{n}",
        status="active",
        created_at=when,
        tags={
            MARKER_KEY: "managed",
            VOLUME_KEY: volume,
            POLICY_KEY: policy_name,
            STARTED_KEY: str(int(when.timestamp())),
            REPORTED_KEY: "completed",
        },
        **extra,
    )


def test_each_new_image_is_replicated_once_and_keep_holds_n_per_volume(dr: Harness) -> None:
    """Five daily runs with keep 2 in the target: each day's image is copied once (started,
    then completed the next run), the copies are tagged as copies, and the target ends with
    the two newest copies of the volume."""
    dr.cloud.set_progress("immediate")
    rule = policy(keep=2)
    started: list[str] = []
    completed: list[str] = []
    for day in range(5):
        when = START + timedelta(days=day)
        dr.clock.set(when)
        result = dr.run(timer_event(rule, when))
        started += [e["subject"] for e in of_type(result, "evs.copy.started")]
        completed += [e["subject"] for e in of_type(result, "evs.copy.completed")]
    made = [
        i.id
        for i in sorted(dr.cloud.ims.images.values(), key=lambda i: i.created_at)
        if i.tags.get(POLICY_KEY) == "dr"
    ]
    assert started == made
    assert completed == made[:-1]  # the last one is followed by the next run
    assert dr.requests("POST", COPY_POST) == 5
    replicas = dr.cloud.ims_in(TARGET).images
    # The fifth day's replica is tagged (and counted) when the next run follows its job.
    assert len(replicas) == 3
    tagged = [i for i in replicas.values() if i.tags]
    copies = sorted(tagged, key=lambda i: i.tags["evs-export-source-time"])
    assert len(copies) == 2
    assert [c.tags["evs-export-source"] for c in copies] == made[2:4]
    assert copies[0].tags == {
        "evs-export": "copy",
        "evs-export-volume": VOLUME_A,
        "evs-export-policy": "dr",
        "evs-export-source": made[2],
        "evs-export-source-region": "cn-north-4",
        "evs-export-source-time": str(int((START + timedelta(days=2)).timestamp())),
    }
    source = dr.cloud.ims.images[made[3]]
    assert source.tags[copy_key(TARGET)] == f"done.{copies[1].id}"
    assert len(source.tags) <= 10


def test_completed_event_carries_the_target_image_and_job(dr: Harness) -> None:
    """A copy's started and completed events name the source image as subject and carry the
    volume, policy, region, job ID and (once known) the target image ID."""
    image = source_image(dr, 1)
    first = dr.run(timer_event(policy(), START))
    [started] = of_type(first, "evs.copy.started")
    assert started["subject"] == image.id
    data = started["data"]
    assert data["volume_id"] == VOLUME_A and data["policy"] == "dr" and data["region"] == TARGET
    assert data["job_id"] and data["target_image_id"] is None
    second = dr.run(timer_event(policy(), START + timedelta(minutes=10)))
    [completed] = of_type(second, "evs.copy.completed")
    [replica] = dr.cloud.ims_in(TARGET).images.values()
    assert completed["subject"] == image.id
    assert completed["data"]["target_image_id"] == replica.id
    assert completed["data"]["job_id"] == data["job_id"]
    third = dr.run(timer_event(policy(), START + timedelta(minutes=20)))
    assert copy_types(third) == []


def test_a_volume_without_a_copy_starts_from_its_newest_image(dr: Harness) -> None:
    """Three older active images and no copy yet: only the newest is copied (no backfill)."""
    for n in (3, 2, 1):
        source_image(dr, n)
    result = dr.run(timer_event(policy(), START))
    assert [e["subject"] for e in of_type(result, "evs.copy.started")] == [
        "00000000-0000-4000-8000-000000000001"
    ]


def test_five_in_flight_limit_with_twelve_waiting_and_slow_jobs(dr: Harness) -> None:
    """Twelve volumes each with a new image, jobs that take three runs: never more than five
    replications in flight, the rest started oldest first as slots free up, none dropped,
    none started twice."""
    volumes = [f"{n:08x}-384d-4e64-b37a-56d898769362" for n in range(12)]
    for n, volume in enumerate(volumes):
        dr.cloud.evs.add_volume(id=volume, name=f"v{n}", status="available", size=10)
        source_image(dr, n + 1, volume=volume, made=START - timedelta(hours=24 - n))
    dr.cloud.set_copy_progress("duration", after=1800)
    rule = {**policy(), "select": {"volume_ids": volumes}}
    started: list[str] = []
    completed: list[str] = []
    for run in range(10):
        when = START + timedelta(minutes=10 * run)
        dr.clock.set(when)
        result = dr.run(timer_event(rule, when))
        started += [e["subject"] for e in of_type(result, "evs.copy.started")]
        completed += [e["subject"] for e in of_type(result, "evs.copy.completed")]
        assert dr.cloud.jobs.in_flight() <= 5
        if run == 0:
            assert summary(result)["queued"] == 7
    oldest_first = [f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 13)]
    assert started[:12] == oldest_first
    assert [s for s in completed if s in oldest_first] == oldest_first
    assert not any(r.status >= 400 for r in dr.cloud.requests if r.path.endswith("copy"))


def test_encrypted_and_oversized_images_are_skipped_once_without_a_request(dr: Harness) -> None:
    """An encrypted image and one over the 300 GB limit each get one evs.copy.skipped with
    its reason and no replication request, also on later runs."""
    source_image(dr, 2, volume=VOLUME_A, __system_encrypted="1")
    dr.cloud.evs.add_volume(id=VOLUME_B, name="big", status="available", size=400)
    source_image(dr, 1, volume=VOLUME_B, min_disk=400)
    rule = {
        **policy(),
        "select": {"volume_ids": [VOLUME_A, VOLUME_B]},
        "image_name": "x-{volume_id}",
    }
    first = dr.run(timer_event(rule, START))
    skipped = {e["subject"]: e["data"] for e in of_type(first, "evs.copy.skipped")}
    assert skipped["00000000-0000-4000-8000-000000000002"]["reason"] == "encrypted"
    big = skipped["00000000-0000-4000-8000-000000000001"]
    assert (big["reason"], big["min_disk"], big["limit_gb"]) == ("too_large", 400, 300)
    assert dr.requests("POST", COPY_POST) == 0
    again = dr.run(timer_event(rule, START + timedelta(minutes=5)))
    assert of_type(again, "evs.copy.skipped") == []
    assert dr.requests("POST", COPY_POST) == 0


def test_a_failed_job_is_reported_once_and_not_retried(dr: Harness) -> None:
    """A replication that fails is reported once as evs.copy.failed with the job's error,
    and is not started again; with retry_failed it is."""
    image = source_image(dr, 1)
    dr.cloud.jobs.set_outcome(image.name, "FAIL")
    dr.run(timer_event(policy(), START))
    failed = dr.run(timer_event(policy(), START + timedelta(minutes=10)))
    [event] = of_type(failed, "evs.copy.failed")
    assert event["subject"] == image.id
    assert event["data"]["error"]["code"] == "IMG.0061"
    for minutes in (20, 30):
        later = dr.run(timer_event(policy(), START + timedelta(minutes=minutes)))
        assert copy_types(later) == []
    assert dr.requests("POST", COPY_POST) == 1
    retried = dr.run(timer_event(policy(retry_failed=True), START + timedelta(minutes=40)))
    assert copy_types(retried) == ["evs.copy.started"]
    assert dr.requests("POST", COPY_POST) == 2


def test_rpo_breach_is_raised_at_the_right_age(dr: Harness) -> None:
    """With rpo 26h, a volume whose newest copy stands for a source image 26h old is fine,
    one second later it is in breach: one evs.rpo.breached per run."""
    made = START - timedelta(hours=1)
    source_image(dr, 1, made=made)
    rule = policy(rpo="26h")
    dr.run(timer_event(rule, START))
    ok = dr.run(timer_event(rule, made + timedelta(hours=26)))
    assert of_type(ok, "evs.rpo.breached") == []
    assert summary(ok)["regions"][TARGET][VOLUME_A]["age_s"] == 26 * 3600
    late = made + timedelta(hours=26, seconds=1)
    breached = dr.run(timer_event(rule, late))
    [event] = of_type(breached, "evs.rpo.breached")
    assert event["subject"] == VOLUME_A
    assert event["data"]["region"] == TARGET and event["data"]["rpo"] == "26h"
    assert event["data"]["source_image_id"] == "00000000-0000-4000-8000-000000000001"
    assert event["data"]["age_s"] == 26 * 3600 + 1
    assert summary(breached)["rpo_breached"] == 1
    assert len(of_type(dr.run(timer_event(rule, late)), "evs.rpo.breached")) == 1


def test_rpo_without_any_copy_goes_by_the_oldest_uncopied_image(dr: Harness) -> None:
    """With no copy in the target, the volume is in breach once its oldest image not yet
    copied is older than the rpo."""
    source_image(dr, 1, made=START - timedelta(hours=30), __system_encrypted="1")
    result = dr.run(timer_event(policy(rpo="26h"), START))
    [event] = of_type(result, "evs.rpo.breached")
    assert event["data"]["oldest_uncopied_image_id"] == "00000000-0000-4000-8000-000000000001"
    assert event["data"]["age_s"] == 30 * 3600


def test_every_call_to_the_target_carries_the_target_project(dr: Harness) -> None:
    """Requests to the target region's IMS go to its host with the target's project ID; a
    malformed IMS_ENDPOINT_<REGION> is a configuration error naming the variable."""
    source_image(dr, 1)
    dr.run(timer_event(policy(), START))
    dr.run(timer_event(policy(), START + timedelta(minutes=5)))
    there = [
        r
        for r in dr.cloud.requests
        if {k.lower(): v for k, v in r.headers.items()}.get("host")
        == "ims.cn-east-3.myhuaweicloud.com"
    ]
    assert len(there) >= 2
    projects = {{k.lower(): v for k, v in r.headers.items()}["x-project-id"] for r in there}
    assert projects == {TARGET_PROJECT}
    bad = dr.run(timer_event(policy(), START), IMS_ENDPOINT_CN_EAST_3="ftp://x")
    assert bad["results"][0]["data"]["error"]["field"] == "IMS_ENDPOINT_CN_EAST_3"


def test_share_with_shares_each_active_image_once(dr: Harness) -> None:
    """share_with shares the policy's active images with the project once, recorded on the
    image; an encrypted image is not shared."""
    plain = source_image(dr, 1)
    secret = source_image(dr, 2, __system_encrypted="1")
    rule = {"policy": "dr", "select": {"volume_ids": [VOLUME_A]}, "share_with": [SHARE_PROJECT]}
    first = dr.run(timer_event(rule, START))
    assert first["sharing"]["shared"] == 1
    assert plain.members == {SHARE_PROJECT: "pending"}
    assert secret.members == {}
    assert plain.tags[REPORTED_KEY].startswith("completed.shared-")
    again = dr.run(timer_event(rule, START + timedelta(minutes=5)))
    assert dr.requests("POST", r"/v1/cloudimages/members$") == 1
    assert again.get("sharing", {}).get("shared", 0) == 0


def test_a_steady_daily_run_costs_seven_requests_for_its_copy(dr: Harness) -> None:
    """Once a copy a day is under way, a day's run spends on DR: one job read, one claim,
    one replication request, one job record, the copy's tag in the target, its done record
    on the source and one tag listing in the target. The details listing of the images
    (size, encryption) is the one the life cycle reads anyway: once per run."""
    dr.cloud.set_progress("immediate")
    rule = policy()
    for day in range(3):
        when = START + timedelta(days=day)
        dr.clock.set(when)
        before = len(dr.cloud.requests)
        dr.run(timer_event(rule, when))
    base = {"policy": "dr", "select": rule["select"]}
    last = START + timedelta(days=3)
    dr.clock.set(last)
    with_copies = dr.cloud.requests[before:]
    plain_before = len(dr.cloud.requests)
    dr.run(timer_event({**base, "image_name": "plain-{time:%Y%m%d}"}, last))
    plain = dr.cloud.requests[plain_before:]
    extra = len(with_copies) - len(plain)
    assert extra == 7
    details = [r for r in with_copies if r.path == "/v2/cloudimages" and "tag" in r.query]
    assert len(details) == 1
    assert dr.requests("GET", r"^/v1/[0-9a-f]+/jobs/") == 2
    assert sum(1 for r in with_copies if r.path.endswith("/cross_region_copy")) == 1


def test_a_lost_answer_never_starts_a_second_replication(dr: Harness) -> None:
    """The replication request is processed but its answer is lost: the claim on the source
    stands, no request is sent again, and the next run finds the copy by name and reports
    it completed."""
    from fakecloud import Fault

    image = source_image(dr, 1)
    dr.cloud.faults.add(Fault(method="POST", path=COPY_POST, reset="after"))
    first = dr.run(timer_event(policy(), START))
    assert copy_types(first) == []
    assert image.tags[copy_key(TARGET)].startswith("claimed.")
    second = dr.run(timer_event(policy(), START + timedelta(minutes=10)))
    assert copy_types(second) == ["evs.copy.completed"]
    assert dr.requests("POST", COPY_POST) == 1
    [replica] = dr.cloud.ims_in(TARGET).images.values()
    assert image.tags[copy_key(TARGET)] == f"done.{replica.id}"


def test_a_claim_without_a_copy_is_reported_failed_after_the_grace(dr: Harness) -> None:
    """A request that never arrived leaves a claim and no replica: after an hour it is one
    evs.copy.failed (CopyNotFound), never a second request."""
    from fakecloud import Fault

    image = source_image(dr, 1)
    dr.cloud.faults.add(Fault(method="POST", path=COPY_POST, status=500))
    dr.run(timer_event(policy(), START))
    assert image.tags[copy_key(TARGET)].startswith("claimed.")
    dr.clock.set(START + timedelta(minutes=59))
    early = dr.run(timer_event(policy(), dr.clock()))
    assert copy_types(early) == []
    dr.clock.set(START + timedelta(minutes=61))
    late = dr.run(timer_event(policy(), dr.clock()))
    [failed] = of_type(late, "evs.copy.failed")
    assert failed["data"]["error"]["code"] == "CopyNotFound"
    assert dr.requests("POST", COPY_POST) == 1


def test_refused_for_too_many_tasks_waits_for_a_later_run(dr: Harness) -> None:
    """IMG.0060 from IMS (replications started elsewhere) starts nothing: the image waits
    and is started by the next run, with one started event in all."""
    from fakecloud import Fault

    image = source_image(dr, 1)
    body = {"error": {"code": "IMG.0060", "message": "The number of tasks exceeds the limit."}}
    dr.cloud.faults.add(Fault(method="POST", path=COPY_POST, status=400, body=body))
    first = dr.run(timer_event(policy(), START))
    assert copy_types(first) == []
    assert image.tags[copy_key(TARGET)] == "queued"
    second = dr.run(timer_event(policy(), START + timedelta(minutes=10)))
    assert copy_types(second) == ["evs.copy.started"]


def test_a_redelivered_timer_event_starts_nothing_twice(dr: Harness) -> None:
    """The same timer event delivered twice starts the copy once: the claim recorded on the
    source image stops the second delivery."""
    source_image(dr, 1)
    event = timer_event(policy(), START)
    first = dr.run(event)
    again = dr.run(event)
    assert copy_types(first) == ["evs.copy.started"]
    assert "evs.copy.started" not in copy_types(again)
    assert dr.requests("POST", COPY_POST) == 1


def test_two_targets_each_get_a_copy_and_keep_touches_only_the_policys_copies(
    dr: Harness,
) -> None:
    """With cn-east-3 and cn-south-1 as targets, each region gets its own copy and copy-state
    tag (the source stays within 10 tags), and keep in a target leaves another policy's
    copies alone."""
    south_project = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"
    dr.cloud.add_region("cn-south-1", south_project)
    others = dr.cloud.ims_in(TARGET).add_image(
        name="other-policy-copy",
        created_at=START - timedelta(days=30),
        tags={
            "evs-export": "copy",
            "evs-export-volume": VOLUME_A,
            "evs-export-policy": "weekly",
            "evs-export-source-time": "1",
        },
    )
    image = source_image(dr, 2, made=START - timedelta(hours=2))
    rule = {
        **policy(keep=1),
        "copies": [
            {"region": TARGET, "project_id": TARGET_PROJECT, "keep": 1},
            {"region": "cn-south-1", "project_id": south_project, "keep": 1},
        ],
    }
    dr.run(timer_event(rule, START))
    source_image(dr, 1, made=START - timedelta(hours=1))
    for minutes in (10, 20):
        dr.run(timer_event(rule, START + timedelta(minutes=minutes)))
    for region in (TARGET, "cn-south-1"):
        tagged = [
            i for i in dr.cloud.ims_in(region).images.values() if i.tags.get(POLICY_KEY) == "dr"
        ]
        assert [i.tags["evs-export-source"] for i in tagged] == [
            "00000000-0000-4000-8000-000000000001"
        ]
    assert others.id in dr.cloud.ims_in(TARGET).images
    assert set(image.tags) >= {copy_key(TARGET), copy_key("cn-south-1")}
    assert len(image.tags) <= 10


def test_a_crash_in_copies_costs_neither_exports_nor_reports(
    dr: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in the copy runner is the copies section's InternalError; the
    run's export and completion report still come back."""
    import function.copies as copies

    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(copies.CopyRun, "follow", boom)
    dr.cloud.set_progress("immediate")
    result = dr.run(timer_event(policy(), START))
    assert result["copies"] == {
        "error": {"code": "InternalError", "message": "unexpected RuntimeError"}
    }
    types = [e["type"] for e in result["results"]]
    assert "evs.export.accepted" in types and "evs.export.completed" in types
