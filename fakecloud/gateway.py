"""The API gateway in front of every service: the checks a request passes before its handler,
one concern per step, each answering in the gateway's own error body or letting it through.

Order (PLATFORM.md 10.6 puts IAM after the signature and project checks): the API exists in
the request's region (404 APIGW.0101), the SDK-HMAC-SHA256 signature and project header
(401 APIGW.0301), the project matches the region's (400 Common.0018), the IAM policy allows
the route's action (403 in the service's own body).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fakecloud import iam
from fakecloud.auth import AuthError, verify
from fakecloud.base import Reply, Request, Route, json_reply

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud


def no_such_api(req: Request) -> Reply:
    """404 APIGW.0101: no route, or the service is not in the request's region."""
    body = {
        "error_code": "APIGW.0101",
        "error_msg": "The API does not exist or has not been published in the environment",
        "request_id": req.request_id,
    }
    return json_reply(404, body, req)


def authenticate(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply | None:
    """401 APIGW.0301 for a bad signature, or no project in the path nor X-Project-Id."""
    try:
        verify(
            req.method,
            req.raw_path,
            req.query_pairs,
            req.headers,
            req.body,
            credentials={cloud.ak: cloud.sk},
            now=cloud.now(),
            security_token=cloud.security_token,
        )
        if "project" not in m.groupdict() and "x-project-id" not in req.headers:
            raise AuthError("X-Project-Id is required when the path has no project")
    except AuthError as exc:
        body = {
            "error_code": "APIGW.0301",
            "error_msg": f"Incorrect IAM authentication information: {exc}",
            "request_id": req.request_id,
        }
        return json_reply(401, body, req)
    return None


def check_project(req: Request, m: re.Match[str], region_project: str) -> Reply | None:
    """400 Common.0018 when the header's or the path's project is not the region's."""
    for project in (req.headers.get("x-project-id"), m.groupdict().get("project")):
        if project is not None and project.strip() != region_project:
            body = {
                "error_code": "Common.0018",
                "error_msg": f"The project {project.strip()} does not match the token's project.",
            }
            return json_reply(400, body, req)
    return None


def authorize(cloud: FakeCloud, req: Request, service: str, row: Route) -> Reply | None:
    """403 in the service's body when a policy is set and does not allow the route's action."""
    policy = cloud.iam_policy
    if policy is not None and not policy.allows(row.action):
        return json_reply(403, iam.denied_body(service, row.action, req.request_id), req)
    return None
