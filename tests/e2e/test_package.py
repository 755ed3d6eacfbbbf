"""The deployment zip leaves out distributions the function never imports: prove it by
running every trigger path in a fresh interpreter with those modules blocked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tools.package import UNUSED_TOPS, unused

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import base64, io, json, sys, time
from fakecloud import mock_cloud
import responses  # the fake and its mock load what they like first; the function may not

BLOCKED = json.loads(sys.argv[1])
for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
for name in BLOCKED:
    sys.modules[name] = None  # any import of it now raises ImportError

from function import log
from function.app import invoke
from function.signatures import sign_slack, standard_webhook_headers

log.use_stream(io.StringIO())
PID = "0123456789abcdef0123456789abcdef"
SERVER = "aaaaaaaa-0000-4000-8000-000000000001"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
env = {
    "REGION": "cn-north-4", "PROJECT_ID": PID, "HUAWEICLOUD_SDK_AK": "AKTEST",
    "HUAWEICLOUD_SDK_SK": "SKTEST", "WEBHOOK_SECRETS": SECRET, "SLACK_SIGNING_SECRET": "s3cret",
    "CHAT_ALLOWED_USERS": "U1", "RESULT_WEBHOOK_URL": "https://hooks.example.test/r",
    "RESULT_WEBHOOK_SECRET": SECRET, "MAX_REQUESTS_PER_SECOND": "1000",
    "RESULT_SMN_TOPIC_URN": f"urn:smn:cn-north-4:{PID}:results",
}


def apig(body, headers):
    return {"httpMethod": "POST", "path": "/", "requestContext": {}, "headers": headers,
            "body": base64.b64encode(body).decode(), "isBase64Encoded": True}


kinds = []
mock = mock_cloud(ak="AKTEST", sk="SKTEST", project_id=PID)
with mock as cloud:
    mock.responses.add(responses.POST, "https://hooks.example.test/r", status=200)
    mock.responses.add(responses.POST, "https://hooks.slack.com/x", status=200)
    cloud.ecs.add_server(id=SERVER, name="web", tags=["evs-export=on-stop"], status="SHUTOFF")
    for i, status in enumerate(["in-use", "in-use", "available"]):
        cloud.evs.add_volume(
            id=f"11111111-0000-4000-8000-00000000000{i}", name=f"v{i}", status=status,
            tags={"backup": "daily"},
            attachments=[{"server_id": SERVER, "device": f"/dev/vd{'abc'[i]}"}] if i < 2 else [],
        )
    now = int(time.time())
    body = json.dumps({"action": "decommission", "server_id": SERVER}).encode()
    form = (b"team_id=T&channel_id=C&user_id=U1&command=%2Fevs-export&response_url="
            b"https%3A%2F%2Fhooks.slack.com%2Fx&text=11111111-0000-4000-8000-000000000002+force")
    events = [
        {"volume_id": "11111111-0000-4000-8000-000000000002",
         "os-volume_upload_image": {"image_name": "direct-one"}},
        {"trigger_type": "TIMER", "time": "2026-11-26T02:00:00+08:00", "trigger_name": "t",
         "user_event": json.dumps({"policy": "p", "select": {"tags": {"backup": "daily"}},
                                   "force": True, "keep": 1})},
        apig(body, {"content-type": "application/json",
                    **standard_webhook_headers(SECRET, "msg_1", now, body)}),
        apig(form, {"content-type": "application/x-www-form-urlencoded",
                    "x-slack-request-timestamp": str(now),
                    "x-slack-signature": sign_slack("s3cret", now, form)}),
        {"cts": {"trace_name": "stopServer", "service_type": "ECS", "resource_id": SERVER,
                 "time": now * 1000}},
        {"action": "reconcile"},
    ]
    for event in events:
        result = invoke(event, None, env=env)
        if "statusCode" in result:
            kinds.append(result["statusCode"])
            result = json.loads(result["body"]) if result["body"].startswith("{") else {}
        failed = result.get("deliveries", {}).get("failed")
        if failed:
            raise SystemExit(f"deliveries failed: {failed}")
        for ev in result.get("results", []):
            if ev.get("data", {}).get("error", {}).get("code") == "InternalError":
                raise SystemExit(f"crashed: {ev}")
            kinds.append(ev["type"])
loaded = sorted(n for n in BLOCKED if sys.modules.get(n) is not None)
print(json.dumps({"kinds": kinds, "loaded": loaded}))
"""


def test_every_trigger_path_runs_without_the_distributions_left_out_of_the_zip() -> None:
    """Direct, timer (with reconcile and retention), webhook, Slack, CTS and reconcile events,
    with result webhook and SMN delivery, all run with the pruned packages unimportable."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(list(UNUSED_TOPS))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    kinds = report["kinds"]
    assert kinds.count("evs.export.accepted") >= 5, kinds
    assert 202 in kinds and 200 in kinds
    assert not any(k in ("evs.export.failed", "evs.export.rejected") for k in kinds), kinds


def test_pruned_entries_and_their_metadata_are_recognised() -> None:
    """The packaging rule leaves out the unused packages and their dist-info, nothing else."""
    assert unused("pymongo") and unused("bson") and unused("yaml") and unused("dns")
    assert unused("PyYAML-6.0.4.dist-info") and unused("dnspython-2.9.2.dist-info")
    assert not unused("requests") and not unused("pydantic") and not unused("simplejson")
    assert not unused("huaweicloudsdkcore-3.1.219.dist-info")
