"""Issue 11's policy keys end to end against the in-process fake (ManualClock): retention by
calendar, orphans over a simulated month, exclusions through tags, IDs and servers,
``copy_tags`` at the tag limit, the run summary (also from a continuation) and stale alerts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fakecloud import Image
from function.lifecycle import (
    MARKER_KEY,
    ORPHANED_KEY,
    POLICY_KEY,
    REPORTED_KEY,
    STARTED_KEY,
    VOLUME_KEY,
)
from function.model import UploadOptions
from function.tagbudget import COPY_STATE, MAX_IMAGE_TAGS
from function.triggers import continuation
from function.work import ExportOrder, Exports
from tests.functional.conftest import (
    RESULT_SECRET,
    START,
    TOPIC,
    VOLUME_A,
    VOLUME_B,
    Harness,
    timer_event,
)
from tests.functional.webhook_receiver import Receiver

VOLUME_C = "36369c5d-384d-4e64-b37a-56d898769362"
SERVER = "46369c5d-384d-4e64-b37a-56d898769362"
SYSTEM_DISK = "56369c5d-384d-4e64-b37a-56d898769362"
DATA_DISK = "66369c5d-384d-4e64-b37a-56d898769362"
PROVENANCE_KEYS = {MARKER_KEY, VOLUME_KEY, POLICY_KEY, "evs-export-trigger", STARTED_KEY}
DAILY = {"policy": "daily", "select": {"tags": {"backup": "daily"}}}


def of_type(result: Mapping[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in result["results"] if e["type"] == type_]


def summary(result: Mapping[str, Any]) -> dict[str, Any]:
    [event] = of_type(result, "evs.policy.completed")
    data = dict(event["data"])
    assert event["subject"] == data["policy"]
    return data


def tag_volumes(harness: Harness, *volume_ids: str, **tags: str) -> None:
    for volume_id in volume_ids:
        harness.cloud.evs.volumes[volume_id].tags.update(tags)


def run_at(harness: Harness, policy: Mapping[str, Any], when: datetime) -> dict[str, Any]:
    harness.clock.set(when)
    return harness.run(timer_event(policy, when))


def policy_images(harness: Harness, volume_id: str, policy: str = "daily") -> list[Image]:
    """The images ``policy`` made of ``volume_id`` in the fake, oldest first."""
    found = [
        i
        for i in harness.cloud.ims.images.values()
        if i.tags.get(VOLUME_KEY) == volume_id and i.tags.get(POLICY_KEY) == policy
    ]
    return sorted(found, key=lambda i: i.created_at)


def old_image(harness: Harness, volume_id: str, age: timedelta, policy: str = "daily") -> Image:
    """An image ``policy`` made of ``volume_id`` ``age`` before START, already reported."""
    made = START - age
    return harness.cloud.ims.add_image(
        name=f"{policy}-{volume_id[:4]}-{int(made.timestamp())}",
        created_at=made,
        tags={
            MARKER_KEY: "managed",
            VOLUME_KEY: volume_id,
            POLICY_KEY: policy,
            REPORTED_KEY: "completed",
            STARTED_KEY: f"{int(made.timestamp())}-{int(made.timestamp())}",
        },
    )


def test_a_month_of_daily_runs_with_an_orphan_rule(harness: Harness) -> None:
    """Thirty daily runs keep three dailies per live volume; once volume B is deleted its
    newest image stays and the older ones go 7 days after they were made, as orphans."""
    tag_volumes(harness, VOLUME_A, VOLUME_B, backup="daily")
    policy = {**DAILY, "keep_daily": 3, "orphans": {"keep": 1, "after_days": 7}}
    orphan_deletions: list[tuple[int, str]] = []
    for day in range(30):
        if day == 10:
            del harness.cloud.evs.volumes[VOLUME_B]
        result = run_at(harness, policy, START + timedelta(days=day))
        assert result["retention"]["failed"] == []
        for event in of_type(result, "evs.image.deleted"):
            if event["subject"] == VOLUME_B and day >= 10:
                assert event["data"]["not_kept_by"] == ["orphans"]
                orphan_deletions.append((day, event["data"]["made_at"]))
            else:
                assert event["data"]["not_kept_by"] == ["keep_daily"]
        assert of_type(result, "evs.image.orphaned") == []

    made = [i.created_at for i in policy_images(harness, VOLUME_A)]
    assert made == [START + timedelta(days=d) for d in (27, 28, 29)]
    [kept_b] = policy_images(harness, VOLUME_B)
    assert kept_b.created_at == START + timedelta(days=9)
    assert orphan_deletions == [
        (14, "2025-03-08T01:00:00Z"),  # made on day 7, due on day 14
        (15, "2025-03-09T01:00:00Z"),
    ]


def test_orphans_without_a_rule_are_reported_once_and_kept(harness: Harness) -> None:
    """Without ``orphans`` each image of a vanished volume is reported once, with a tag that
    makes it once across runs, and nothing is deleted."""
    tag_volumes(harness, VOLUME_A, backup="daily")
    gone = "76369c5d-384d-4e64-b37a-56d898769362"
    images = [old_image(harness, gone, timedelta(days=d)) for d in (2, 1)]
    first = run_at(harness, {**DAILY, "keep": 1}, START)
    orphaned = of_type(first, "evs.image.orphaned")
    assert [e["subject"] for e in orphaned] == [i.id for i in images]
    assert orphaned[0]["data"] == {
        "image_id": images[0].id,
        "image_name": images[0].name,
        "volume_id": gone,
        "policy": "daily",
        "created_at": "2025-02-27T01:00:00Z",
        "status": "active",
        "trigger": "timer",
        "correlation_id": orphaned[0]["data"]["correlation_id"],
    }
    assert all(i.tags[ORPHANED_KEY] == "reported" for i in images)
    assert summary(first)["orphaned"] == 2

    again = run_at(harness, {**DAILY, "keep": 1}, START + timedelta(days=1))
    assert of_type(again, "evs.image.orphaned") == []
    assert {i.id for i in images} <= set(harness.cloud.ims.images)


def test_exclusions_through_tags_ids_and_servers(harness: Harness) -> None:
    """``exclude`` applies after ``select`` on every route: a tag pair (one of listed
    values), an ID, and a server's system disk; excluded volumes are counted, not reported."""
    harness.cloud.evs.add_volume(VOLUME_C, "scratch", "available", 10, tags={"backup": "daily"})
    tag_volumes(harness, VOLUME_A, backup="daily", tier="gold")
    tag_volumes(harness, VOLUME_B, backup="daily", tier="temp")
    harness.cloud.ecs.add_server(SERVER, "web-01")
    for volume, device in ((SYSTEM_DISK, "/dev/vda"), (DATA_DISK, "/dev/vdb")):
        harness.cloud.evs.add_volume(
            volume,
            f"web-01-{device[-3:]}",
            "in-use",
            40,
            device == "/dev/vda",
            attachments=[{"server_id": SERVER, "device": device}],
        )
    policy = {
        **DAILY,
        "force": True,
        "select": {"tags": {"backup": "daily"}, "server_ids": [SERVER]},
        "exclude": {
            "tags": {"tier": ["temp", "scratch"]},
            "volume_ids": [VOLUME_C],
            "system_disks": True,
        },
    }
    result = run_at(harness, policy, START)
    accepted = of_type(result, "evs.export.accepted")
    assert sorted(e["subject"] for e in accepted) == sorted([VOLUME_A, DATA_DISK])
    outcome_types = {f"evs.export.{k}" for k in ("accepted", "rejected", "failed", "skipped")}
    assert len([e for e in result["results"] if e["type"] in outcome_types]) == 2
    data = summary(result)
    assert (data["selected"], data["excluded"], data["accepted"]) == (5, 3, 2)
    assert result["summary"] == {"accepted": 2, "rejected": 0, "failed": 0, "skipped": 0}


