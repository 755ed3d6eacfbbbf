"""The image life cycle end to end: provenance tags on export, reconcile reporting each
finished image once, and a policy's keep: N retention, against the fake cloud."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fakecloud import Image
from function.lifecycle import MARKER_KEY, POLICY_KEY, REPORTED_KEY, VOLUME_KEY
from tests.functional.conftest import (
    START,
    VOLUME_A,
    VOLUME_B,
    Harness,
    export_batch,
    timer_event,
)

RECONCILE = {"action": "reconcile"}
LISTING = r"/images/resource_instances/action$"
TAG_WRITE = r"/images/[^/]+/tags/action$"
NIGHTLY = {"policy": "nightly", "select": {"volume_ids": [VOLUME_A]}, "keep": 2}


def types(result: dict[str, Any]) -> list[str]:
    return [e["type"] for e in result["results"]]


def managed(
    harness: Harness, n: int, policy: str = "nightly", status: str = "active", **extra: Any
) -> Image:
    """An image the function made ``n`` days before START, already reported."""
    return harness.cloud.ims.add_image(
        id=f"00000000-0000-4000-8000-{n:012d}",
        name=f"{policy}-old-{n}",
        status=status,
        created_at=START - timedelta(days=n),
        tags={
            MARKER_KEY: "managed",
            VOLUME_KEY: VOLUME_A,
            POLICY_KEY: policy,
            REPORTED_KEY: "completed" if status == "active" else "image_failed",
        },
        **extra,
    )


def test_exported_images_carry_provenance_tags(harness: Harness) -> None:
    """Every image an export makes is tagged with marker, volume, policy, trigger and start."""
    result = harness.run(export_batch(VOLUME_A))
    image_id = result["results"][0]["data"]["image_id"]
    assert harness.cloud.ims.images[image_id].tags == {
        "evs-export": "managed",
        "evs-export-volume": VOLUME_A,
        "evs-export-policy": "none",
        "evs-export-trigger": "direct",
        "evs-export-started": str(int(START.timestamp())),
    }


def test_reconcile_reports_completed_and_image_failed_exactly_once(harness: Harness) -> None:
    """Once the images finish, one reconcile reports one completed and one image_failed; a
    second reconcile reports nothing."""
    harness.cloud.set_progress("duration", after=600)
    harness.cloud.ims.set_outcome("img-2", "killed")
    exported = harness.run(export_batch(VOLUME_A, VOLUME_B))
    assert types(exported) == ["evs.export.accepted"] * 2

    early = harness.run(RECONCILE)
    assert early["results"] == []
    assert early["reconcile"]["in_progress"] == 2

    harness.clock.advance(601)
    before = len(harness.cloud.requests)
    done = harness.run(RECONCILE)
    assert types(done) == ["evs.export.completed", "evs.export.image_failed"]
    completed, failed = done["results"]
    assert completed["subject"] == VOLUME_A and failed["subject"] == VOLUME_B
    assert completed["data"] == {
        "volume_id": VOLUME_A,
        "image_id": exported["results"][0]["data"]["image_id"],
        "image_name": "img-1",
        "status": "active",
        "policy": None,
        "duration_s": 601,
        "export_trigger": "direct",
        "trigger": "direct",
        "correlation_id": "req-0003",
    }
    assert failed["data"]["status"] == "killed"
    assert done["reconcile"] == {
        "completed": 1,
        "image_failed": 1,
        "not_recorded": 0,
        "deferred": 0,
        "in_progress": 0,
    }
    # The tag listing, one image listing for the finish times (the tag listing holds only
    # the status, PLATFORM.md 10.2) and one tag write per finished image; nothing else.
    assert len(harness.cloud.requests) - before == 4
    assert harness.requests("POST", LISTING) == 2
    tags = {i.name: i.tags.get(REPORTED_KEY) for i in harness.cloud.ims.images.values()}
    assert tags == {"img-1": "completed", "img-2": "image_failed"}

    again = harness.run(RECONCILE)
    assert again["results"] == []
    assert again["reconcile"]["completed"] == again["reconcile"]["image_failed"] == 0


def test_reconcile_of_many_images_costs_one_listing_and_one_write_each(harness: Harness) -> None:
    """Reporting 500 finished images takes one tag listing page, the image listing for their
    times (a full page of 500, then the empty page that ends it) and 500 tag writes."""
    for n in range(500):
        harness.cloud.ims.add_image(
            name=f"bulk-{n}",
            tags={MARKER_KEY: "managed", VOLUME_KEY: VOLUME_A, POLICY_KEY: "none"},
        )
    result = harness.run(RECONCILE)
    assert types(result) == ["evs.export.completed"] * 500
    assert harness.requests("POST", LISTING) == 1
    assert harness.requests("POST", TAG_WRITE) == 500
    assert harness.requests("GET", r"^/v2/cloudimages$") == 2
    assert len(harness.cloud.requests) == 503


def test_four_daily_runs_of_keep_two_leave_the_two_newest(harness: Harness) -> None:
    """Four daily runs of a keep: 2 policy end with its two newest images, two deletions in
    all, and images it did not make untouched."""
    unrelated = harness.cloud.ims.add_image(name="golden-base", created_at=START - timedelta(9))
    other_policy = managed(harness, 5, policy="weekly")
    deleted: list[dict[str, Any]] = []
    made: list[str] = []
    for day in range(4):
        when = START + timedelta(days=day)
        harness.clock.set(when)
        result = harness.run(timer_event(NIGHTLY, when))
        accepted = [e for e in result["results"] if e["type"] == "evs.export.accepted"]
        made.append(accepted[0]["data"]["image_id"])
        deleted += [e for e in result["results"] if e["type"] == "evs.image.deleted"]
        assert result["retention"]["failed"] == []

    assert [e["data"]["image_id"] for e in deleted] == made[:2]
    assert deleted[0]["data"]["policy"] == "nightly"
    assert deleted[0]["data"]["volume_id"] == VOLUME_A == deleted[0]["subject"]
    assert deleted[0]["data"]["created_at"] == "2025-03-01T01:00:00Z"
    remaining = set(harness.cloud.ims.images)
    assert remaining == {*made[2:], unrelated.id, other_policy.id}
    assert harness.requests("POST", LISTING) == 4  # one listing per run, for both tasks


def test_dry_run_deletes_nothing(harness: Harness) -> None:
    """A dry-run policy reports what retention would delete and deletes nothing."""
    old = [managed(harness, n) for n in (1, 2, 3)]
    policy = {**NIGHTLY, "keep": 1, "dry_run": True}
    result = harness.run(timer_event(policy, START))
    assert types(result) == ["evs.export.skipped", "evs.policy.completed"]
    assert result["retention"] == {
        "deleted": 0,
        "failed": [],
        "dry_run": [old[2].id, old[1].id],
    }
    assert harness.requests("DELETE", r".") == 0
    assert {i.id for i in old} <= set(harness.cloud.ims.images)


def test_refused_deletion_is_reported_and_the_rest_goes_on(harness: Harness) -> None:
    """A protected image IMS will not delete is a retention failure; the others are deleted."""
    protected = managed(harness, 3, protected=True)
    others = [managed(harness, n) for n in (1, 2)]
    result = harness.run(timer_event({**NIGHTLY, "keep": 1}, START))
    deleted = [e["data"]["image_id"] for e in result["results"] if e["type"] == "evs.image.deleted"]
    assert sorted(deleted) == sorted(i.id for i in others)
    [failure] = result["retention"]["failed"]
    assert failure["image_id"] == protected.id
    assert failure["error"]["code"] == "IMG.0028"
    assert protected.id in harness.cloud.ims.images


def test_images_still_being_made_are_never_deleted(harness: Harness) -> None:
    """Retention leaves queued and saving images alone, however old."""
    harness.cloud.set_progress("duration", after=3600)
    saving = managed(harness, 4, status="saving")
    saving.tags.pop(REPORTED_KEY)
    result = harness.run(timer_event({**NIGHTLY, "keep": 1}, START))
    assert "evs.image.deleted" not in types(result)
    assert result["retention"] == {"deleted": 0, "failed": []}
    assert saving.id in harness.cloud.ims.images


def test_retention_orders_by_creation_time_when_the_tag_listing_holds_only_status(
    harness: Harness,
) -> None:
    """The strict tag listing gives only status (PLATFORM.md 10.2): retention still ranks by
    the images' creation times (seeded against their listing order) and each deletion event
    carries its image's creation time."""
    newest, oldest, middle = (managed(harness, n) for n in (1, 3, 2))
    result = harness.run(timer_event({**NIGHTLY, "keep": 2, "dry_run": False}, START))
    deleted = [e for e in result["results"] if e["type"] == "evs.image.deleted"]
    assert [e["data"]["image_id"] for e in deleted] == [oldest.id, middle.id]
    assert [e["data"]["created_at"] for e in deleted] == [
        "2025-02-26T01:00:00Z",
        "2025-02-27T01:00:00Z",
    ]
    assert set(harness.cloud.ims.images) >= {newest.id}
