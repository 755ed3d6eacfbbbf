"""function/triggers/timer.py: a TIMER event's policy parsed into one plan (vectors)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from function.triggers import timer, timer_policy
from function.work import PlanRequest, Rejection
from tests.unit.fakes import START, VOLUME, VOLUME_2, make_runtime, make_settings

SERVER = "b6d1f0c2-3e4a-4f5b-9c8d-1a2b3c4d5e6f"


def event(policy: object, **extra: Any) -> dict[str, Any]:
    raw = policy if isinstance(policy, str) else json.dumps(policy)
    return {
        "version": "v1.0",
        "time": "2025-03-01T02:00:00Z",
        "trigger_type": "TIMER",
        "trigger_name": "nightly",
        "user_event": raw,
        **extra,
    }


def parse(ev: dict[str, Any]) -> tuple[list[PlanRequest], list[Rejection]]:
    work = timer.parse(ev, make_settings(), make_runtime())
    assert work.trigger == "timer"
    return list(work.plans), [i for i in work.items if isinstance(i, Rejection)]


@pytest.mark.parametrize(
    ("ev", "match"),
    [
        ({"trigger_type": "TIMER"}, True),
        ({"trigger_type": "timer"}, False),
        ({"trigger_type": "APIG"}, False),
        ({}, False),
        ("TIMER", False),
    ],
)
def test_matches_only_timer_events(ev: object, match: bool) -> None:
    """Only a mapping whose trigger_type is exactly TIMER is a timer event."""
    assert timer.matches(ev) is match


def test_policy_becomes_one_plan_with_the_event_time() -> None:
    """A valid policy is one plan: its selection, template, options and the event's time,
    with reconcile and retention queued after it."""
    policy = {
        "policy": "nightly",
        "select": {"volume_ids": [VOLUME.upper()], "tags": {"backup": "daily"}},
        "image_name": "{policy}-{volume_name}",
        "os_type": "linux",
        "force": True,
        "keep": 3,
    }
    work = timer.parse(event(policy), make_settings(), make_runtime())
    [plan] = work.plans
    assert work.correlation_id == "timer:nightly:2025-03-01T02:00:00Z"
    assert work.tasks == frozenset({"reconcile", "retention"})
    assert plan.policy == "nightly"
    assert plan.template == "{policy}-{volume_name}"
    assert plan.time == datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
    assert plan.volume_ids == (VOLUME,)  # lower-cased, as the API writes IDs
    assert dict(plan.tags) == {"backup": "daily"}
    assert dict(plan.options) == {"force": True, "__os_type": "linux"}
    assert plan.keep == 3


def test_default_template_and_clock_when_the_event_has_no_time() -> None:
    """Without image_name the default template is used; without a time, the runtime's clock."""
    ev = event({"policy": "p", "select": {"server_ids": [SERVER]}})
    del ev["time"]
    [plan], rejected = parse(ev)
    assert rejected == []
    assert plan.template == timer_policy.DEFAULT_TEMPLATE
    assert plan.time == START
    assert plan.server_ids == (SERVER,)


def test_exclude_and_copy_tags_are_carried() -> None:
    """exclude's IDs, tags (string or list) and system_disks, and copy_tags reach the plan."""
    policy = {
        "policy": "p",
        "select": {"volume_ids": [VOLUME, VOLUME_2]},
        "exclude": {"volume_ids": [VOLUME_2], "tags": {"backup": ["off", "never"], "x": "y"}},
        "copy_tags": ["app"],
    }
    [plan], _ = parse(event(policy))
    assert plan.exclude is not None
    assert plan.exclude.volume_ids == frozenset({VOLUME_2})
    assert dict(plan.exclude.tags) == {"backup": ("off", "never"), "x": ("y",)}
    assert plan.copy_tags == ("app",)


@pytest.mark.parametrize(
    ("user_event", "field"),
    [
        (None, "user_event"),
        ({"not": "a string"}, "user_event"),
        ("x" * 4097, "user_event"),
        ("{not json", "user_event"),
        ("[1, 2]", "user_event"),
        (json.dumps({"policy": "p", "select": {}}), "user_event.select"),
        (json.dumps({"policy": "p", "select": {"volume_ids": ["nope"]}}), "user_event.select"),
        (json.dumps({"policy": "bad name!", "select": {"tags": {"a": "b"}}}), "user_event.policy"),
        (
            json.dumps({"policy": "p", "select": {"tags": {"a": "b"}}, "image_name": "{x}"}),
            "user_event.image_name",
        ),
        (
            json.dumps({"policy": "p", "select": {"tags": {"a": "b"}}, "surprise": 1}),
            "user_event.surprise",
        ),
        (
            json.dumps({"policy": "p", "select": {"tags": {"a": "b"}}, "stale_after": "2w"}),
            "user_event.stale_after",
        ),
    ],
)
def test_invalid_policy_is_one_rejection_naming_the_field(user_event: object, field: str) -> None:
    """A user_event that is not a valid policy is one rejection naming where, and no plan."""
    ev = event("") | {"user_event": user_event}
    plans, [rejection] = parse(ev)
    assert plans == []
    assert rejection.error.code == "InvalidInput"
    assert rejection.error.field is not None
    assert rejection.error.field.startswith(field)


def test_unreadable_event_time_is_rejected() -> None:
    """An event time that is no time is a rejection naming ``time``."""
    plans, [rejection] = parse(event({"policy": "p", "select": {"tags": {"a": "b"}}}, time="?"))
    assert plans == []
    assert rejection.error.field == "time"
