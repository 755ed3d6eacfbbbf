"""Issue 11's timer policy keys: validation with errors naming the field, the plan they
become, the run time in the started tag, continuation orders that carry it, and the shape
of evs.policy.completed."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from function.errors import InvalidInput
from function.lifecycle import (
    MARKER_KEY,
    POLICY_KEY,
    REPORTED_KEY,
    STARTED_KEY,
    VOLUME_KEY,
    KeepRule,
    ManagedImage,
    deletions,
    provenance_tags,
    to_delete,
)
from function.model import UploadOptions
from function.results import EventContext, policy_completed_event, summarize
from function.retention import Orphans, Rules
from function.triggers import continuation, timer_policy
from function.work import ExportOrder, Exports
from tests.unit.fakes import START, VOLUME

BASE: dict[str, Any] = {"policy": "cbr", "select": {"tags": {"backup": "daily"}}}
CST = timezone(timedelta(hours=8))


def parse(**keys: Any) -> timer_policy.Policy:
    return timer_policy.parse_policy(json.dumps({**BASE, **keys}))


def test_cbr_like_policy_becomes_one_plan() -> None:
    """Daily for a week, weekly for a month, monthly for a year, with orphans, exclusions,
    copied tags and a stale alert, all reach the plan."""
    policy = parse(
        keep_daily=7,
        keep_weekly=4,
        keep_monthly=12,
        orphans={"keep": 1, "after_days": 30},
        exclude={"tags": {"backup-skip": ["yes", "true"]}, "system_disks": True},
        copy_tags=["app", "env"],
        stale_after="26h",
    )
    when = datetime(2026, 11, 26, 2, 0, tzinfo=CST)
    plan = timer_policy.plan_for(policy, when)
    assert plan.policy_rules is not None
    assert plan.policy_rules.rules == Rules(keep_daily=7, keep_weekly=4, keep_monthly=12)
    assert plan.policy_rules.orphans == Orphans(1, 30)
    assert plan.policy_rules.stale_after == "26h"
    assert plan.copy_tags == ("app", "env")
    assert plan.exclude is not None and plan.exclude.system_disks
    assert plan.exclude.tagged({"backup-skip": "true"})
    assert not plan.exclude.tagged({"backup-skip": "no"})
    assert plan.time.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("keys", "field", "words"),
    [
        ({"keep_days": 0}, "user_event.keep_days", "greater than or equal to 1"),
        ({"keep_daily": "7"}, "user_event.keep_daily", "valid integer"),
        ({"keep_weekly": 1001}, "user_event.keep_weekly", "less than or equal to 1000"),
        ({"keep_monthly": True}, "user_event.keep_monthly", "valid integer"),
        ({"keep_yearly": 1.5}, "user_event.keep_yearly", "valid integer"),
        ({"orphans": {"keep": 1}}, "user_event.orphans.after_days", "is required"),
        ({"orphans": {"keep": -1, "after_days": 1}}, "user_event.orphans.keep", ">= 0"),
        ({"orphans": {"keep": 0, "after_days": 0, "x": 1}}, "user_event.orphans.x", "not a known"),
        ({"exclude": {"volume_ids": ["nope"]}}, "user_event.exclude.volume_ids", "not a UUID"),
        ({"exclude": {"tags": {"a": 1}}}, "user_event.exclude.tags", "string or a non-empty"),
        ({"exclude": {"tags": {"a": []}}}, "user_event.exclude.tags", "string or a non-empty"),
        ({"exclude": {"system_disks": "yes"}}, "user_event.exclude.system_disks", "true or false"),
        ({"exclude": {"servers": []}}, "user_event.exclude.servers", "not a known field"),
        ({"copy_tags": "all"}, "user_event.copy_tags", "true (every tag"),
        ({"copy_tags": ["a", "a"]}, "user_event.copy_tags", "distinct"),
        ({"copy_tags": [""]}, "user_event.copy_tags", "list of tag keys"),
        ({"stale_after": "26"}, "user_event.stale_after", "<integer><m|h|d>"),
        ({"stale_after": "1w"}, "user_event.stale_after", "<integer><m|h|d>"),
        ({"stale_after": 26}, "user_event.stale_after", "string"),
    ],
)
def test_invalid_policy_keys_are_named(keys: dict[str, Any], field: str, words: str) -> None:
    """Each malformed key is rejected with its dotted field and words that say the fix."""
    with pytest.raises(InvalidInput) as caught:
        parse(**keys)
    assert caught.value.field == field
    message = caught.value.message.replace("greater than or equal to 0", ">= 0")
    assert words in message


def test_policy_run_time_rides_in_the_started_tag() -> None:
    """A policy order's image records the export start and the run's trigger time in one
    tag, read back as started and run_time; copied tags go in the same set."""
    run = START - timedelta(minutes=3)
    order = ExportOrder(
        VOLUME, UploadOptions("i"), "cbr", run_time=run,
        image_tags={"env": "prod"},
    )  # fmt: skip
    tags = provenance_tags(order, "timer", START)
    assert tags[STARTED_KEY] == f"{int(START.timestamp())}-{int(run.timestamp())}"
    assert tags["env"] == "prod" and len(tags) == 6
    image = ManagedImage("i", "n", "active", None, None, tags)
    assert image.started == START and image.run_time == run and image.made_at == run


def test_image_without_run_time_is_timed_by_created_at() -> None:
    """Images made before the run time was recorded use IMS's created_at for every rule."""
    image = ManagedImage("i", "n", "active", START, None, {STARTED_KEY: "12"})
    assert image.run_time is None and image.made_at == START
    assert ManagedImage("i", "n", "active", None, None, {STARTED_KEY: "x-y"}).made_at is None


