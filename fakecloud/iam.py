"""IAM enforcement: which action each route needs, custom policies, and the 403 per service.

Off by default. With a policy (`FakeCloud(iam_policy=doc)`, `cloud.set_iam_policy(doc)`,
`POST /_fake/iam`, `python -m fakecloud --iam-policy FILE`) every signed request whose action
the policy does not allow is answered 403 "Policy doesn't allow <action> to be performed."
(PLATFORM.md 10.6) in the service's own error body, after the signature check.

A policy is an IAM custom policy document (PLATFORM.md 10.6):
`{"Version": "1.1", "Statement": [{"Effect": "Allow"|"Deny", "Action": ["evs:volumes:get",
...]}]}`. Actions are `service:resource:action`; a `*` matches within one segment
(`evs:*:*`, `ims:images:get*`). An explicit Deny wins over any Allow, and what no statement
allows is denied. Whether IAM compares actions case-insensitively is [U]; the fake takes the
stricter reading each way: an Allow must match the case exactly, a Deny matches in any case.
Keys the fake cannot evaluate (`Resource`, `Condition`, ...) are refused rather than
ignored, so a test never passes on a rule the fake did not apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fakecloud import ecs, evs, functiongraph, ims, imscopy, smn
from fakecloud.base import Handler

# The one table: each route's handler -> the IAM action it needs (PLATFORM.md 10.6).
# tests/fakecloud/test_iam.py proves every route of the fake has exactly one entry here.
ACTIONS: dict[Handler, str] = {
    evs.export_volume: "evs:volumes:uploadImage",  # [C] evs_04_2086
    evs.show_volume: "evs:volumes:get",  # [S]
    evs.list_volumes: "evs:volumes:list",  # [S]
    evs.filter_volumes: "evs:volumeTags:get",  # [S] volumes by tag (resource_instances)
    ecs.show_server: "ecs:cloudServers:get",  # [C]
    ecs.list_attachments: "ecs:cloudServers:listServerVolumeAttachments",  # [C]
    ims.list_images: "ims:images:list",  # [S]
    # The tag query enumerates the project's images like GET /v2/cloudimages, so the stricter
    # plausible reading is that it needs ims:images:list: a policy granting only
    # ims:images:get (one known image) must not be able to discover images by tag. [U]
    ims.filter_images: "ims:images:list",
    ims.show_image: "ims:images:get",  # [S]
    ims.list_tags: "ims:images:get",  # [S] reading one image's tags reads the image
    ims.tag_action: "ims:images:update",  # [S] tags
    ims.delete_image: "ims:images:delete",  # [S]
    imscopy.copy_cross_region: "ims:images:copy",  # [C] ims_03_0628, PLATFORM.md 10.8
    imscopy.add_members: "ims:images:share",  # [C] IMS action table, POST /v1/cloudimages/members
    # [C] for GET /v1/cloudimages/job/{job_id} (IMS API actions, "Asynchronous Job"). The older
    # GET /v1/{project_id}/jobs/{job_id} has no action documented [U]; the fake asks for the
    # same one, the only IMS job action there is.
    imscopy.show_job_progress: "ims:imageJobs:getPercentage",
    imscopy.show_job: "ims:imageJobs:getPercentage",
    smn.publish: "smn:topic:publish",  # [C] PublishMessage
    functiongraph.invoke_async: "functiongraph:function:invokeAsync",  # [S]
}

_ACTION = re.compile(r"^[A-Za-z0-9*]+:[A-Za-z0-9*]+:[A-Za-z0-9*]+$")
_STATEMENT_KEYS = {"Effect", "Action"}


def denied_message(action: str) -> str:
    """The 403 message, verbatim from PLATFORM.md 10.6."""
    return f"Policy doesn't allow {action} to be performed."


def denied_body(service: str, action: str, request_id: str) -> dict[str, Any]:
    """The 403 body in `service`'s own error format.

    EVS: `{"error": {"code", "message"}}` with EVS.5403 ("Policy check failed.", evs_04_0038
    [C]); ECS the same shape (as the fake's other ECS errors; shape and code [U]); IMS and
    FunctionGraph `{"error_code", "error_msg"}` (PLATFORM.md 4.0 [C], codes [U]); SMN its
    documented exception body `{"request_id", "code", "message"}` (smn_api_63001 [C], code
    [U]).
    """
    message = denied_message(action)
    if service == "evs":
        return {"error": {"code": "EVS.5403", "message": message}}
    if service == "ecs":
        return {"error": {"code": "Ecs.0403", "message": message}}  # [U] code
    if service == "smn":
        return {"request_id": request_id, "code": "SMN.0403", "message": message}  # [U] code
    code = {"ims": "IMG.0403", "functiongraph": "FSS.0403"}[service]  # [U] codes
    return {"error_code": code, "error_msg": message}


def _pattern(action: str, flags: int = 0) -> re.Pattern[str]:
    """An action with `*` wildcards as a regex; a `*` matches within one segment only."""
    body = "[^:]*".join(re.escape(part) for part in action.split("*"))
    return re.compile(f"^{body}$", flags)


class Policy:
    """A validated IAM custom policy; `allows(action)` evaluates it (Deny wins, default deny)."""

    def __init__(self, document: Any) -> None:
        self.document = validate(document)
        self._rules = [
            (
                str(st["Effect"]),
                [_pattern(a, re.IGNORECASE if st["Effect"] == "Deny" else 0) for a in st["Action"]],
            )
            for st in self.document["Statement"]
        ]

    def allows(self, action: str) -> bool:
        """Whether `action` is allowed: some Allow matches and no Deny does."""
        allowed = False
        for effect, patterns in self._rules:
            if any(p.match(action) for p in patterns):
                if effect == "Deny":
                    return False
                allowed = True
        return allowed


def validate(document: Any) -> dict[str, Any]:
    """The document if it is a custom policy the fake can evaluate, else ValueError."""
    if not isinstance(document, Mapping):
        raise ValueError("an IAM policy is a JSON object")
    if set(document) != {"Version", "Statement"}:
        raise ValueError('an IAM policy has exactly the keys "Version" and "Statement"')
    if document["Version"] != "1.1":
        raise ValueError('the fake evaluates custom policies of "Version": "1.1" only')
    statements = document["Statement"]
    if not isinstance(statements, list) or not statements:
        raise ValueError('"Statement" must be a non-empty list')
    for st in statements:
        if not isinstance(st, Mapping) or set(st) != _STATEMENT_KEYS:
            raise ValueError(
                f"each statement has exactly the keys {sorted(_STATEMENT_KEYS)} (got {st!r});"
                " the fake does not evaluate Resource or Condition"
            )
        if st["Effect"] not in ("Allow", "Deny"):
            raise ValueError(f'"Effect" must be "Allow" or "Deny", not {st["Effect"]!r}')
        actions = st["Action"]
        if not isinstance(actions, list) or not actions:
            raise ValueError('"Action" must be a non-empty list of strings')
        for action in actions:
            if not isinstance(action, str) or not _ACTION.match(action):
                raise ValueError(f"invalid action {action!r}: expected service:resource:action")
    return {"Version": "1.1", "Statement": [dict(st) for st in statements]}
