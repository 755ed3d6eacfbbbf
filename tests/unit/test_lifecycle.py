"""The image life cycle's pure parts: provenance tags, what reconcile reports, what retention
deletes, and the triggers' lifecycle tasks."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from function.cloud.client import CloudClient
from function.cloud.ims import ImsClient
from function.cloud.records import Accepted
from function.lifecycle import (
    MARKER_KEY,
    POLICY_KEY,
    REPORTED_KEY,
    STARTED_KEY,
    VOLUME_KEY,
    KeepRule,
    ManagedImage,
    duration_s,
    incomplete,
    just_accepted,
    keep_rules,
    parse_resource,
    provenance_tagger,
    provenance_tags,
    report_event,
    tag_value,
    to_delete,
    to_report,
)
from function.model import UploadOptions
from function.results import EventContext
from function.triggers import direct, timer
from function.work import ExportOrder, Exports, Outcome, PlanRequest, Rejection
from tests.unit.fakes import (
    IMAGE,
    PROJECT,
    START,
    VOLUME,
    VOLUME_2,
    ScriptedTransport,
    make_runtime,
    make_settings,
    response,
)

_VALUE_RE = re.compile(r"^[A-Za-z0-9._-]{0,43}$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def order(policy: str | None = "nightly", volume: str = VOLUME) -> ExportOrder:
    return ExportOrder(volume, UploadOptions("img"), policy=policy)


def image(
    n: int,
    status: str = "active",
    volume: str = VOLUME,
    policy: str = "nightly",
    reported: str | None = "completed",
    managed: bool = True,
) -> ManagedImage:
    tags = {VOLUME_KEY: volume, POLICY_KEY: policy}
    if managed:
        tags[MARKER_KEY] = "managed"
    if reported:
        tags[REPORTED_KEY] = reported
    created = START + timedelta(days=n)
    return ManagedImage(f"img-{n}", f"nightly-{n}", status, created, created, tags)


def ctx() -> EventContext:
    ids = iter(f"evt-{n}" for n in range(1, 100))
    return EventContext("urn:test", "timer", "corr", lambda: START, lambda: next(ids))


def test_tag_values_fit_ims_limits() -> None:
    """Provenance tag keys and values satisfy IMS's character and length rules."""
    long_policy = "p" * 64
    tags = provenance_tags(order(long_policy), "timer", START)
    assert all(_KEY_RE.match(k) for k in tags)
    assert all(_VALUE_RE.match(v) for v in tags.values())
    assert tags == {
        "evs-export": "managed",
        "evs-export-volume": VOLUME,
        "evs-export-policy": tag_value(long_policy),
        "evs-export-trigger": "timer",
        "evs-export-started": str(int(START.timestamp())),
    }


def test_long_values_stay_distinct_after_truncation() -> None:
    """Two long policies sharing a 43-character prefix get different tag values."""
    a, b = tag_value("x" * 50 + "a"), tag_value("x" * 50 + "b")
    assert a != b and len(a) == len(b) == 43


def test_tag_value_replaces_forbidden_characters() -> None:
    """Characters IMS refuses in a value become '-'."""
    assert tag_value("a=b,c/d e") == "a-b-c-d-e"


def test_export_without_policy_is_tagged_none() -> None:
    """An export outside a policy carries evs-export-policy=none."""
    assert provenance_tags(order(None), "direct", START)[POLICY_KEY] == "none"


def test_tagger_tags_the_new_image_in_one_request() -> None:
    """The after_accept hook writes all provenance tags in one IMS request."""
    transport = ScriptedTransport(response(204))
    ims = ImsClient(CloudClient(make_settings(), make_runtime(), transport))
    accepted = Accepted(IMAGE, "img", "uploading", None, None, 40, "r")
    assert provenance_tagger(ims, "timer", lambda: START)(order(), accepted) is None
    [sent] = transport.sent
    assert sent.url.endswith(f"/v2/{PROJECT}/images/{IMAGE}/tags/action")
    body = json.loads(sent.body)
    assert body["action"] == "create"
    assert {t["key"]: t["value"] for t in body["tags"]}[MARKER_KEY] == "managed"


