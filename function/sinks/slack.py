"""Chat-triggered work answered on Slack's ``response_url``: one message for the whole batch
(``function.chat.messages.results_message``), POSTed as JSON without authentication (the URL is the
credential, so it is never logged). Retried like the webhook."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from function.cloud.signing import USER_AGENT
from function.cloud.transport import Transport
from function.config import Settings
from function.errors import InvalidInput
from function.runtime import Runtime
from function.sinks.webhook import post_with_retries

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_response_url(url: str) -> str:
    """An https URL (or http to this machine, for local runs)."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)
    if not secure or not parts.netloc:
        raise InvalidInput("response_url", "the Slack response_url must be an https URL")
    return url


class SlackSink:
    """Posts one Slack message summarising the batch of result events."""

    name = "slack"

    def __init__(
        self, response_url: str, transport: Transport, runtime: Runtime, settings: Settings
    ) -> None:
        self.url = check_response_url(response_url)
        self.transport = transport
        self.runtime = runtime
        self.settings = settings

    def deliver(self, event: dict[str, Any]) -> None:
        self.deliver_batch([event])

    def deliver_batch(self, events: list[dict[str, Any]]) -> None:
        from function.chat.messages import results_message

        body = json.dumps(results_message(events), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
        post_with_retries(
            self.transport,
            self.runtime,
            self.settings,
            self.url,
            body,
            lambda: headers,
            "the Slack response_url",
        )
