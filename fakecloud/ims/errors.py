"""IMS error bodies: `{"error_code", "error_msg"}` (PLATFORM.md 4.0 [C])."""

from __future__ import annotations

from typing import Any

from fakecloud.base import ApiError


def ims_error(status: int, code: str, message: str) -> ApiError:
    """The IMS `{"error_code", "error_msg"}` body."""
    return ApiError(status, {"error_code": code, "error_msg": message})


def bad_param(message: str) -> ApiError:
    """IMG.0001 (the fake's code for an invalid parameter or body) [U: the exact code]."""
    return ims_error(400, "IMG.0001", message)


def not_found(image_id: str) -> ApiError:
    """IMG.0027 for an unknown image."""
    return ims_error(404, "IMG.0027", f"The image {image_id} cannot be found.")


def denied(message: str, request_id: str) -> dict[str, Any]:
    """The IAM 403 body (PLATFORM.md 4.0 [C], code [U])."""
    return {"error_code": "IMG.0403", "error_msg": message}  # [U] code