def test_tagging_failure_is_reported_not_raised() -> None:
    """A refused tag write becomes data.tagging_error; the export stays accepted."""
    refusal = response(400, {"error_code": "IMG.0001", "error_msg": "bad tag"})
    ims = ImsClient(CloudClient(make_settings(), make_runtime(), ScriptedTransport(refusal)))
    accepted = Accepted(IMAGE, "img", "uploading", None, None, 40, "r")
    extra = provenance_tagger(ims, "timer", lambda: START)(order(), accepted)
    assert extra == {"tagging_error": {"code": "IMG.0001", "message": "bad tag"}}


def test_parse_resource_reads_listing_entries() -> None:
    """A resource_instances entry gives ID, name, status, times and tags."""
    resource: dict[str, Any] = {
        "resource_id": IMAGE,
        "resource_name": "nightly-1",
        "resource_detail": {
            "status": "active",
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:10:00Z",
        },
        "tags": [{"key": MARKER_KEY, "value": "managed"}, {"key": STARTED_KEY, "value": "1"}],
    }
    parsed = parse_resource(resource)
    assert parsed is not None
    assert (parsed.id, parsed.name, parsed.status) == (IMAGE, "nightly-1", "active")
    assert parsed.updated_at == START + timedelta(minutes=10)
    assert parsed.managed and parsed.started == datetime.fromtimestamp(1, timezone.utc)
    assert parse_resource({"resource_detail": {}}) is None


@pytest.mark.parametrize("detail_key", ["resource_detail", "resouce_detail"])
def test_parse_resource_takes_creation_time_from_started_tag(detail_key: str) -> None:
    """A status-only detail (PLATFORM.md 10.2; the SDK model spells the key resouce_detail)
    still gives status, and the creation time comes from the evs-export-started tag."""
    started = int((START + timedelta(hours=2)).timestamp())
    resource: dict[str, Any] = {
        "resource_id": IMAGE,
        "resource_name": "nightly-1",
        detail_key: {"status": "active"},
        "tags": [
            {"key": MARKER_KEY, "value": "managed"},
            {"key": STARTED_KEY, "value": str(started)},
        ],
    }
    parsed = parse_resource(resource)
    assert parsed is not None
    assert parsed.status == "active"
    assert parsed.created_at == START + timedelta(hours=2)
    assert parsed.updated_at is None
    assert not incomplete(parsed)


def test_listing_entry_without_time_or_name_is_incomplete() -> None:
    """A managed entry with no started tag, or no name, needs completing; a foreign one
    never."""
    bare: dict[str, Any] = {
        "resource_id": IMAGE,
        "resource_name": "n",
        "resource_detail": {"status": "active"},
        "tags": [{"key": MARKER_KEY, "value": "managed"}],
    }
    parsed = parse_resource(bare)
    assert parsed is not None and parsed.created_at is None and incomplete(parsed)
    nameless = parse_resource({**bare, "resource_name": "", "tags": [*bare["tags"]]})
    assert nameless is not None and incomplete(nameless)
    foreign = parse_resource({**bare, "tags": []})
    assert foreign is not None and not incomplete(foreign)


def test_reconcile_reports_finished_unreported_managed_images_only() -> None:
    """Active is completed, killed is image_failed; reported, unfinished and foreign are not."""
    images = [
        image(1, reported=None),
        image(2, "killed", reported=None),
        image(3, reported="completed"),
        image(4, "saving", reported=None),
        image(5, reported=None, managed=False),
    ]
    assert [(i.id, kind) for i, kind in to_report(images)] == [
        ("img-1", "completed"),
        ("img-2", "image_failed"),
    ]


def test_duration_runs_from_started_tag_to_update() -> None:
    """duration_s is the started tag to updated_at, in whole seconds."""
    started = int(START.timestamp())
    img = ManagedImage(
        "i", "n", "active", START, START + timedelta(seconds=754), {STARTED_KEY: str(started)}
    )
    assert duration_s(img) == 754
    assert duration_s(ManagedImage("i", "n", "active", None, None, {})) is None


def test_report_event_shape() -> None:
    """The completed event names the volume as subject and carries the image's facts."""
    ev = report_event(ctx(), image(1, reported=None), "completed")
    assert ev["type"] == "evs.export.completed" and ev["subject"] == VOLUME
    assert ev["data"] == {
        "volume_id": VOLUME,
        "image_id": "img-1",
        "image_name": "nightly-1",
        "status": "active",
        "policy": "nightly",
        "duration_s": 0,
        "trigger": "timer",
        "correlation_id": "corr",
    }


