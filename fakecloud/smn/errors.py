"""SMN error bodies: `{"request_id", "code", "message"}` (smn_api_63001 [C])."""

from __future__ import annotations

from typing import Any

from fakecloud.base import ApiError, Request


def smn_error(status: int, code: str, message: str, req: Request) -> ApiError:
    """SMN's `{"request_id", "code", "message"}` body (codes are the fake's own)."""
    return ApiError(status, {"request_id": req.request_id, "code": code, "message": message})


def denied(message: str, request_id: str) -> dict[str, Any]:
    """The IAM 403 body: SMN's documented exception body (smn_api_63001 [C], code [U])."""
    return {"request_id": request_id, "code": "SMN.0403", "message": message}  # [U] code