def test_continuation_round_trips_run_time_and_copied_tags() -> None:
    """A continuation order carries the run time, copied tags and dropped names; a copied
    tag IMS would refuse is left out when read back."""
    order = ExportOrder(
        VOLUME,
        UploadOptions("i"),
        "cbr",
        run_time=START,
        image_tags={"env": "prod"},
        tags_dropped=("app",),
    )
    event = continuation.build(Exports("timer", "c"), [order])
    work = continuation.parse(event, None, None)  # type: ignore[arg-type]
    [back] = work.items
    assert isinstance(back, ExportOrder)
    assert (back.run_time, dict(back.image_tags), back.tags_dropped) == (
        START,
        {"env": "prod"},
        ("app",),
    )
    event[continuation.KEY]["orders"][0]["image_tags"] = {"evs-export": "forged"}
    [forged] = continuation.parse(event, None, None).items  # type: ignore[arg-type]
    assert isinstance(forged, ExportOrder) and dict(forged.image_tags) == {}


def test_policy_completed_event_shape_and_summary_counts() -> None:
    """evs.policy.completed has the policy as subject and the counts; it does not change
    the return value's summary counts."""
    ids = iter(["e1", "e2"])
    ctx = EventContext("urn:x", "timer", "corr", lambda: START, lambda: next(ids))
    event = policy_completed_event(
        ctx,
        policy="cbr",
        hop=1,
        selected=4,
        excluded=1,
        outcomes=["accepted", "deferred", "skipped"],
        lifecycle={"deleted": 2},
        duration_s=1.23456,
    )
    assert event["type"] == "evs.policy.completed" and event["subject"] == "cbr"
    assert event["data"] == {
        "policy": "cbr",
        "hop": 1,
        "selected": 4,
        "excluded": 1,
        "accepted": 1,
        "rejected": 0,
        "failed": 0,
        "skipped": 1,
        "deferred": 1,
        "deleted": 2,
        "orphaned": 0,
        "stale": 0,
        "duration_s": 1.235,
        "handed_on": 1,
        "trigger": "timer",
        "correlation_id": "corr",
    }
    assert summarize([event]) == {"accepted": 0, "rejected": 0, "failed": 0, "skipped": 0}


def test_image_of_unknown_time_is_never_deleted() -> None:
    """An image with neither a run time nor created_at ranks oldest but is never deleted."""
    rule = KeepRule("cbr", rules=Rules(keep=1), now=START, name="cbr")
    tags = {MARKER_KEY: "managed", VOLUME_KEY: VOLUME, POLICY_KEY: "cbr", REPORTED_KEY: "done"}
    images = [
        ManagedImage("new", "n", "active", START, START, tags),
        ManagedImage("unknown", "u", "active", None, None, tags),
        ManagedImage("old", "o", "active", START - timedelta(days=1), None, tags),
    ]
    assert [i.id for i in to_delete(images, rule)] == ["old"]


def test_orphans_of_a_vanished_volume_follow_only_the_orphan_rule() -> None:
    """For a vanished volume the orphan rule replaces keep; without it nothing of it goes."""
    tags = {MARKER_KEY: "managed", VOLUME_KEY: VOLUME, POLICY_KEY: "cbr", REPORTED_KEY: "done"}
    images = [
        ManagedImage(f"i{d}", "n", "active", START - timedelta(days=d), None, tags)
        for d in (1, 5, 10)
    ]
    orphans = KeepRule("cbr", rules=Rules(keep=3), orphans=Orphans(1, 4), now=START, name="cbr")
    pairs = deletions(images, orphans, vanished=[VOLUME])
    assert [(i.id, why) for i, why in pairs] == [("i10", ("orphans",)), ("i5", ("orphans",))]
    no_rule = KeepRule("cbr", rules=Rules(keep=1), now=START, name="cbr")
    assert deletions(images, no_rule, vanished=[VOLUME]) == []
    assert [i.id for i in to_delete(images, no_rule)] == ["i10", "i5"]
