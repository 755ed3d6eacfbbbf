"""IAM enforcement (PLATFORM.md 10.6): one action per route, custom policies, 403 per service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from fakecloud import FakeCloud, serve
from fakecloud.base import Handler, Route
from fakecloud.core import SERVICES
from fakecloud.iam import ACTIONS, Policy
from tests.contract.conftest import AK, PROJECT, REGION, SK, Client

ROOT = Path(__file__).resolve().parents[2]
TOPIC = f"urn:smn:{REGION}:{PROJECT}:topic-1"
FUNCTION = f"urn:fss:{REGION}:{PROJECT}:function:default:f:latest"

# PLATFORM.md 10.6: the actions a least-privilege agency policy needs, one per API used.
DOCUMENTED = {
    "evs:volumes:uploadImage",
    "evs:volumes:get",
    "evs:volumes:list",
    "evs:volumeTags:get",
    "ecs:cloudServers:get",
    "ecs:cloudServers:listServerVolumeAttachments",
    "ims:images:list",
    "ims:images:get",
    "ims:images:update",
    "ims:images:delete",
    "smn:topic:publish",
    "functiongraph:function:invokeAsync",
    # Issue 12 (PLATFORM.md 10.8): replication [C ims_03_0628], sharing [C IMS action table],
    # and the IMS job action [C for GET /v1/cloudimages/job/{id}; reused for the older route].
    "ims:images:copy",
    "ims:images:share",
    "ims:imageJobs:getPercentage",
}
TARGET, TARGET_PROJECT = "cn-east-3", "fedcba9876543210fedcba9876543210"


def policy(*statements: tuple[str, list[str]]) -> dict[str, Any]:
    """A custom policy document from (Effect, Actions) pairs."""
    return {
        "Version": "1.1",
        "Statement": [{"Effect": effect, "Action": actions} for effect, actions in statements],
    }


ALLOW_ALL = policy(("Allow", ["*:*:*"]))


@dataclass(frozen=True)
class Call:
    """One sample request for a route, its status when allowed, and the action PLATFORM.md
    10.6 (and the brief of issue 8) assigns to it, written out independently of fakecloud.iam."""

    service: str
    method: str
    path: str
    body: Any
    ok: int
    action: str


def _route_calls() -> dict[Handler, Call]:
    from fakecloud import ecs, evs, functiongraph, ims, smn
    from fakecloud.ims import copy_routes as imscopy

    p = PROJECT
    tag_query = {"action": "filter", "tags": [{"key": "k", "values": []}]}
    return {
        evs.export_volume: Call(
            "evs",
            "POST",
            f"/v2/{p}/volumes/vol-1/action",
            {"os-volume_upload_image": {"image_name": "new"}},
            202,
            "evs:volumes:uploadImage",
        ),
        evs.show_volume: Call(
            "evs", "GET", f"/v2/{p}/cloudvolumes/vol-1", None, 200, "evs:volumes:get"
        ),
        evs.list_volumes: Call(
            "evs", "GET", f"/v2/{p}/cloudvolumes/detail", None, 200, "evs:volumes:list"
        ),
        evs.filter_volumes: Call(
            "evs",
            "POST",
            f"/v2/{p}/cloudvolumes/resource_instances/action",
            tag_query,
            200,
            "evs:volumeTags:get",
        ),
        ecs.show_server: Call(
            "ecs", "GET", f"/v1/{p}/cloudservers/srv-1", None, 200, "ecs:cloudServers:get"
        ),
        ecs.list_attachments: Call(
            "ecs",
            "GET",
            f"/v1/{p}/cloudservers/srv-1/os-volume_attachments",
            None,
            200,
            "ecs:cloudServers:listServerVolumeAttachments",
        ),
        ims.list_images: Call("ims", "GET", "/v2/cloudimages", None, 200, "ims:images:list"),
        ims.filter_images: Call(
            "ims",
            "POST",
            f"/v2/{p}/images/resource_instances/action",
            tag_query,
            200,
            "ims:images:list",
        ),
        ims.show_image: Call("ims", "GET", "/v2/images/img-1", None, 200, "ims:images:get"),
        ims.list_tags: Call(
            "ims", "GET", f"/v2/{p}/images/img-1/tags", None, 200, "ims:images:get"
        ),
        ims.tag_action: Call(
            "ims",
            "POST",
            f"/v2/{p}/images/img-1/tags/action",
            {"action": "create", "tags": [{"key": "a", "value": "b"}]},
            204,
            "ims:images:update",
        ),
        ims.delete_image: Call("ims", "DELETE", "/v2/images/img-1", None, 204, "ims:images:delete"),
        imscopy.copy_cross_region: Call(
            "ims",
            "POST",
            "/v1/cloudimages/img-1/cross_region_copy",
            {"name": "r", "region": TARGET, "project_name": TARGET, "agency_name": "ims_agency"},
            200,
            "ims:images:copy",
        ),
        imscopy.add_members: Call(
            "ims",
            "POST",
            "/v1/cloudimages/members",
            {"images": ["img-1"], "projects": ["a" * 32]},
            200,
            "ims:images:share",
        ),
        imscopy.show_job: Call(
            "ims", "GET", f"/v1/{p}/jobs/job-1", None, 200, "ims:imageJobs:getPercentage"
        ),
        imscopy.show_job_progress: Call(
            "ims", "GET", "/v1/cloudimages/job/job-1", None, 200, "ims:imageJobs:getPercentage"
        ),
        smn.publish: Call(
            "smn",
            "POST",
            f"/v2/{p}/notifications/topics/{TOPIC}/publish",
            {"message": "hi"},
            200,
            "smn:topic:publish",
        ),
        functiongraph.invoke_async: Call(
            "functiongraph",
            "POST",
            f"/v2/{p}/fgs/functions/{FUNCTION}/invocations-async",
            {},
            202,
            "functiongraph:function:invokeAsync",
        ),
    }


CALLS = _route_calls()


def seed(cloud: FakeCloud) -> None:
    """The volume, server, image, target region and job the sample calls name."""
    cloud.evs.add_volume("vol-1", attachments=[{"server_id": "srv-1", "device": "/dev/vdb"}])
    cloud.ecs.add_server("srv-1")
    cloud.ims.add_image(id="img-1", name="img")
    cloud.add_region(TARGET, TARGET_PROJECT)
    cloud.jobs.add_done(REGION, "imsBatchAddMembersJob", [], job_id="job-1")


def send(client: Client, call: Call, **kw: Any) -> requests.Response:
    """Send a sample call signed with the test credentials."""
    return client.call(call.method, call.path, service=call.service, body=call.body, **kw)


def all_routes() -> list[tuple[str, Route]]:
    """(service, route) of every route of the fake."""
    return [(service, r) for service, routes in SERVICES.items() for r in routes]


def test_every_route_has_exactly_one_action() -> None:
    """Each route names one action, no handler serves two routes, and ACTIONS (by handler) is
    exactly the route tables' actions."""
    handlers = [r.handler for _, r in all_routes()]
    assert len(set(handlers)) == len(handlers)
    assert all(isinstance(r.action, str) and r.action for _, r in all_routes())
    assert {r.handler: r.action for _, r in all_routes()} == ACTIONS


