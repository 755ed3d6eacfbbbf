"""FunctionGraph error bodies: `{"error_code", "error_msg"}` (PLATFORM.md 4.0 [C])."""

from __future__ import annotations

from typing import Any

from fakecloud.base import ApiError


def fgs_error(status: int, code: str, message: str) -> ApiError:
    """FunctionGraph's `{"error_code", "error_msg"}` body."""
    return ApiError(status, {"error_code": code, "error_msg": message})


def denied(message: str, request_id: str) -> dict[str, Any]:
    """The IAM 403 body (PLATFORM.md 4.0 [C], code [U])."""
    return {"error_code": "FSS.0403", "error_msg": message}  # [U] code
