"""The sample secrets behind `events/webhook.json` and `events/slack.json`, and `resign`, which
gives those samples fresh signatures so they pass the 5-minute window when run locally.

The secrets are the published test vectors of Standard Webhooks and Slack (PLATFORM §5.1,
§5.2): they sign the samples only and must never be configured on a deployed function.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from typing import Any

from function.signatures import sign_slack, standard_webhook_headers

SAMPLE_WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SAMPLE_SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SAMPLE_SLACK_USER = "U2CERLKJA"
SAMPLE_SLACK_CHANNEL = "G8PSS9T3V"


def sample_env() -> dict[str, str]:
    """The variables the APIG samples need: their secrets and the sample Slack user."""
    return {
        "WEBHOOK_SECRETS": SAMPLE_WEBHOOK_SECRET,
        "SLACK_SIGNING_SECRET": SAMPLE_SLACK_SIGNING_SECRET,
        "CHAT_ALLOWED_USERS": SAMPLE_SLACK_USER,
        "CHAT_ALLOWED_CHANNELS": SAMPLE_SLACK_CHANNEL,
    }


def resign(event: dict[str, Any], now: int) -> dict[str, Any]:
    """A copy of ``event`` signed at Unix time ``now`` with the sample secrets.

    An APIG event with ``webhook-*`` headers gets a new ``webhook-timestamp`` and
    ``webhook-signature`` (same ``webhook-id``: a redelivery); one with ``x-slack-signature``
    a new ``x-slack-request-timestamp`` and signature. Signatures cover the body as sent,
    base64-decoded when ``isBase64Encoded``. Any other event is returned as an unchanged copy.
    """
    out = copy.deepcopy(event)
    headers = out.get("headers")
    if "httpMethod" not in out or not isinstance(headers, dict):
        return out
    names = {str(k).lower(): str(k) for k in headers}
    body = _raw_body(out)
    if "webhook-id" in names:
        fresh = standard_webhook_headers(
            SAMPLE_WEBHOOK_SECRET, str(headers[names["webhook-id"]]), now, body
        )
        for name in ("webhook-timestamp", "webhook-signature"):
            headers[names.get(name, name)] = fresh[name]
    elif "x-slack-signature" in names:
        stamp = names.get("x-slack-request-timestamp", "x-slack-request-timestamp")
        headers[stamp] = str(now)
        headers[names["x-slack-signature"]] = sign_slack(SAMPLE_SLACK_SIGNING_SECRET, now, body)
    return out


def _raw_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    text = body if isinstance(body, str) else str(body)
    if event.get("isBase64Encoded") is True:
        return base64.b64decode(text)
    return text.encode("utf-8")
