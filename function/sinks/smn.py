"""Result events published to the SMN topic ``RESULT_SMN_TOPIC_URN`` (PLATFORM §4.4, §6.3).

``message`` is the event's JSON; ``subject`` a one-line summary; ``message_attributes``
carry the event type and volume so that subscriptions can filter on them. Publishing is a
signed Huawei API call, retried like every other (``CloudClient.call``); a retry after an
ambiguous failure may publish twice, and consumers deduplicate on the event ``id``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from function.cloud.client import CloudClient
from function.errors import ConfigError

MAX_SUBJECT_BYTES = 512
_URN_RE = re.compile(r"^urn:smn:[a-z0-9-]+:[0-9A-Za-z]{1,64}:[A-Za-z0-9][A-Za-z0-9_-]{0,255}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def subject_line(event: Mapping[str, Any]) -> str:
    """A one-line summary of at most 512 bytes, e.g.
    ``evs.export.accepted vol 16369c5d-... -> image c5333daa-...``."""
    raw = event.get("data")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    parts = [str(event.get("type", "evs.export"))]
    volume = data.get("volume_id") or event.get("subject")
    if volume:
        parts.append(f"vol {volume}")
    if data.get("image_id"):
        parts.append(f"-> image {data['image_id']}")
    error = data.get("error")
    if isinstance(error, Mapping) and error.get("code"):
        parts.append(f"({error['code']})")
    elif data.get("reason"):
        parts.append(f"({data['reason']})")
    text = _CONTROL.sub(" ", " ".join(parts))
    return text.encode("utf-8")[:MAX_SUBJECT_BYTES].decode("utf-8", errors="ignore")


def attributes(event: Mapping[str, Any]) -> list[dict[str, str]]:
    """``message_attributes`` for subscription filtering: ``type`` and ``volume_id``."""
    attrs = [{"name": "type", "type": "STRING", "value": str(event.get("type", ""))}]
    raw = event.get("data")
    volume = raw.get("volume_id") if isinstance(raw, Mapping) else None
    if isinstance(volume, str) and volume:
        attrs.append({"name": "volume_id", "type": "STRING", "value": volume})
    return attrs


def publish_body(event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "subject": subject_line(event),
        "message": json.dumps(event, ensure_ascii=False, separators=(",", ":")),
        "message_attributes": attributes(event),
    }


def check_urn(urn: str) -> str:
    if not _URN_RE.match(urn):
        raise ConfigError(
            "RESULT_SMN_TOPIC_URN",
            "RESULT_SMN_TOPIC_URN must be a topic URN such as "
            "urn:smn:cn-north-4:<project_id>:<topic_name>",
        )
    return urn


class SmnSink:
    """Publishes each result event to one SMN topic, with the invocation's signed client."""

    name = "smn"

    def __init__(self, topic_urn: str, connect: Callable[[], CloudClient]) -> None:
        self.topic_urn = check_urn(topic_urn)
        self._connect = connect

    def deliver(self, event: dict[str, Any]) -> None:
        client = self._connect()
        urn = quote(self.topic_urn, safe=":")
        path = f"/v2/{client.project_id}/notifications/topics/{urn}/publish"
        client.call("smn", "POST", path, body=publish_body(event))