def test_copy_tags_at_the_tag_limit(harness: Harness) -> None:
    """``copy_tags`` writes what fits with the provenance tags in one request, names the
    rest in ``tags_dropped``, and leaves room for every tag written later."""
    tag_volumes(harness, VOLUME_A, backup="daily", env="prod", app="shop", owner="ops")
    policy = {**DAILY, "copy_tags": ["env", "app", "owner", "absent"]}
    result = run_at(harness, policy, START)
    [accepted] = of_type(result, "evs.export.accepted")
    assert accepted["data"]["tags_dropped"] == ["app", "owner"]
    image = harness.cloud.ims.images[accepted["data"]["image_id"]]
    assert image.tags["env"] == "prod"
    assert "app" not in image.tags
    assert image.tags[STARTED_KEY] == f"{int(START.timestamp())}-{int(START.timestamp())}"
    [first_write] = [
        json.loads(r.body)
        for r in harness.cloud.requests
        if r.path.endswith(f"/images/{image.id}/tags/action") and b"managed" in r.body
    ]
    assert {t["key"] for t in first_write["tags"]} == {*PROVENANCE_KEYS, "env"}

    # Completion reported, then orphaned: still room for the two copy-state tags.
    run_at(harness, policy, START + timedelta(days=1))
    del harness.cloud.evs.volumes[VOLUME_A]
    run_at(harness, policy, START + timedelta(days=2))
    assert image.tags[REPORTED_KEY] == "completed"
    assert image.tags[ORPHANED_KEY] == "reported"
    assert len(image.tags) == MAX_IMAGE_TAGS - COPY_STATE