def test_retention_keeps_newest_per_volume_and_policy() -> None:
    """keep 2 of four images deletes the two oldest; other volumes and policies are apart."""
    images = [image(n) for n in range(1, 5)]
    images += [image(9, volume=VOLUME_2), image(8, policy="weekly")]
    doomed = to_delete(images, KeepRule("nightly", 2))
    assert [i.id for i in doomed] == ["img-1", "img-2"]


def test_retention_never_touches_unmanaged_unfinished_or_unreported_images() -> None:
    """Foreign images, images still being made, and unreported ones are never deleted."""
    images = [
        image(1, managed=False),
        image(2, "queued", reported=None),
        image(3, reported=None),
        image(4),
        image(5),
    ]
    assert to_delete(images, KeepRule("nightly", 2)) == []
    assert [i.id for i in to_delete(images, KeepRule("nightly", 2), ["img-3"])] == ["img-3"]


def test_images_in_progress_count_towards_keep() -> None:
    """A just-accepted (queued) image counts as one of the N newest."""
    images = [image(1), image(2), image(3, "queued", reported=None)]
    assert [i.id for i in to_delete(images, KeepRule("nightly", 2))] == ["img-1"]


def test_killed_images_do_not_count_and_go_once_older_than_kept() -> None:
    """Failed images are no backups: they do not count, and go when older than those kept."""
    images = [image(1, "killed", reported="image_failed"), image(2), image(3)]
    images.append(image(4, "killed", reported="image_failed"))
    assert [i.id for i in to_delete(images, KeepRule("nightly", 2))] == ["img-1"]
    assert to_delete(images[:2], KeepRule("nightly", 2)) == []


def test_just_accepted_images_join_the_count() -> None:
    """Images accepted in this run are counted; untagged ones are never deletable."""
    acc = Accepted(IMAGE, "img", "uploading", None, None, 1, "r")
    tagged = Outcome("accepted", VOLUME, "img", accepted=acc, order=order())
    untagged = Outcome(
        "accepted", VOLUME, "img", accepted=acc, order=order(), extra={"tagging_error": {}}
    )
    [a] = just_accepted([tagged], START)
    [b] = just_accepted([untagged], START)
    assert a.managed and a.policy == "nightly" and a.status == "queued"
    assert not b.managed


def test_keep_rules_come_from_policies_with_keep() -> None:
    """Only plans with keep give a retention rule; dry_run is carried."""
    plans = (
        PlanRequest("nightly", "{volume_id}", START, keep=3, dry_run=True),
        PlanRequest("ad-hoc", "{volume_id}", START),
    )
    work = Exports("timer", "c", plans=plans)
    assert keep_rules(work) == [KeepRule("nightly", 3, True)]


def test_direct_reconcile_event_is_recognised() -> None:
    """{"action": "reconcile"} is a direct event flagged for reconcile, nothing to export."""
    assert direct.matches({"action": "reconcile"})
    assert not direct.is_request({"action": "decommission"})
    # Any other action is direct's too (as the router has always sent it), and rejected.
    assert direct.matches({"action": "decommission"})
    other = direct.parse({"action": "decommission"}, make_settings(), make_runtime())
    assert other.tasks == frozenset() and other.plans == ()
    [rejection] = other.items
    assert isinstance(rejection, Rejection) and rejection.error.field == "volume_id"
    work = direct.parse({"action": "reconcile"}, make_settings(), make_runtime())
    assert work.tasks == frozenset({"reconcile"}) and work.items == () and work.plans == ()


def test_direct_reconcile_with_unknown_fields_is_rejected() -> None:
    """A reconcile event with other fields is rejected, naming the field."""
    work = direct.parse({"action": "reconcile", "force": True}, make_settings(), make_runtime())
    assert work.tasks == frozenset()
    [item] = work.items
    assert not isinstance(item, (ExportOrder, Outcome))
    assert item.error.field == "force"


def test_timer_runs_reconcile_and_retention() -> None:
    """Every valid timer policy run also reconciles and applies retention."""
    event = {
        "trigger_type": "TIMER",
        "trigger_name": "nightly",
        "time": "2025-01-01T01:00:00Z",
        "user_event": json.dumps({"policy": "nightly", "select": {"volume_ids": [VOLUME]}}),
    }
    work = timer.parse(event, make_settings(), make_runtime())
    assert work.tasks == frozenset({"reconcile", "retention"})
