"""FunctionGraph: asynchronous invocation of this function (continuations, chat work)."""

from __future__ import annotations

from typing import Any

from function.budget import SAFETY_MARGIN_MS
from function.cloud.client import CloudClient


class FunctionGraphClient:
    def __init__(self, client: CloudClient) -> None:
        self.client = client

    def invoke_async(
        self, function_urn: str, event: dict[str, Any], margin_ms: float = SAFETY_MARGIN_MS
    ) -> str | None:
        """Queue ``event`` for an asynchronous run; returns the platform's request ID. A
        failed attempt is retried while ``margin_ms`` of the budget would be left."""
        path = f"/v2/{self.client.project_id}/fgs/functions/{function_urn}/invocations-async"
        resp = self.client.call("functiongraph", "POST", path, body=event, margin_ms=margin_ms)
        data = resp.json()
        request_id = data.get("request_id") if isinstance(data, dict) else None
        return request_id if isinstance(request_id, str) else None