def test_copy_tags_true_copies_what_fits_by_key(harness: Harness) -> None:
    """``copy_tags: true`` takes the volume's tags by key while room lasts."""
    tag_volumes(harness, VOLUME_A, backup="daily", zone="a")
    result = run_at(harness, {**DAILY, "copy_tags": True}, START)
    [accepted] = of_type(result, "evs.export.accepted")
    image = harness.cloud.ims.images[accepted["data"]["image_id"]]
    assert image.tags["backup"] == "daily" and "zone" not in image.tags
    assert accepted["data"]["tags_dropped"] == ["zone"]


def test_run_summary_counts_every_outcome(harness: Harness) -> None:
    """A timer run ends in one evs.policy.completed with hop 0, selection, outcome counts,
    deletions and timing; the return value's summary keys stay as they were."""
    tag_volumes(harness, VOLUME_A, VOLUME_B, backup="daily")
    old = old_image(harness, VOLUME_A, timedelta(days=3))
    harness.cloud.ims.add_image(name="daily-app-data-20250301-0100")  # a duplicate name
    policy = {**DAILY, "image_name": "{policy}-{volume_name}-{time:%Y%m%d-%H%M}", "keep": 1}
    result = run_at(harness, policy, START)
    data = summary(result)
    assert data == {
        "policy": "daily",
        "hop": 0,
        "selected": 2,
        "excluded": 0,
        "accepted": 1,
        "rejected": 0,
        "failed": 0,
        "skipped": 1,
        "deferred": 0,
        "deleted": 0,  # the newest active image of volume A is never deleted
        "orphaned": 0,
        "stale": 0,
        "duration_s": 0.0,
        "handed_on": 0,
        "trigger": "timer",
        "correlation_id": f"timer:nightly-timer:{START.isoformat().replace('+00:00', 'Z')}",
    }
    assert old.id in harness.cloud.ims.images
    assert result["summary"] == {"accepted": 1, "rejected": 0, "failed": 0, "skipped": 1}


def test_continuation_of_a_timer_policy_emits_its_own_summary(harness: Harness) -> None:
    """A continuation of a timer run reports a summary with its hop, records the run's
    trigger time and copied tags carried in the order on the image it makes, and the
    image's completion still times the export itself."""
    harness.cloud.set_progress("duration", after=60)
    when = START - timedelta(minutes=5)
    order = ExportOrder(
        VOLUME_A,
        UploadOptions("daily-late"),
        policy="daily",
        run_time=when,
        image_tags={"env": "prod"},
        tags_dropped=("app",),
    )
    work = Exports("timer", "timer:nightly-timer:x")
    event = continuation.build(work, [order])
    result = harness.run(event)
    data = summary(result)
    assert (data["hop"], data["selected"], data["accepted"], data["handed_on"]) == (1, 1, 1, 0)
    [accepted] = of_type(result, "evs.export.accepted")
    assert accepted["data"]["tags_dropped"] == ["app"]
    image = harness.cloud.ims.images[accepted["data"]["image_id"]]
    assert image.tags[STARTED_KEY] == f"{int(START.timestamp())}-{int(when.timestamp())}"
    assert image.tags["env"] == "prod"
    harness.clock.advance(90)
    [done] = of_type(harness.run({"action": "reconcile"}), "evs.export.completed")
    assert done["data"]["duration_s"] == 90  # from the export's start, not the run's time


def test_continuation_without_the_new_fields_still_runs(harness: Harness) -> None:
    """An order written before run_time and copied tags existed exports as before."""
    event = {
        continuation.KEY: {
            "hop": 2,
            "trigger": "timer",
            "correlation_id": "c",
            "orders": [
                {
                    "volume_id": VOLUME_A,
                    "body": {"os-volume_upload_image": {"image_name": "late"}},
                    "policy": "daily",
                }
            ],
        }
    }
    result = harness.run(event)
    assert summary(result)["hop"] == 2
    [accepted] = of_type(result, "evs.export.accepted")
    image = harness.cloud.ims.images[accepted["data"]["image_id"]]
    assert image.tags[STARTED_KEY] == str(int(START.timestamp()))


