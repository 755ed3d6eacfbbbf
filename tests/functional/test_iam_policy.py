"""The least-privilege policy ``deploy/iam-policy.json`` against the fake cloud with IAM
enforced (PLATFORM.md 10.6): every trigger path, the life cycle, SMN delivery and the
hand-off run without a 403, and each action is needed: without it the path that uses it fails
with a result naming the action."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fakecloud import FakeCloud, ManualClock, mock_cloud
from function import app
from function.config import Settings
from tests.functional.conftest import budget_runtime
from tests.functional.test_triggers import (
    DATA_DISK,
    LOOSE_VOLUME,
    NOW,
    PROJECT,
    REGION,
    SERVER,
    SYSTEM_DISK,
    cts_event,
    make_env,
    new_cloud,
    slack_event,
    slack_form,
    webhook_event,
)

POLICY_FILE = Path(__file__).resolve().parents[2] / "deploy" / "iam-policy.json"
TOPIC = f"urn:smn:{REGION}:{PROJECT}:evs_export_results"
OLD_IMAGE = "0ld1ma6e-0000-4000-8000-000000000003".replace("0ld1ma6e", "01d1aa6e")
EXTRA = [f"5{n}369c5d-384d-4e64-b37a-56d898769362" for n in range(4)]
TARGET = "cn-east-3"
TARGET_PROJECT = "fedcba9876543210fedcba9876543210"
SHARE_PROJECT = "abcdef0123456789abcdef0123456789"
# A policy that copies its newest image to cn-east-3 and shares its images: the first run
# starts the replication and shares, the second follows the job and tags the copy there.
DR_POLICY = {
    "policy": "nightly",
    "select": {"volume_ids": [LOOSE_VOLUME]},
    "copies": [{"region": TARGET, "project_id": TARGET_PROJECT, "keep": 1}],
    "share_with": [SHARE_PROJECT],
}


def load_policy() -> dict[str, Any]:
    data = json.loads(POLICY_FILE.read_text())
    assert isinstance(data, dict)
    return data


def actions(policy: dict[str, Any]) -> list[str]:
    [statement] = policy["Statement"]
    listed = statement["Action"]
    assert isinstance(listed, list)
    return [str(a) for a in listed]


def without(policy: dict[str, Any], action: str) -> dict[str, Any]:
    kept = [a for a in actions(policy) if a != action]
    return {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": kept}]}


def seeded(clock: ManualClock) -> FakeCloud:
    """web-01 (stopped, tagged for CTS) with two disks, a loose tagged volume, four more
    volumes (a selection of more than three is listed, not read one by one) and an old
    image of the nightly policy that retention removes."""
    cloud = new_cloud(clock)
    cloud.add_region(TARGET, TARGET_PROJECT)
    for n, volume_id in enumerate(EXTRA):
        cloud.evs.add_volume(volume_id, f"bulk-{n}", "available", 10, tags={"backup": "bulk"})
    cloud.evs._volumes[LOOSE_VOLUME].tags["backup"] = "daily"
    for days in (3, 2):
        cloud.ims.add_image(
            id=OLD_IMAGE if days == 3 else None,
            name=f"nightly-old-{days}",
            status="active",
            created_at=NOW - timedelta(days=days),
            tags={
                "evs-export": "managed",
                "evs-export-volume": LOOSE_VOLUME,
                "evs-export-policy": "nightly",
                "evs-export-started": str(int((NOW - timedelta(days=days)).timestamp())),
                "evs-export-reported": "completed",
            },
        )
    return cloud


def timer(policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "v1.0",
        "time": NOW.isoformat().replace("+00:00", "Z"),
        "trigger_type": "TIMER",
        "trigger_name": "nightly-timer",
        "user_event": json.dumps(policy),
    }


def every_path() -> list[tuple[str, object, float]]:
    """(name, event, budget in seconds) for every path that sends requests."""
    return [
        (
            "direct",
            {"volume_id": SYSTEM_DISK, "os-volume_upload_image": {"image_name": "direct-1"}},
            900,
        ),
        (
            "timer-ids-tags-servers-keep",
            timer(
                {
                    "policy": "nightly",
                    "select": {
                        "volume_ids": [DATA_DISK],
                        "tags": {"backup": "daily"},
                        "server_ids": [SERVER],
                    },
                    "image_name": "{volume_name}-{time:%Y%m%d}",
                    "force": True,
                    "keep": 1,
                }
            ),
            900,
        ),
        (
            "timer-listing",
            timer({"policy": "bulk", "select": {"volume_ids": EXTRA}}),
            900,
        ),
        (
            "webhook-decommission",
            webhook_event({"action": "decommission", "server_id": SERVER, "force": True}),
            900,
        ),
        ("slack-volume", slack_event(slack_form(f"{LOOSE_VOLUME} force")), 900),
        ("slack-server", slack_event(slack_form(f"server {SERVER} force")), 900),
        ("slack-status", slack_event(slack_form(f"status {OLD_IMAGE}")), 900),
        ("cts", cts_event(time=int(NOW.timestamp() * 1000) + 5000), 900),
        ("reconcile", {"action": "reconcile"}, 900),
        ("timer-copies-share", timer(DR_POLICY), 900),
        ("timer-copies-follow", timer(DR_POLICY), 900),
        (
            "hand-off",
            {
                "exports": [
                    {"volume_id": v, "os-volume_upload_image": {"image_name": f"late-{n}"}}
                    for n, v in enumerate(EXTRA)
                ]
            },
            9,
        ),
    ]


def run_all(policy: dict[str, Any] | None) -> tuple[FakeCloud, list[dict[str, Any]]]:
    """Every path in order against one seeded fake with ``policy`` enforced."""
    clock = ManualClock(NOW)
    cloud = seeded(clock)
    cloud.set_iam_policy(policy)
    env = make_env(RESULT_SMN_TOPIC_URN=TOPIC)
    results: list[dict[str, Any]] = []
    with mock_cloud(cloud):
        for _name, event, budget in every_path():
            runtime = budget_runtime(clock, budget)
            results.append(app.handle(event, Settings.from_env(env), runtime))
            clock.advance(1)
    return cloud, results


def denied(cloud: FakeCloud) -> list[str]:
    return [f"{r.method} {r.path}" for r in cloud.requests if r.status == 403]


@pytest.fixture(scope="module")
def full_run() -> Iterator[tuple[FakeCloud, list[dict[str, Any]]]]:
    yield run_all(load_policy())


def test_policy_file_is_one_allow_statement_of_exact_actions() -> None:
    """The shipped policy is IAM custom-policy JSON: Version 1.1, one Allow statement listing
    exact actions, each once, no wildcards."""
    policy = load_policy()
    assert policy["Version"] == "1.1"
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Allow"
    listed = actions(policy)
    assert len(listed) == len(set(listed))
    assert all("*" not in a and a.count(":") == 2 for a in listed)


def test_every_path_runs_with_the_policy_without_a_403(
    full_run: tuple[FakeCloud, list[dict[str, Any]]],
) -> None:
    """With only the shipped policy allowed, no request of any path is denied, and every path
    did its work (exports, deletions, SMN messages, hand-offs)."""
    cloud, results = full_run
    assert denied(cloud) == []
    assert "Policy doesn't allow" not in json.dumps(results)
    paths = {r.path for r in cloud.requests}
    assert any(p.endswith("/publish") for p in paths), "SMN delivery ran"
    assert any(p.endswith("/invocations-async") for p in paths), "a hand-off ran"
    assert any(r.method == "DELETE" for r in cloud.requests), "retention ran"
    assert cloud.smn.messages
    assert any(p.endswith("/cross_region_copy") for p in paths), "a replication started"
    assert any("/jobs/" in p for p in paths), "a replication job was followed"
    assert any(p == "/v1/cloudimages/members" for p in paths), "images were shared"
    text = json.dumps(results)
    assert '"evs.copy.started"' in text and '"evs.copy.completed"' in text


@pytest.mark.parametrize("action", actions(load_policy()))
def test_each_action_is_needed_and_its_absence_is_named(action: str) -> None:
    """Without one action, some request is denied and a result names the missing action."""
    cloud, results = run_all(without(load_policy(), action))
    assert denied(cloud), f"nothing needed {action}"
    text = json.dumps(results)
    assert f"Policy doesn't allow {action} to be performed." in text
