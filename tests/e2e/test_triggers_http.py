"""Triggers against the fake cloud served over HTTP on 127.0.0.1: the decommission webhook,
TIMER policies (selection, names, idempotency, validation, request count) and the sample
events in ``events/``, each through ``function.app.handle`` with the clock frozen."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from fakecloud import FakeCloud, ManualClock, RecordedRequest, serve
from function.signatures import verify_slack, verify_standard_webhook
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
    body_of,
    export_posts,
    exported_bodies,
    kinds,
    make_env,
    outcome_events,
    run,
    webhook_event,
)
from tools.samples import (
    SAMPLE_SLACK_SIGNING_SECRET,
    SAMPLE_WEBHOOK_SECRET,
    resign,
    sample_env,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
TIMER_TIME = "2026-11-26T02:00:00+08:00"
DECOMMISSION = {"action": "decommission", "server_id": SERVER}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(autouse=True)
def quiet_log(log_buffer: io.StringIO) -> io.StringIO:
    """The function's JSON log lines go to a buffer (tests/conftest.py resets logging)."""
    return log_buffer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def served(clock: ManualClock) -> Iterator[tuple[FakeCloud, dict[str, str]]]:
    """An empty fake cloud on 127.0.0.1, and the function's environment pointing at it."""
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION, clock=clock)
    with serve(cloud) as server:
        env = make_env()
        for service in ("EVS", "IMS", "ECS", "SMN", "FUNCTIONGRAPH"):
            env[f"{service}_ENDPOINT"] = server.url
        yield cloud, env


def uuid_n(n: int, prefix: str = "5e1ec7ed") -> str:
    return f"{prefix}-0000-4000-8000-{n:012x}"


def timer_event(policy: Mapping[str, Any] | str, time: str = TIMER_TIME) -> dict[str, Any]:
    """A FunctionGraph TIMER event (PLATFORM §2.1) whose user_event holds ``policy``."""
    return {
        "version": "v1.0",
        "time": time,
        "trigger_type": "TIMER",
        "trigger_name": "nightly_backup",
        "user_event": policy if isinstance(policy, str) else json.dumps(policy),
    }


def seed_fleet(cloud: FakeCloud, count: int, tagged: int) -> list[str]:
    """``count`` available volumes vol-00.., the first ``tagged`` tagged backup=daily."""
    ids = []
    for i in range(count):
        tags = {"backup": "daily"} if i < tagged else {"backup": "weekly"}
        cloud.evs.add_volume(uuid_n(i), f"vol-{i:02d}", "available", 10, False, tags=tags)
        ids.append(uuid_n(i))
    return ids


NIGHTLY = {
    "policy": "nightly",
    "select": {"tags": {"backup": "daily"}},
    "image_name": "{volume_name}-{time:%Y%m%d-%H%M}",
}


# -- decommission webhook ------------------------------------------------------------------


