"""The one error table (errors.TABLE): each class's outcome and API Gateway status."""

from __future__ import annotations

import pytest

from function.apig import decode_apig
from function.errors import (
    TABLE,
    ApiError,
    BudgetExhausted,
    ConfigError,
    ExportError,
    HandOffFailed,
    InternalError,
    InvalidInput,
    PayloadTooLarge,
    SignatureError,
    TransportError,
)


def every(cls: type[ExportError]) -> list[type[ExportError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in every(sub))]


def test_every_error_class_has_its_own_row() -> None:
    """The table is complete: no error class takes its outcome or status by accident of
    inheritance (as httpx tests that every library exception is mapped)."""
    missing = [cls.__name__ for cls in every(ExportError) if cls not in TABLE]
    assert missing == []


@pytest.mark.parametrize(
    ("error", "outcome", "status"),
    [
        (InvalidInput("f", "bad"), "rejected", 400),
        (PayloadTooLarge("body", "too big"), "rejected", 413),
        (SignatureError("stale"), "rejected", 401),
        (ConfigError("REGION", "set REGION"), "rejected", 500),
        (TransportError("ReadTimeout", "no answer", maybe_sent=True), "failed", 502),
        (BudgetExhausted("no time"), "failed", 504),
        (InternalError(ValueError()), "failed", 500),
        (HandOffFailed("HopLimitReached", "too many"), "failed", 500),
        (ApiError(503, "EVS.5503", "Service unavailable."), "failed", 502),
        (ApiError(429, "APIGW.0308", "throttled"), "failed", 502),
        (ApiError(400, "EVS.5400", "bad"), "rejected", 502),
        (ApiError(403, "EVS.5403", "Policy doesn't allow x to be performed."), "rejected", 502),
    ],
)
def test_each_error_maps_to_its_outcome_and_edge_status(
    error: ExportError, outcome: str, status: int
) -> None:
    """An error's outcome and API Gateway status come from the table (an API error's
    outcome from its status: 429 and 5xx could be cured by a retry)."""
    assert (error.outcome, error.http_status_at_edge) == (outcome, status)


def test_a_message_replaced_keeps_class_code_and_detail() -> None:
    """with_message keeps the error's class (so its outcome), code, status and request ID."""
    original = ApiError(404, "Ecs.0114", "not found", "req-1")
    changed = original.with_message("server x was not found (not found)")
    assert isinstance(changed, ApiError)
    assert (changed.code, changed.http_status, changed.request_id, changed.outcome) == (
        "Ecs.0114",
        404,
        "req-1",
        "rejected",
    )
    assert changed.message == "server x was not found (not found)"
    assert original.message == "not found"


def test_an_oversized_apig_body_is_payload_too_large() -> None:
    """The APIG decoder refuses a body over 256 KiB as PayloadTooLarge, which the edge
    answers with 413."""
    event = {
        "httpMethod": "POST",
        "path": "/",
        "requestContext": {},
        "headers": {},
        "body": "x" * (256 * 1024 + 1),
        "isBase64Encoded": False,
    }
    with pytest.raises(PayloadTooLarge) as caught:
        decode_apig(event)
    assert caught.value.http_status_at_edge == 413
