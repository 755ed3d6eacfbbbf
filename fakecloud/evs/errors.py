"""EVS error bodies: Cinder-style `itemNotFound`/`badRequest` and the `{"error": {...}}` body."""

from __future__ import annotations

from typing import Any

from fakecloud.base import ApiError

NOT_FOUND_MSG = "Resource(Volume, Snapshot, Backup .etc) cound not be found."


def bad_request(detail: str) -> ApiError:
    """EVS.5400 for a body that breaks the export schema."""
    message = f"Malformed request body. {detail}"
    return ApiError(400, {"badRequest": {"code": "EVS.5400", "message": message}})


def evs_error(status: int, code: str, message: str) -> ApiError:
    """The EVS `{"error": {...}}` body."""
    return ApiError(status, {"error": {"code": code, "message": message}})


def not_found() -> ApiError:
    """EVS.5404, the Cinder-style body (typo included, as the service spells it)."""
    return ApiError(404, {"itemNotFound": {"code": "EVS.5404", "message": NOT_FOUND_MSG}})


def tag_filter_error(detail: str) -> ApiError:
    """EVS.5400 for a resource_instances body the tag query refuses."""
    return evs_error(400, "EVS.5400", f"Malformed request body. {detail}")


def denied(message: str, request_id: str) -> dict[str, Any]:
    """The IAM 403 body: `{"error": {"code", "message"}}` with EVS.5403 ("Policy check
    failed.", evs_04_0038 [C])."""
    return {"error": {"code": "EVS.5403", "message": message}}