def test_decommission_exports_both_disks_then_redelivery_exports_nothing_new(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """A signed decommission exports both disks (forced, deterministic names) with 202; the
    same delivery redelivered with a new timestamp ends in two duplicate skips."""
    cloud, env = served
    add_web01(cloud, tags=["env=demo"])

    response = run(webhook_event(DECOMMISSION, msg_id="msg_decom_web01"), env, clock)
    assert response["statusCode"] == 202
    assert response["headers"]["Content-Type"] == "application/json"
    result = body_of(response)
    assert result["summary"] == {**ZERO, "accepted": 2}
    assert exported_bodies(cloud) == {
        SYSTEM_DISK: {"image_name": "web-01-web-01-system-decom-16d73138c668", "force": True},
        DATA_DISK: {"image_name": "web-01-web-01-logs-decom-16d73138c668", "force": True},
    }
    images = {e["data"]["volume_id"]: e["data"]["image_id"] for e in result["results"]}
    assert set(images.values()) == set(cloud.ims.images)
    for event in result["results"]:
        assert event["specversion"] == "1.0"
        assert event["type"] == "evs.export.accepted"
        assert event["data"]["trigger"] == "webhook"
        assert event["data"]["correlation_id"] == "msg_decom_web01"
        assert event["data"]["policy"] == "decommission"

    clock.advance(5)  # the sender's retry: same webhook-id, fresh timestamp and signature
    again = run(webhook_event(DECOMMISSION, msg_id="msg_decom_web01", now=clock()), env, clock)
    assert again["statusCode"] == 202
    repeat = body_of(again)
    assert repeat["summary"] == {**ZERO, "skipped": 2}
    assert {(e["data"]["reason"], e["data"]["image_id"]) for e in repeat["results"]} == {
        ("duplicate", images[SYSTEM_DISK]),
        ("duplicate", images[DATA_DISK]),
    }
    assert len(export_posts(cloud)) == 2
    assert len(cloud.ims.images) == 2


def test_decommission_with_force_false_and_a_template_sends_them(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """force false and an image_name template are honoured; an in-use disk is then refused
    by EVS and reported rejected, the available one accepted."""
    cloud, env = served
    add_web01(cloud, system=("sys", "in-use", 40), data=("data", "available", 10))
    payload = {**DECOMMISSION, "force": False, "image_name": "last-{disk}-{volume_name}"}
    response = run(webhook_event(payload), env, clock)
    assert response["statusCode"] == 202
    assert kinds(body_of(response)) == sorted([(SYSTEM_DISK, "rejected"), (DATA_DISK, "accepted")])
    assert exported_bodies(cloud) == {
        SYSTEM_DISK: {"image_name": "last-system-sys", "force": False},
        DATA_DISK: {"image_name": "last-data-data", "force": False},
    }


def test_decommission_of_an_unknown_server_is_rejected_naming_it(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """A decommission of a server ECS does not know is 202 with one rejection naming it."""
    cloud, env = served
    response = run(webhook_event(DECOMMISSION), env, clock)
    assert response["statusCode"] == 202
    (event,) = body_of(response)["results"]
    assert event["type"] == "evs.export.rejected"
    assert event["data"]["server_id"] == SERVER
    assert SERVER in event["data"]["error"]["message"]
    assert export_posts(cloud) == []


# -- timer policies ------------------------------------------------------------------------


def test_timer_tag_policy_selects_exactly_the_tagged_then_rerun_is_all_duplicates(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """Of 10 volumes the 4 tagged backup=daily are exported as `<name>-20261126-0200`; the
    same TIMER event again exports nothing new (4 duplicates)."""
    cloud, env = served
    ids = seed_fleet(cloud, 10, 4)
    result = run(timer_event(NIGHTLY), env, clock)
    assert result["summary"] == {**ZERO, "accepted": 4}
    assert exported_bodies(cloud) == {
        ids[i]: {"image_name": f"vol-{i:02d}-20261126-0200"} for i in range(4)
    }
    for event in outcome_events(result):
        assert event["data"]["trigger"] == "timer"
        assert event["data"]["policy"] == "nightly"
        assert event["data"]["correlation_id"] == f"timer:nightly_backup:{TIMER_TIME}"

    clock.advance(60)
    again = run(timer_event(NIGHTLY), env, clock)
    assert again["summary"] == {**ZERO, "skipped": 4}
    assert {e["data"]["reason"] for e in outcome_events(again)} == {"duplicate"}
    assert len(export_posts(cloud)) == 4
    assert len(cloud.ims.images) == 4


def test_timer_next_night_exports_again(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """The next night's event renders new names, so the tagged volumes are exported again."""
    cloud, env = served
    seed_fleet(cloud, 3, 3)
    run(timer_event(NIGHTLY), env, clock)
    clock.advance(86_400)
    result = run(timer_event(NIGHTLY, "2026-11-27T02:00:00+08:00"), env, clock)
    assert result["summary"] == {**ZERO, "accepted": 3}
    assert {e["data"]["image_name"] for e in outcome_events(result)} == {
        f"vol-{i:02d}-20261127-0200" for i in range(3)
    }


def test_timer_union_of_ids_tags_and_servers_exports_each_volume_once(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """volume_ids, tags and server_ids that overlap select each volume exactly once."""
    cloud, env = served
    ids = seed_fleet(cloud, 6, 3)  # 0, 1, 2 tagged daily
    cloud.ecs.add_server(SERVER, "web-01")
    for n, device in ((1, "/dev/vdb"), (4, "/dev/vdc")):  # vol 1 (tagged) and 4 on the server
        volume = cloud.evs.volumes[ids[n]]
        volume.status = "in-use"
        volume.attachments = [{"server_id": SERVER, "device": device}]
    policy = {
        "policy": "union",
        "select": {
            "volume_ids": [ids[0], ids[4], ids[5], ids[5]],
            "tags": {"backup": "daily"},
            "server_ids": [SERVER],
        },
        "force": True,
    }
    result = run(timer_event(policy), env, clock)
    assert result["summary"] == {**ZERO, "accepted": 5}
    selected = [e["data"]["volume_id"] for e in outcome_events(result)]
    assert sorted(selected) == sorted([ids[0], ids[1], ids[2], ids[4], ids[5]])
    posts = export_posts(cloud)
    assert len(posts) == 5
    assert len({p.path for p in posts}) == 5
    assert exported_bodies(cloud)[ids[4]] == {
        "image_name": "union-vol-04-20261126-0200",
        "force": True,
    }


def test_timer_dry_run_skips_every_selected_volume_and_sends_no_export(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """dry_run reports every selected volume skipped/dry_run and sends no export POST."""
    cloud, env = served
    ids = seed_fleet(cloud, 10, 4)
    result = run(timer_event({**NIGHTLY, "dry_run": True}), env, clock)
    assert result["summary"] == {**ZERO, "skipped": 4}
    assert sorted(
        (e["data"]["volume_id"], e["data"]["reason"], e["data"]["image_name"])
        for e in outcome_events(result)
    ) == [(ids[i], "dry_run", f"vol-{i:02d}-20261126-0200") for i in range(4)]
    assert export_posts(cloud) == []
    assert cloud.ims.images == {}


def test_timer_skips_a_volume_already_uploading_as_busy(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """A selected volume in `uploading` is skipped busy and not sent; the others go out."""
    cloud, env = served
    ids = seed_fleet(cloud, 4, 4)
    cloud.evs.volumes[ids[2]].status = "uploading"
    result = run(timer_event(NIGHTLY), env, clock)
    assert result["summary"] == {**ZERO, "accepted": 3, "skipped": 1}
    (busy,) = [e for e in outcome_events(result) if e["type"] == "evs.export.skipped"]
    assert busy["data"]["volume_id"] == ids[2]
    assert busy["data"]["reason"] == "busy"
    assert ids[2] not in exported_bodies(cloud)
    assert len(export_posts(cloud)) == 3


def test_timer_replaces_unsafe_characters_in_names(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """Characters the naming rules forbid become '-' (runs collapsed; spaces are allowed)."""
    cloud, env = served
    cloud.evs.add_volume(uuid_n(1), "db/prod:main#1 (old)", tags={"backup": "daily"})
    cloud.evs.add_volume(uuid_n(2), "数据盘_α", tags={"backup": "daily"})
    result = run(timer_event(NIGHTLY), env, clock)
    assert result["summary"] == {**ZERO, "accepted": 2}
    assert exported_bodies(cloud) == {
        uuid_n(1): {"image_name": "db-prod-main-1 -old-20261126-0200"},
        uuid_n(2): {"image_name": "数据盘_-20261126-0200"},
    }


def test_timer_long_and_colliding_names_are_cut_to_128_and_unique(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """Long rendered names are cut to 128; volumes whose names collide get distinct names."""
    cloud, env = served
    long_name = "archive-" + "x" * 190
    cloud.evs.add_volume(uuid_n(1, "aaaaaaaa"), long_name, tags={"backup": "daily"})
    cloud.evs.add_volume(uuid_n(2, "bbbbbbbb"), long_name, tags={"backup": "daily"})
    cloud.evs.add_volume(uuid_n(3, "cccccccc"), "data", tags={"backup": "daily"})
    cloud.evs.add_volume(uuid_n(4, "dddddddd"), "data", tags={"backup": "daily"})
    cloud.evs.add_volume(uuid_n(5, "eeeeeeee"), "x" * 128, tags={"backup": "daily"})
    result = run(timer_event({**NIGHTLY, "image_name": "{volume_name}"}), env, clock)
    assert result["summary"] == {**ZERO, "accepted": 5}
    names = {v: body["image_name"] for v, body in exported_bodies(cloud).items()}
    assert len(set(names.values())) == 5
    assert all(1 <= len(n) <= 128 for n in names.values())
    assert names[uuid_n(1, "aaaaaaaa")] == long_name[:119] + "-aaaaaaaa"
    assert names[uuid_n(2, "bbbbbbbb")] == long_name[:119] + "-bbbbbbbb"
    assert names[uuid_n(3, "cccccccc")] == "data-cccccccc"
    assert names[uuid_n(5, "eeeeeeee")] == "x" * 128


def test_timer_made_unique_names_do_not_collide_with_another_volumes_name(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """When two volumes named `data` get `data-<id prefix>`, a third volume already named
    `data-<that prefix>` must still end with a name of its own."""
    cloud, env = served
    cloud.evs.add_volume(uuid_n(1, "aaaaaaaa"), "data", tags={"backup": "daily"})
    cloud.evs.add_volume(uuid_n(2, "bbbbbbbb"), "data", tags={"backup": "daily"})
    cloud.evs.add_volume(uuid_n(3, "cccccccc"), "data-aaaaaaaa", tags={"backup": "daily"})
    result = run(timer_event({**NIGHTLY, "image_name": "{volume_name}"}), env, clock)
    names = [e["data"]["image_name"] for e in outcome_events(result)]
    assert len(names) == 3
    assert len(set(names)) == 3, names


@pytest.mark.parametrize(
    ("user_event", "field"),
    [
        ("{not json", "user_event"),
        ('["nightly"]', "user_event"),
        ('"nightly"', "user_event"),
        (json.dumps({**NIGHTLY, "colour": "red"}), "user_event.colour"),
        (json.dumps({**NIGHTLY, "disk_format": "iso"}), "user_event.disk_format"),
        (json.dumps({**NIGHTLY, "image_name": "{foo}-{volume_name}"}), "user_event.image_name"),
        (json.dumps({**NIGHTLY, "select": {}}), "user_event.select"),
        (json.dumps({**NIGHTLY, "select": {"volumes": ["x"]}}), "user_event.select.volumes"),
        (json.dumps({**NIGHTLY, "keep": 0}), "user_event.keep"),
        (json.dumps({**NIGHTLY, "keep": "7"}), "user_event.keep"),
        (json.dumps({**NIGHTLY, "force": "yes"}), "user_event.force"),
        (json.dumps({**NIGHTLY, "policy": "night ly"}), "user_event.policy"),
        (json.dumps({"select": {"tags": {"a": "b"}}}), "user_event.policy"),
        (
            json.dumps({**NIGHTLY, "select": {"volume_ids": [uuid_n(1), "vol-01"]}}),
            "user_event.select.volume_ids",
        ),
        (
            json.dumps({**NIGHTLY, "select": {"server_ids": ["web-01"]}}),
            "user_event.select.server_ids",
        ),
    ],
    ids=[
        "not-json",
        "json-array",
        "json-string",
        "unknown-key",
        "bad-disk-format",
        "unknown-template-field",
        "select-empty",
        "select-unknown-key",
        "keep-0",
        "keep-string",
        "force-string",
        "bad-policy-name",
        "policy-missing",
        "non-uuid-volume",
        "non-uuid-server",
    ],
)
def test_timer_invalid_policy_is_rejected_naming_the_field(
    user_event: str, field: str, served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """An invalid policy is one rejection whose error names the field; nothing is sent."""
    cloud, env = served
    seed_fleet(cloud, 2, 2)
    result = run(timer_event(user_event), env, clock)
    assert result["summary"] == {**ZERO, "rejected": 1}
    (event,) = result["results"]
    assert event["type"] == "evs.export.rejected"
    error = event["data"]["error"]
    assert error["field"] == field
    assert error["message"]
    assert cloud.requests == []


def test_timer_user_event_that_is_not_a_string_is_rejected(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """user_event given as an object (not the JSON string FunctionGraph sends) is rejected."""
    cloud, env = served
    event: dict[str, Any] = {**timer_event(NIGHTLY), "user_event": NIGHTLY}
    result = run(event, env, clock)
    assert result["results"][0]["data"]["error"]["field"] == "user_event"
    assert cloud.requests == []


def count_by_kind(requests: list[RecordedRequest]) -> dict[str, int]:
    """Requests per ``METHOD path``, with the project and resource IDs generalised."""
    counts: dict[str, int] = {}
    for req in requests:
        path = UUID_RE.sub("{id}", req.path.replace(PROJECT, "{project}"))
        key = f"{req.method} {path}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_timer_100_volume_policy_request_count_per_volume(
    served: tuple[FakeCloud, dict[str, str]], clock: ManualClock
) -> None:
    """A 100-volume tag policy costs about two requests per volume: one export and one
    provenance tag write each, plus a few listings shared by the whole run; the report of
    each finished image later costs one more write, in the run that sees it finished."""
    cloud, env = served
    seed_fleet(cloud, 100, 100)
    cloud.set_progress("duration", after=600)  # as in IMS: an export takes minutes
    result = run(timer_event(NIGHTLY), env, clock)
    assert result["summary"] == {**ZERO, "accepted": 100}
    per_kind = count_by_kind(cloud.requests)
    per_volume = len(cloud.requests) / 100
    print(f"\n100-volume tag policy: {len(cloud.requests)} requests, {per_volume:.2f} per volume")
    for key, count in sorted(per_kind.items()):
        print(f"  {count:4d}  {key}")
    assert per_kind["POST /v2/{project}/volumes/{id}/action"] == 100
    assert per_kind["POST /v2/{project}/cloudvolumes/resource_instances/action"] == 1
    assert per_kind["GET /v2/cloudimages"] == 1
    assert per_volume <= 2.1

    clock.advance(600)  # the images are active now; the next check reports each one once
    before = len(cloud.requests)
    report = run({"action": "reconcile"}, env, clock)
    completed = [e for e in report["results"] if e["type"] == "evs.export.completed"]
    assert len(completed) == 100
    later = count_by_kind(cloud.requests[before:])
    print(f"reconcile after completion: {len(cloud.requests) - before} requests")
    for key, count in sorted(later.items()):
        print(f"  {count:4d}  {key}")
    assert (len(cloud.requests) - before) / 100 <= 1.1


# -- the sample events ---------------------------------------------------------------------


def load(name: str) -> dict[str, Any]:
    data = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


DEMO_SEED = Path(__file__).resolve().parents[2] / "tools" / "demo_seed.json"


def demo_seed() -> dict[str, Any]:
    data = json.loads(DEMO_SEED.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def seeded(cloud: FakeCloud) -> None:
    cloud.load_seed(demo_seed())


def sample_run_env(env: Mapping[str, str]) -> dict[str, str]:
    return {**env, **sample_env()}


def test_sample_webhook_and_slack_verify_at_their_own_timestamp() -> None:
    """events/webhook.json and events/slack.json carry valid signatures for the sample
    secrets at their own timestamps."""
    webhook = load("webhook.json")
    headers = webhook["headers"]
    body = str(webhook["body"]).encode()
    assert webhook["isBase64Encoded"] is False
    ts = int(headers["webhook-timestamp"])
    verify_standard_webhook(body, headers, [SAMPLE_WEBHOOK_SECRET], ts)
    assert json.loads(body)["server_id"] == demo_seed()["servers"][0]["id"]

    slack = load("slack.json")
    raw = base64.b64decode(slack["body"]) if slack["isBase64Encoded"] else slack["body"].encode()
    stamp = int(slack["headers"]["x-slack-request-timestamp"])
    verify_slack(raw, slack["headers"], SAMPLE_SLACK_SIGNING_SECRET, stamp)


def test_resign_refreshes_signatures_and_leaves_other_events_alone() -> None:
    """resign() gives the APIG samples valid signatures at a new time and copies the rest."""
    now = int(NOW.timestamp()) + 3600
    for name in ("webhook.json", "slack.json"):
        original = load(name)
        fresh = resign(original, now)
        assert fresh is not original
        assert fresh["body"] == original["body"]
        assert fresh != original
        assert load(name) == original  # the input is not changed
    webhook = resign(load("webhook.json"), now)
    assert webhook["headers"]["webhook-timestamp"] == str(now)
    assert webhook["headers"]["webhook-id"] == load("webhook.json")["headers"]["webhook-id"]
    body = str(webhook["body"]).encode()
    verify_standard_webhook(body, webhook["headers"], [SAMPLE_WEBHOOK_SECRET], now)
    for name in ("timer.json", "cts.json", "direct.json"):
        if (EVENTS / name).exists():
            assert resign(load(name), now) == load(name)


@pytest.mark.parametrize(
    ("name", "summary"),
    [
        ("timer.json", {**ZERO, "accepted": 3}),
        ("cts.json", {**ZERO, "accepted": 2}),
        ("webhook.json", {**ZERO, "accepted": 2}),
        ("slack.json", None),
    ],
)
def test_sample_event_runs_against_the_seed(
    name: str,
    summary: dict[str, int] | None,
    served: tuple[FakeCloud, dict[str, str]],
    clock: ManualClock,
) -> None:
    """Each trigger sample in events/, re-signed for now, does what it shows on the seed."""
    cloud, env = served
    seeded(cloud)
    event = resign(load(name), int(clock().timestamp()))
    result = run(event, sample_run_env(env), clock)
    if name == "webhook.json":
        assert result["statusCode"] == 202
        result = body_of(result)
    if name == "slack.json":
        assert result["statusCode"] == 200
        message = body_of(result)
        assert message["response_type"] == "ephemeral"
        assert "1 accepted" in message["text"]
        ((volume_id, body),) = exported_bodies(cloud).items()
        assert volume_id in {v["id"] for v in demo_seed()["volumes"]}
        assert set(body) > {"image_name"}
        return
    assert result["summary"] == summary