def test_actions_are_the_documented_ones() -> None:
    """The tables use exactly PLATFORM.md 10.6's actions, each in its own service's namespace."""
    assert {r.action for _, r in all_routes()} == DOCUMENTED
    for service, r in all_routes():
        assert r.action.split(":")[0] == service


def test_every_route_has_a_sample_call() -> None:
    """The enforcement tests below exercise every route (so a new route needs a sample here)."""
    assert set(CALLS) == set(ACTIONS)


def test_route_actions_match_the_platform_table() -> None:
    """Each route needs the action PLATFORM.md 10.6 names for that API, not just any of them."""
    assert {h.__name__: ACTIONS[h] for h in CALLS} == {
        h.__name__: c.action for h, c in CALLS.items()
    }


@pytest.mark.parametrize("handler", list(CALLS), ids=lambda h: h.__name__)
def test_allowed_exactly_its_action(client: Client, handler: Handler) -> None:
    """A policy allowing only a route's action lets that route through."""
    seed(client.cloud)
    call = CALLS[handler]
    client.cloud.set_iam_policy(policy(("Allow", [ACTIONS[handler]])))
    response = send(client, call)
    assert response.status_code == call.ok, response.text


@pytest.mark.parametrize("handler", list(CALLS), ids=lambda h: h.__name__)
def test_denied_in_service_body(client: Client, handler: Handler) -> None:
    """A policy allowing every other action answers 403 in the service's own body, unprocessed."""
    seed(client.cloud)
    before = client.cloud.state()
    call, action = CALLS[handler], ACTIONS[handler]
    others = sorted(DOCUMENTED - {action})
    client.cloud.set_iam_policy(policy(("Allow", others)))
    response = send(client, call)
    assert response.status_code == 403
    message = f"Policy doesn't allow {action} to be performed."
    body = response.json()
    if call.service == "evs":
        assert body == {"error": {"code": "EVS.5403", "message": message}}
    elif call.service == "ecs":
        assert body == {"error": {"code": "Ecs.0403", "message": message}}
    elif call.service == "smn":
        assert set(body) == {"request_id", "code", "message"}
        assert (body["code"], body["message"]) == ("SMN.0403", message)
    else:
        code = {"ims": "IMG.0403", "functiongraph": "FSS.0403"}[call.service]
        assert body == {"error_code": code, "error_msg": message}
    after = client.cloud.state()
    for key in (
        "volumes",
        "servers",
        "images",
        "smn_messages",
        "invocations",
        "regions",
        "jobs",
        "members",
    ):
        assert after[key] == before[key]
    assert client.cloud.requests[-1].status == 403


