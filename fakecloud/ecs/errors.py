"""ECS error bodies: `{"error": {"code", "message"}}`."""

from __future__ import annotations

from typing import Any

from fakecloud.base import ApiError


def not_found(server_id: str) -> ApiError:
    """Ecs.0114 for an unknown server."""
    message = f"Instance[{server_id}] could not be found."
    return ApiError(404, {"error": {"code": "Ecs.0114", "message": message}})


def denied(message: str, request_id: str) -> dict[str, Any]:
    """The IAM 403 body, the same shape as the fake's other ECS errors (shape and code [U])."""
    return {"error": {"code": "Ecs.0403", "message": message}}  # [U] code
