"""Decommission webhook (APIG POST, Standard Webhooks signed).

``{"action": "decommission", "server_id": ...}`` exports every disk of the server (force
defaults to true: the disks are in use) under a deterministic default name, so a redelivery
ends in ``duplicate`` skips. Direct-shaped bodies are accepted too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr, ValidationError, field_validator

from function.apig import ApigRequest, apig_response
from function.config import Settings
from function.errors import InvalidInput
from function.model import invalid_from, is_uuid
from function.names import check_template
from function.runtime import Runtime
from function.signatures import SignatureError, verify_standard_webhook
from function.triggers import direct
from function.work import Exports, PlanRequest, Reply, Work, correlation_id

NAME = "webhook"
# ``{delivery}`` is a short hash of the webhook-id: a redelivery, whenever it comes, renders
# the same names (and ends in ``duplicate`` skips); a new notice exports again.
DECOMMISSION_TEMPLATE = "{server_name}-{volume_name}-decom-{delivery}"


class Decommission(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    action: StrictStr
    server_id: StrictStr
    force: StrictBool = True
    image_name: StrictStr = DECOMMISSION_TEMPLATE

    @field_validator("server_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        if not is_uuid(value):
            raise ValueError("server_id must be a server UUID")
        return value


def matches(request: ApigRequest) -> bool:
    return (
        request.header("webhook-signature") is not None or request.header("webhook-id") is not None
    )


def parse(request: ApigRequest, settings: Settings, runtime: Runtime) -> Work:
    """401 for any signature problem, 400 for a body that is not JSON or no known shape."""
    msg_id = correlation_id(request.header("webhook-id"), runtime.request_id)

    def answer(response: dict[str, Any]) -> Reply:
        return Reply(NAME, msg_id, response)

    if request.method != "POST":
        return answer(error_response(405, "MethodNotAllowed", "send the webhook with POST"))
    try:
        verify_standard_webhook(
            request.raw_body,
            request.headers,
            settings.webhook_secrets,
            int(runtime.clock().timestamp()),
        )
    except SignatureError as exc:
        return answer(unauthorized(exc))
    try:
        body = json.loads(request.raw_body)
    except ValueError as exc:
        return answer(
            error_response(400, "InvalidJson", f"the body is not valid JSON: {exc}", "body")
        )
    if isinstance(body, Mapping) and body.get("action") == "decommission":
        try:
            notice = Decommission.model_validate(body)
            check_template(notice.image_name)
        except ValidationError as exc:
            err = invalid_from(exc)
            return answer(error_response(err.http_status_at_edge, err.code, err.message, err.field))
        except InvalidInput as err:
            return answer(error_response(err.http_status_at_edge, err.code, err.message, err.field))
        plan = PlanRequest(
            policy="decommission",
            template=notice.image_name,
            time=runtime.clock(),
            options={"force": notice.force},
            server_ids=(notice.server_id,),
            fields={"delivery": hashlib.sha256(msg_id.encode()).hexdigest()[:12]},
        )
        return Exports(NAME, msg_id, plans=(plan,), respond=accepted)
    if direct.is_request(body) and isinstance(body, Mapping):
        inner = direct.parse({**body, "correlation_id": msg_id}, settings, runtime)
        return Exports(NAME, msg_id, items=inner.items, tasks=inner.tasks, respond=accepted)
    known = '{"action": "decommission", "server_id": "<uuid>"} or a direct export'
    return answer(
        error_response(400, "UnknownShape", f"the body is not a known shape; send {known}", "body")
    )


def accepted(result: dict[str, Any]) -> dict[str, Any]:
    """The export work's result as the APIG response (202)."""
    return apig_response(202, result)


def unauthorized(exc: SignatureError) -> dict[str, Any]:
    """401 without detail; the reason goes to the log only."""
    import structlog

    structlog.get_logger("evs_export.auth").warning("signature rejected", reason=exc.reason)
    return error_response(
        exc.http_status_at_edge, "Unauthorized", "the request signature could not be verified"
    )


def error_response(
    status: int, code: str, message: str, field: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return apig_response(status, {"error": error})