def test_stale_alerts_for_old_or_missing_backups(harness: Harness) -> None:
    """With stale_after 26h, a volume whose newest active image is 2 days old and one with
    none are reported stale; one backed up 20 hours ago is not; excluded volumes never.
    (This run's own exports are still being made, so they are not active backups yet.)"""
    harness.cloud.set_progress("duration", after=600)
    harness.cloud.evs.add_volume(VOLUME_C, "fresh", "available", 10, tags={"backup": "daily"})
    tag_volumes(harness, VOLUME_A, VOLUME_B, backup="daily")
    old = old_image(harness, VOLUME_A, timedelta(days=2))
    old_image(harness, VOLUME_C, timedelta(hours=20))
    skipped = "86369c5d-384d-4e64-b37a-56d898769362"
    harness.cloud.evs.add_volume(skipped, "off", "available", 10, tags={"backup": "daily"})
    policy = {**DAILY, "stale_after": "26h", "exclude": {"volume_ids": [skipped]}}
    result = run_at(harness, policy, START)
    stale = {e["subject"]: e["data"] for e in of_type(result, "evs.backup.stale")}
    assert set(stale) == {VOLUME_A, VOLUME_B}
    assert stale[VOLUME_A]["newest_image_id"] == old.id
    assert stale[VOLUME_A]["newest_created_at"] == "2025-02-27T01:00:00Z"
    assert stale[VOLUME_A]["stale_after"] == "26h"
    assert stale[VOLUME_A]["policy"] == "daily"
    assert stale[VOLUME_B]["newest_image_id"] is None
    assert stale[VOLUME_B]["newest_created_at"] is None
    assert summary(result)["stale"] == 2


def test_replayed_run_decides_as_on_its_trigger_time(harness: Harness) -> None:
    """Ages are measured from the run's trigger time, so a run replayed a week later
    deletes exactly what it would have on time."""
    tag_volumes(harness, VOLUME_A, backup="daily")
    images = [old_image(harness, VOLUME_A, timedelta(days=d)) for d in (1, 2, 3, 4)]
    policy = {**DAILY, "keep_days": 3, "dry_run": True}
    on_time = run_at(harness, policy, START)
    harness.clock.set(START + timedelta(days=7))
    replay = harness.run(timer_event(policy, START))
    assert on_time["retention"]["dry_run"] == replay["retention"]["dry_run"]
    assert on_time["retention"]["dry_run"] == [images[3].id, images[2].id]


def test_dry_run_explains_each_rule(harness: Harness) -> None:
    """A dry run lists, per image, the rules keeping it and whether it would go."""
    tag_volumes(harness, VOLUME_A, backup="daily")
    images = [old_image(harness, VOLUME_A, timedelta(days=d)) for d in (1, 8, 9)]
    policy = {**DAILY, "keep_daily": 1, "keep_weekly": 2, "dry_run": True}
    result = run_at(harness, policy, START)
    report = {r["image_id"]: r for r in result["retention_rules"]["daily"]}
    assert report[images[0].id]["kept_by"] == ["keep_daily", "keep_weekly", "newest_active"]
    assert report[images[1].id]["kept_by"] == ["keep_weekly"]  # 2025-02-21, ISO week 8
    assert report[images[2].id]["delete"] is True
    assert report[images[2].id]["not_kept_by"] == ["keep_daily", "keep_weekly"]
    assert result["retention"]["dry_run"] == [images[2].id]
    assert harness.requests("DELETE", r".") == 0


def test_summary_and_stale_alerts_reach_every_sink(harness: Harness) -> None:
    """evs.policy.completed and evs.backup.stale are delivered to the webhook and SMN like
    the export events, with SMN attributes to filter on."""
    harness.cloud.set_progress("duration", after=600)
    tag_volumes(harness, VOLUME_A, backup="daily")
    env = {
        "RESULT_WEBHOOK_URL": "",
        "RESULT_WEBHOOK_SECRET": RESULT_SECRET,
        "RESULT_SMN_TOPIC_URN": TOPIC,
    }
    with Receiver() as rx:
        env["RESULT_WEBHOOK_URL"] = rx.url
        harness.clock.set(START)
        result = harness.run(timer_event({**DAILY, "stale_after": "8d"}, START), **env)
    wanted = {"evs.policy.completed", "evs.backup.stale"}
    ids = {e["id"] for e in result["results"] if e["type"] in wanted}
    assert len(ids) == 2
    assert ids <= {json.loads(r.body)["id"] for r in rx.requests}
    published = {
        json.loads(m["message"])["id"]: {a["name"]: a["value"] for a in m["message_attributes"]}
        for m in harness.cloud.smn.messages
    }
    assert ids <= set(published)
    attrs = sorted(published[i]["type"] for i in ids)
    assert attrs == ["evs.backup.stale", "evs.policy.completed"]
    assert result["deliveries"]["failed"] == []
