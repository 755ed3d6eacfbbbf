"""The three trigger stories of issue 3 end to end: ``handler.handler`` (real clock, settings
from the environment, as FunctionGraph calls it) against the fake cloud's HTTP server."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import pytest

import handler
from fakecloud import FakeCloud, serve
from function.signatures import sign_slack, standard_webhook_headers

AK, SK = "AKHANDLERHTTP", "SKHANDLERHTTP"
PROJECT = "0123456789abcdef0123456789abcdef"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SERVER = "b6d1f0c2-3e4a-4f5b-9c8d-1a2b3c4d5e6f"
SYSTEM, DATA = "0f4c7e2a-9b1d-4c3e-8a6f-2d5b7c9e1a34", "7a2e9d41-5c83-4f6b-b1e0-93d8c4a5f267"


def vid(n: int) -> str:
    return f"5e1ec7ed-0000-4000-8000-{n:012x}"


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloud]:
    """A fake cloud on 127.0.0.1 and the function's environment pointing at it."""
    fake = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region="cn-north-4")
    with serve(fake) as server:
        env = {
            "REGION": "cn-north-4",
            "PROJECT_ID": PROJECT,
            "HUAWEICLOUD_SDK_AK": AK,
            "HUAWEICLOUD_SDK_SK": SK,
            "WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "SLACK_SIGNING_SECRET": SLACK_SECRET,
            "CHAT_ALLOWED_USERS": "U2CERLKJA",
            "MAX_REQUESTS_PER_SECOND": "1000",
            **{f"{s}_ENDPOINT": server.url for s in ("EVS", "IMS", "ECS", "SMN", "FUNCTIONGRAPH")},
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield fake


def apig(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "httpMethod": "POST",
        "path": "/evs-export",
        "requestContext": {"requestId": "apig-req-1"},
        "headers": headers,
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def export_bodies(cloud: FakeCloud) -> dict[str, dict[str, Any]]:
    """Volume ID -> the ``os-volume_upload_image`` object of each export the fake accepted."""
    out = {}
    for req in cloud.requests:
        export = req.method == "POST" and "/volumes/" in req.path and req.path.endswith("/action")
        if export and req.status == 202:
            out[req.path.split("/")[-2]] = json.loads(req.body)["os-volume_upload_image"]
    return out


def test_timer_tag_policy_selects_exactly_the_tagged_volumes_with_rendered_names(
    cloud: FakeCloud,
) -> None:
    """A TIMER policy by tag exports exactly the tagged volumes, under names rendered from the
    template with the trigger's time."""
    for n in range(6):
        tags = {"backup": "daily"} if n % 2 == 0 else {"backup": "never"}
        cloud.evs.add_volume(id=vid(n), name=f"db {n}/data", tags=tags)
    policy = {
        "policy": "nightly",
        "select": {"tags": {"backup": "daily"}},
        "image_name": "{policy}-{volume_name}-{time:%Y%m%d-%H%M}",
        "disk_format": "qcow2",
    }
    event = {
        "version": "v1.0",
        "time": "2026-11-26T02:00:00+08:00",
        "trigger_type": "TIMER",
        "trigger_name": "nightly",
        "user_event": json.dumps(policy),
    }
    result = handler.handler(event, None)
    assert result["summary"] == {"accepted": 3, "rejected": 0, "failed": 0, "skipped": 0}
    assert export_bodies(cloud) == {
        vid(n): {"image_name": f"nightly-db {n}-data-20261126-0200", "disk_format": "qcow2"}
        for n in (0, 2, 4)
    }


def test_decommission_webhook_exports_both_disks_of_the_server(cloud: FakeCloud) -> None:
    """A signed decommission notice exports both disks of the server, forced, and answers 202
    with one accepted event per disk."""
    cloud.ecs.add_server(id=SERVER, name="web-01")
    for volume, name, device in ((SYSTEM, "system", "/dev/vda"), (DATA, "logs", "/dev/vdb")):
        cloud.evs.add_volume(
            id=volume,
            name=name,
            status="in-use",
            bootable=device == "/dev/vda",
            attachments=[{"server_id": SERVER, "device": device}],
        )
    body = json.dumps({"action": "decommission", "server_id": SERVER}).encode()
    headers = standard_webhook_headers(WEBHOOK_SECRET, "msg_decom_1", int(time.time()), body)
    response = handler.handler(apig(body, {"content-type": "application/json", **headers}), None)
    assert response["statusCode"] == 202
    result = json.loads(response["body"])
    assert sorted(e["subject"] for e in result["results"]) == sorted([SYSTEM, DATA])
    assert {e["type"] for e in result["results"]} == {"evs.export.accepted"}
    sent = export_bodies(cloud)
    assert set(sent) == {SYSTEM, DATA}
    assert all(b["force"] is True and "-decom-" in b["image_name"] for b in sent.values())


def test_slack_command_from_an_allowed_user_exports_with_the_typed_options(
    cloud: FakeCloud,
) -> None:
    """A signed slash command from an allowed user exports with exactly the typed options and
    the ephemeral reply names the new image's ID."""
    cloud.evs.add_volume(id=vid(9), name="app-data")
    text = f'{vid(9)} name="nightly db" format=qcow2 container=bare os=linux'
    form = urlencode(
        {
            "team_id": "T1DC2JH3J",
            "channel_id": "G8PSS9T3V",
            "user_id": "U2CERLKJA",
            "command": "/evs-export",
            "text": text,
            "response_url": "https://hooks.slack.com/commands/T1/1/x",
            "trigger_id": "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        }
    ).encode()
    now = int(datetime.now(timezone.utc).timestamp())
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": str(now),
        "x-slack-signature": sign_slack(SLACK_SECRET, now, form),
    }
    response = handler.handler(apig(form, headers), None)
    assert response["statusCode"] == 200
    reply = json.loads(response["body"])
    assert reply["response_type"] == "ephemeral"
    assert export_bodies(cloud) == {
        vid(9): {
            "image_name": "nightly db",
            "disk_format": "qcow2",
            "container_format": "bare",
            "__os_type": "linux",
        }
    }
    [image] = cloud.ims.images.values()
    assert image.id in json.dumps(reply)
