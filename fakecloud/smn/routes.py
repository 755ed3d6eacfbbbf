"""SMN HTTP: PublishMessage, validated and recorded in the backend's `messages`."""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from fakecloud.base import ApiError, BadJson, Reply, Request, Route, json_reply, parse_json, route
from fakecloud.smn.errors import smn_error

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,255}$")
_ATTR_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_ATTR_TYPES = ("STRING", "STRING_ARRAY", "PROTOCOL")
_KNOWN = (
    "subject",
    "message",
    "message_structure",
    "message_template_name",
    "tags",
    "time_to_live",
    "message_attributes",
    "locale",
)
MAX_MESSAGE_BYTES = 256 * 1024


def _validate(body: Any, req: Request) -> dict[str, Any]:
    def bad(message: str) -> ApiError:
        return smn_error(400, "SMN.00010001", message, req)

    if not isinstance(body, dict):
        raise bad("The body must be a JSON object.")
    unknown = sorted(k for k in body if k not in _KNOWN)
    if unknown:
        raise bad(f"Unknown fields {unknown!r}.")
    kinds = [k for k in ("message", "message_structure", "message_template_name") if k in body]
    if len(kinds) != 1:
        raise bad(
            "Exactly one of message, message_structure, message_template_name is required"
            f" (got {kinds!r})."
        )
    content = body[kinds[0]]
    if not isinstance(content, str) or not content:
        raise bad(f"{kinds[0]} must be a non-empty string.")
    if len(content.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise bad(f"{kinds[0]} exceeds 256 KB.")
    if kinds[0] == "message_structure":
        try:
            structure = json.loads(content)
        except ValueError as exc:
            raise bad("message_structure must be a JSON string.") from exc
        if not isinstance(structure, dict) or not isinstance(structure.get("default"), str):
            raise bad("message_structure must hold a 'default' string.")
    subject = body.get("subject")
    if subject is not None and (not isinstance(subject, str) or len(subject.encode()) > 512):
        raise bad("subject must be a string of at most 512 bytes.")
    ttl = body.get("time_to_live")
    if ttl is not None and (not isinstance(ttl, str) or not re.fullmatch(r"\d+", ttl)):
        raise bad("time_to_live must be a string of seconds.")
    attrs = body.get("message_attributes")
    if attrs is not None:
        if not isinstance(attrs, list):
            raise bad("message_attributes must be a list.")
        for attr in attrs:
            if (
                not isinstance(attr, dict)
                or not isinstance(attr.get("name"), str)
                or not _ATTR_NAME.match(attr["name"])
                or attr.get("type") not in _ATTR_TYPES
                or "value" not in attr
            ):
                raise bad(f"Invalid message attribute {attr!r}.")
    return body


def publish(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /v2/{project}/notifications/topics/{urn}/publish."""
    urn = m.group("topic_urn")
    parts = urn.split(":")
    if (
        len(parts) != 5
        or parts[:2] != ["urn", "smn"]
        or parts[2] != cloud.smn.region
        or parts[3] != cloud.smn.project_id
        or not _TOPIC_NAME.match(parts[4])
    ):
        raise smn_error(404, "SMN.00010008", f"Topic {urn} does not exist.", req)
    try:
        body = parse_json(req)
    except BadJson as exc:
        raise smn_error(400, "SMN.00010001", str(exc), req) from exc
    fields = _validate(body, req)
    message_id = uuid.uuid4().hex
    record = {
        "topic_urn": urn,
        "subject": fields.get("subject"),
        "message": fields.get("message"),
        "message_structure": fields.get("message_structure"),
        "message_template_name": fields.get("message_template_name"),
        "tags": fields.get("tags"),
        "time_to_live": fields.get("time_to_live"),
        "message_attributes": fields.get("message_attributes"),
        "locale": fields.get("locale"),
        "message_id": message_id,
        "request_id": req.request_id,
    }
    cloud.smn.messages.append(record)
    return json_reply(200, {"request_id": req.request_id, "message_id": message_id}, req)


# Method, path, handler and the IAM action each needs (PLATFORM.md 10.6).
ROUTES: list[Route] = [
    route(
        "POST",
        r"/v2/{project}/notifications/topics/(?P<topic_urn>[^/]+)/publish",
        publish,
        "smn:topic:publish",  # [C] PublishMessage
    ),
]
