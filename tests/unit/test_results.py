"""Outcomes to CloudEvents 1.0 and the invocation summary (function/results.py)."""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest

from function.cloud.records import Accepted
from function.errors import ApiError, BudgetExhausted, InvalidInput, TransportError
from function.model import ACTION_KEY, UploadOptions
from function.results import EventContext, cloud_event, outcome_event, summarize
from function.work import ExportOrder, Outcome
from tests.unit.fakes import IMAGE, VOLUME

NOW = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
SOURCE = "urn:fss:cn-north-4:0123456789abcdef0123456789abcdef:function:default:evs-export:latest"
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ORDER = ExportOrder(
    VOLUME,
    UploadOptions("img-1", disk_format="qcow2", container_format="bare"),
)


def make_ctx(trigger: str = "direct") -> EventContext:
    ids = itertools.count(1)
    return EventContext(
        source=SOURCE,
        trigger=trigger,
        correlation_id="corr-1",
        now=lambda: NOW,
        new_id=lambda: f"evt-{next(ids)}",
    )


def accepted_outcome(**changes: Any) -> Outcome:
    acc = Accepted(
        image_id=IMAGE,
        image_name="img-1",
        status="uploading",
        disk_format="vhd",
        container_format="bare",
        size_gb=40,
        request_id="req-202",
    )
    fields: dict[str, Any] = {"accepted": acc, "order": ORDER, "image_name": "img-1"}
    fields.update(changes)
    return Outcome("accepted", VOLUME, **fields)


def test_envelope_is_cloudevents_1_0() -> None:
    """Every event has the CloudEvents 1.0 attributes with injected id and time."""
    event = outcome_event(make_ctx(), accepted_outcome())
    assert event["specversion"] == "1.0"
    assert event["id"] == "evt-1"
    assert event["source"] == SOURCE
    assert event["type"] == "evs.export.accepted"
    assert event["subject"] == VOLUME
    assert event["time"] == "2025-01-02T03:04:05.678000Z"
    assert RFC3339_Z.match(event["time"])
    assert event["datacontenttype"] == "application/json"
    assert json.loads(json.dumps(event)) == event


def test_ids_come_from_the_factory() -> None:
    """Each event takes the next id from the injected factory."""
    ctx = make_ctx()
    ids = [outcome_event(ctx, accepted_outcome())["id"] for _ in range(3)]
    assert ids == ["evt-1", "evt-2", "evt-3"]


def test_accepted_data() -> None:
    """An accepted event's data carries the export's facts, trigger and correlation id."""
    data = outcome_event(make_ctx("timer"), accepted_outcome())["data"]
    assert data == {
        "volume_id": VOLUME,
        "image_name": "img-1",
        "image_id": IMAGE,
        "status": "uploading",
        "disk_format": "vhd",
        "container_format": "bare",
        "size_gb": 40,
        "request_id": "req-202",
        "trigger": "timer",
        "correlation_id": "corr-1",
    }


def test_accepted_formats_fall_back_to_the_request() -> None:
    """When the answer omits the formats, the ones sent are reported."""
    acc = Accepted(IMAGE, "img-1", "uploading", None, None, None, None)
    data = outcome_event(make_ctx(), accepted_outcome(accepted=acc))["data"]
    assert data["disk_format"] == "qcow2"
    assert data["container_format"] == "bare"
    assert data["size_gb"] is None


def test_recovered_export_marked() -> None:
    """An export found in IMS after an ambiguous failure is marked recovered."""
    acc = Accepted(IMAGE, "img-1", "uploading", "vhd", "bare", 40, None, recovered=True)
    data = outcome_event(make_ctx(), accepted_outcome(accepted=acc))["data"]
    assert data["recovered"] is True


def test_rejected_invalid_input_names_field() -> None:
    """A rejected event for invalid input has data.error with code, message and field."""
    err = InvalidInput(f"{ACTION_KEY}.disk_format", "bad format")
    event = outcome_event(make_ctx(), Outcome("rejected", VOLUME, "img-1", error=err))
    assert event["type"] == "evs.export.rejected"
    assert event["data"]["error"] == {
        "code": "InvalidInput",
        "message": "bad format",
        "field": f"{ACTION_KEY}.disk_format",
    }
    assert event["data"]["trigger"] == "direct"
    assert event["data"]["correlation_id"] == "corr-1"


