"""The signed result webhook: each event POSTed to ``RESULT_WEBHOOK_URL`` in CloudEvents
structured mode, signed per Standard Webhooks with ``RESULT_WEBHOOK_SECRET``.

``webhook-id`` is the event ID on every attempt (the receiver's idempotency key);
``webhook-timestamp`` and ``webhook-signature`` are fresh per attempt. 2xx is success; 3xx is
a failure and is not followed; 410 (the receiver wants no more) and other 4xx fail at once;
429, 5xx and connection errors are retried with backoff (honouring ``Retry-After``) while the
invocation's time allows. The webhook is not a Huawei API, so requests go straight to the
transport, unsigned by SDK-HMAC-SHA256.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from function.budget import SAFETY_MARGIN_MS
from function.cloud.client import Retrier, parse_retry_after
from function.cloud.signing import USER_AGENT
from function.cloud.transport import HttpResponse, Transport
from function.config import Settings
from function.errors import ApiError, BudgetExhausted, ConfigError
from function.runtime import Runtime
from function.signatures import SignatureError, standard_webhook_headers, webhook_key

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
SEND_TIMEOUT = 15.0  # Standard Webhooks senders wait 15-30 s
MIN_ATTEMPT_S = 1.0


def event_body(event: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): the event as compact UTF-8 JSON."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def check_answer(resp: HttpResponse, what: str) -> None:
    """Raise ApiError unless the answer is 2xx; only 429 and 5xx are worth retrying."""
    status = resp.status
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        code, message = "Redirected", f"{what} answered {status}; redirects are not followed"
    elif status == 410:
        code, message = "Gone", f"{what} answered 410 Gone: it accepts no more deliveries"
    elif status == 429:
        code, message = "Throttled", f"{what} answered 429 Too Many Requests"
    else:
        code, message = f"HTTP{status}", f"{what} answered {status}"
    raise ApiError(status, code, message, resp.request_id)


def post_with_retries(
    transport: Transport,
    runtime: Runtime,
    settings: Settings,
    url: str,
    body: bytes,
    headers: Callable[[], Mapping[str, str]],
    what: str,
) -> None:
    """POST ``body`` until a 2xx, a final failure, or the time budget ends (ExportError).
    ``headers`` is called per attempt, so signatures and timestamps are fresh."""

    def attempt() -> None:
        remaining = runtime.budget.seconds_left(SAFETY_MARGIN_MS)
        if remaining < MIN_ATTEMPT_S:
            raise BudgetExhausted(f"no time left to deliver to {what}")
        timeout = (min(settings.connect_timeout, remaining), min(SEND_TIMEOUT, remaining))
        resp = transport.send("POST", url, dict(headers()), body, timeout)
        try:
            check_answer(resp, what)
        except ApiError as exc:
            exc.retry_after = parse_retry_after(resp.header("Retry-After"), runtime)
            raise

    Retrier(runtime, settings.max_attempts).run(attempt)


def check_url(url: str, variable: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(variable, f"{variable} must be an http(s) URL")
    return url


class WebhookSink:
    """Delivers each result event to the signed result webhook."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        transport: Transport,
        runtime: Runtime,
        settings: Settings,
    ) -> None:
        self.url = check_url(url, "RESULT_WEBHOOK_URL")
        try:
            webhook_key(secret)
        except SignatureError as exc:
            raise ConfigError(
                "RESULT_WEBHOOK_SECRET", f"RESULT_WEBHOOK_SECRET: {exc.reason}"
            ) from None
        self.secret = secret
        self.transport = transport
        self.runtime = runtime
        self.settings = settings

    def deliver(self, event: dict[str, Any]) -> None:
        body = event_body(event)
        msg_id = str(event["id"])

        def headers() -> dict[str, str]:
            timestamp = int(self.runtime.clock().timestamp())
            return {
                "Content-Type": CONTENT_TYPE,
                "User-Agent": USER_AGENT,
                **standard_webhook_headers(self.secret, msg_id, timestamp, body),
            }

        post_with_retries(
            self.transport, self.runtime, self.settings, self.url, body, headers, "the webhook"
        )
