"""API Gateway events: decode the envelope once, then hand the request to the chat (Slack) or the
webhook trigger by its signature headers and content type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from function.apig import decode_apig, is_apig
from function.config import Settings
from function.errors import InvalidInput
from function.runtime import Runtime
from function.work import Reply, Work

NAME = "webhook"


def matches(event: object) -> bool:
    """An API Gateway event (``httpMethod`` and ``requestContext``)."""
    return is_apig(event)


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Work:
    """The decoded request handed to the chat or the webhook trigger; 4xx when neither."""
    from function.triggers import chat, webhook

    try:
        request = decode_apig(event)
    except InvalidInput as exc:
        status = exc.http_status_at_edge  # 413 for PayloadTooLarge, else 400 (errors.TABLE)
        response = webhook.error_response(status, exc.code, exc.message, exc.field)
        return Reply(NAME, runtime.request_id, response)
    if chat.matches(request):
        return chat.parse(request, settings, runtime)
    if webhook.matches(request):
        return webhook.parse(request, settings, runtime)
    response = webhook.error_response(
        401, "Unauthorized", "unsigned request: sign it as a Standard Webhook or a Slack command"
    )
    return Reply(NAME, request.request_id or runtime.request_id, response)