def test_rejected_api_error_has_status_and_request_id() -> None:
    """A rejected event for a 4xx answer has data.error.http_status and data.request_id."""
    err = ApiError(400, "EVS.2024", "volume in use", "req-400")
    event = outcome_event(make_ctx(), Outcome("rejected", VOLUME, "img-1", error=err, order=ORDER))
    assert event["data"]["error"] == {
        "code": "EVS.2024",
        "message": "volume in use",
        "http_status": 400,
    }
    assert event["data"]["request_id"] == "req-400"
    assert event["data"]["volume_id"] == VOLUME


@pytest.mark.parametrize(
    "err",
    [
        TransportError("ReadTimeout", "no answer", maybe_sent=True),
        BudgetExhausted("out of time", ApiError(503, "EVS.5000", "busy")),
    ],
)
def test_failed_event(err: Exception) -> None:
    """A failed outcome becomes evs.export.failed with data.error."""
    assert isinstance(err, (TransportError, BudgetExhausted))
    event = outcome_event(make_ctx(), Outcome("failed", VOLUME, "img-1", error=err))
    assert event["type"] == "evs.export.failed"
    assert event["data"]["error"]["code"] == err.code


def test_event_without_volume_has_no_subject() -> None:
    """An outcome without a volume (an unreadable event) has no subject and volume_id null."""
    err = InvalidInput("event", "not an object", "UnsupportedEvent")
    event = outcome_event(make_ctx(), Outcome("rejected", None, error=err))
    assert "subject" not in event
    assert event["data"]["volume_id"] is None


def test_skipped_reason_and_policy() -> None:
    """A skipped outcome carries its reason, and an order's policy is reported."""
    order = ExportOrder(VOLUME, UploadOptions("n"), policy="nightly")
    event = outcome_event(
        make_ctx(), Outcome("skipped", VOLUME, "n", reason="dry_run", order=order)
    )
    assert event["type"] == "evs.export.skipped"
    assert event["data"]["reason"] == "dry_run"
    assert event["data"]["policy"] == "nightly"


def test_cloud_event_keeps_data_and_adds_context() -> None:
    """cloud_event copies data and adds trigger and correlation_id without mutating the input."""
    data = {"image_id": IMAGE}
    event = cloud_event(make_ctx("cts"), "evs.image.deleted", None, data)
    assert event["type"] == "evs.image.deleted"
    assert event["data"] == {"image_id": IMAGE, "trigger": "cts", "correlation_id": "corr-1"}
    assert data == {"image_id": IMAGE}


def test_summarize_counts_each_kind() -> None:
    """summarize counts accepted, rejected, failed and skipped, with zeros kept."""
    kinds = ["accepted", "accepted", "rejected", "failed", "completed"]
    events = [{"type": f"evs.export.{k}"} for k in kinds]
    assert summarize(events) == {"accepted": 2, "rejected": 1, "failed": 1, "skipped": 0}


def test_summarize_reports_deferred_only_when_present() -> None:
    """deferred appears in the summary only when there is a deferred event."""
    assert summarize([]) == {"accepted": 0, "rejected": 0, "failed": 0, "skipped": 0}
    events = [{"type": "evs.export.deferred"}, {"type": "evs.export.skipped"}]
    assert summarize(events) == {
        "accepted": 0,
        "rejected": 0,
        "failed": 0,
        "skipped": 1,
        "deferred": 1,
    }


def test_outcome_kinds_are_the_result_kinds() -> None:
    """Outcome.kind's Literal is exactly the kinds results counts, and every error class has
    its own row in errors.TABLE whose outcome is one of them."""
    from typing import get_args

    from function.errors import TABLE, ErrorOutcome, ExportError
    from function.results import OUTCOME_KINDS
    from function.work import OutcomeKind

    assert get_args(OutcomeKind) == OUTCOME_KINDS
    assert set(get_args(ErrorOutcome)) <= set(OUTCOME_KINDS)

    def every(cls: type[ExportError]) -> list[type[ExportError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in every(sub))]

    for cls in every(ExportError):
        assert TABLE[cls][0] in get_args(ErrorOutcome), cls