def test_off_by_default(client: Client) -> None:
    """Without a policy nothing is checked; set_iam_policy(None) turns enforcement off again."""
    seed(client.cloud)
    call = CALLS[next(iter(CALLS))]
    assert send(client, call).status_code == call.ok
    client.cloud.set_iam_policy(policy(("Allow", ["smn:topic:publish"])))
    assert client.call("GET", "/v2/cloudimages", service="ims").status_code == 403
    client.cloud.set_iam_policy(None)
    assert client.call("GET", "/v2/cloudimages", service="ims").status_code == 200


def test_bad_signature_is_still_401(client: Client) -> None:
    """The policy check comes after the signature check: a bad signature is 401, not 403."""
    client.cloud.set_iam_policy(policy(("Deny", ["*:*:*"]), ("Allow", ["*:*:*"])))
    response = client.call("GET", "/v2/cloudimages", service="ims", sign_as=(AK, "wrong"))
    assert response.status_code == 401
    assert client.call("GET", "/v2/cloudimages", service="ims").status_code == 403


VOL, VOL_TAGS, IMG = "evs:volumes:get", "evs:volumeTags:get", "ims:images:get"


@pytest.mark.parametrize(
    ("statements", "allowed"),
    [
        ([("Allow", ["evs:*:*"])], {VOL, VOL_TAGS}),
        ([("Allow", ["*:*:*"])], {VOL, VOL_TAGS, IMG}),
        ([("Allow", ["ims:images:get*"])], {IMG}),
        ([("Allow", ["evs:volumes:*"])], {VOL}),
        ([("Allow", ["*:*:*"]), ("Deny", [VOL])], {VOL_TAGS, IMG}),
        ([("Deny", ["ims:*:*"]), ("Allow", [IMG])], set()),
        ([("Allow", [VOL]), ("Allow", [IMG])], {VOL, IMG}),
        ([("Allow", ["evs:volumes:GET"])], set()),
        ([("Allow", ["*:*:*"]), ("Deny", ["EVS:VOLUMES:GET"])], {VOL_TAGS, IMG}),
        ([("Allow", ["ecs:cloudServers:get"])], set()),
    ],
    ids=[
        "service-wildcard",
        "all",
        "action-prefix",
        "resource-wildcard",
        "deny-wins",
        "deny-wildcard-wins",
        "two-allows",
        "allow-is-case-exact",
        "deny-any-case",
        "default-deny",
    ],
)
def test_policy_evaluation(statements: list[tuple[str, list[str]]], allowed: set[str]) -> None:
    """Exact actions and per-segment `*` wildcards; an explicit Deny wins; default deny."""
    rule = Policy(policy(*statements))
    probe = {VOL, VOL_TAGS, IMG}
    assert {a for a in probe if rule.allows(a)} == allowed


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"Version": "1.1"},
        {"Version": "5.0", "Statement": [{"Effect": "Allow", "Action": ["*:*:*"]}]},
        {"Version": "1.1", "Statement": []},
        {"Version": "1.1", "Statement": [{"Effect": "Permit", "Action": ["*:*:*"]}]},
        {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": "evs:volumes:get"}]},
        {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": []}]},
        {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": ["evs:get"]}]},
        {
            "Version": "1.1",
            "Statement": [{"Effect": "Allow", "Action": ["*:*:*"], "Resource": ["*"]}],
        },
        {
            "Version": "1.1",
            "Statement": [{"Effect": "Allow", "Action": ["*:*:*"], "Condition": {}}],
        },
    ],
    ids=[
        "not-object",
        "no-statement",
        "version",
        "empty",
        "effect",
        "action-string",
        "no-actions",
        "two-segments",
        "resource",
        "condition",
    ],
)
def test_policy_refused(cloud: FakeCloud, document: Any) -> None:
    """A document the fake cannot evaluate exactly is refused, leaving enforcement unchanged."""
    with pytest.raises(ValueError):
        cloud.set_iam_policy(document)
    assert cloud.iam_policy is None
    with pytest.raises(ValueError):
        FakeCloud(iam_policy=document)


def test_constructor_policy(cloud: FakeCloud) -> None:
    """FakeCloud(iam_policy=doc) enforces from the first request; reset() keeps the policy."""
    from fakecloud import mock_cloud

    strict = FakeCloud(
        ak=AK, sk=SK, project_id=PROJECT, clock=cloud.clock, iam_policy=policy(("Deny", ["*:*:*"]))
    )
    with mock_cloud(strict), requests.Session() as s:
        client = Client(strict, "mock", s)
        assert client.call("GET", "/v2/cloudimages", service="ims").status_code == 403
        strict.reset()
        assert client.call("GET", "/v2/cloudimages", service="ims").status_code == 403
    assert strict.state()["iam_policy"] == policy(("Deny", ["*:*:*"]))


def test_control_routes(cloud: FakeCloud) -> None:
    """POST /_fake/iam sets the policy, GET shows it, DELETE lifts it; a bad one is 400."""
    with serve(cloud) as server, requests.Session() as s:
        client = Client(cloud, "server", s, server.url)
        doc = policy(("Allow", ["ims:images:get"]))
        answer = s.post(f"{server.url}/_fake/iam", json=doc)
        assert answer.status_code == 200
        assert answer.json() == {"iam_policy": doc}
        assert s.get(f"{server.url}/_fake/iam").json() == {"iam_policy": doc}
        denied = client.call("GET", "/v2/cloudimages", service="ims")
        assert denied.status_code == 403
        assert denied.json()["error_msg"] == "Policy doesn't allow ims:images:list to be performed."
        bad = {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": ["x"]}]}
        assert s.post(f"{server.url}/_fake/iam", json=bad).status_code == 400
        assert s.get(f"{server.url}/_fake/state").json()["iam_policy"] == doc
        assert s.delete(f"{server.url}/_fake/iam").json() == {"iam_policy": None}
        assert client.call("GET", "/v2/cloudimages", service="ims").status_code == 200


def test_cli_iam_policy(tmp_path: Path) -> None:
    """`python -m fakecloud --iam-policy FILE` enforces the file's policy over HTTP."""
    (tmp_path / "policy.json").write_text(json.dumps(policy(("Allow", ["evs:volumes:get"]))))
    (tmp_path / "bad.json").write_text(json.dumps({"Version": "1.1", "Statement": []}))
    env = {
        **os.environ,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("HUAWEICLOUD_SDK_SECURITY_TOKEN", None)
    base = [sys.executable, "-m", "fakecloud", "--port", "0", "--iam-policy"]
    bad = subprocess.run(
        [*base, str(tmp_path / "bad.json")], env=env, capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2
    assert "--iam-policy" in bad.stderr
    proc = subprocess.Popen(
        [*base, str(tmp_path / "policy.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        real = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, clock=lambda: datetime.now(timezone.utc))
        with requests.Session() as s:
            client = Client(real, "server", s, url)
            assert client.evs("GET", "cloudvolumes/vol-1").status_code == 404
            listing = client.evs("GET", "cloudvolumes/detail")
            assert listing.status_code == 403
            assert listing.json()["error"]["code"] == "EVS.5403"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
