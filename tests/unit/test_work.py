"""The typed work: its variants per trigger outcome, the correlation ID, the upload options
and the one wire-body builder."""

from __future__ import annotations

import dataclasses
import json

import pytest

from function.cloud.evs import upload_body
from function.model import ACTION_KEY, UploadOptions, parse_export
from function.triggers import chat_job, continuation, direct
from function.work import ExportOrder, Exports, correlation_id
from tests.unit.fakes import VOLUME, make_runtime, make_settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [("c-1", "c-1"), ("x" * 300, "x" * 128), ("", "fallback"), (None, "fallback"), (7, "fallback")],
)
def test_correlation_id_is_the_value_or_the_fallback_cut_to_128(
    value: object, expected: str
) -> None:
    """A non-empty string is the correlation ID, anything else the fallback; at most 128."""
    assert correlation_id(value, "fallback") == expected
    assert correlation_id(value, lambda: "fallback") == expected


def test_correlation_fallback_is_read_only_when_needed() -> None:
    """A callable fallback is not called when the value is usable."""

    def boom() -> str:
        raise AssertionError("read")

    assert correlation_id("c", boom) == "c"


def test_exports_is_frozen() -> None:
    """Work is built once; nothing changes it afterwards."""
    work = direct.parse({"action": "reconcile"}, make_settings(), make_runtime())
    assert isinstance(work, Exports) and work.tasks == frozenset({"reconcile"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        work.hop = 3  # type: ignore[misc]


def test_wire_body_keeps_the_callers_order_and_os_type_key() -> None:
    """The body is the caller's fields, in the caller's order, ``__os_type`` as sent."""
    inner = {"force": True, "__os_type": "linux", "image_name": "n", "disk_format": "qcow2"}
    _, upload = parse_export({"volume_id": VOLUME, ACTION_KEY: inner})
    assert upload.os_type == "linux" and upload.force is True
    assert json.dumps(upload_body(upload)) == json.dumps({ACTION_KEY: inner})


def test_plan_options_read_back_under_their_wire_keys() -> None:
    """A plan's wire-keyed options become typed options and the same body again."""
    wire = {"image_name": "p", "__os_type": "windows", "force": False}
    assert upload_body(UploadOptions.from_wire(wire)) == {ACTION_KEY: wire}


def test_continuation_body_is_the_export_body() -> None:
    """An order handed on carries exactly the body the export sends, and reads back equal."""
    upload = UploadOptions(
        "n", disk_format="vhd", force=True, order=("force", "image_name", "disk_format")
    )
    order = ExportOrder(VOLUME, upload, policy="p", keep=3)
    event = continuation.build(Exports("timer", "c"), [order])
    [raw] = event[continuation.KEY]["orders"]
    assert raw["body"] == upload_body(upload)
    assert list(raw["body"][ACTION_KEY]) == ["force", "image_name", "disk_format"]
    [back] = continuation.parse(event, make_settings(), make_runtime()).items
    assert back == order


def test_chat_job_model_round_trips() -> None:
    """The chat job event the model builds is the one it parses back."""
    when = make_runtime().clock()
    job = chat_job.ChatJob.model_construct(
        server_id=VOLUME,
        force=True,
        disk_format="qcow2",
        image_name="{server_name}-{volume_name}",
        time=when,
        response_url="https://hooks.slack.com/commands/x",
        user_id="U1",
        channel_id="C1",
        correlation_id="c-9",
    )
    work = chat_job.parse(job.event(), make_settings(), make_runtime())
    [plan] = work.plans
    assert (work.correlation_id, work.response_url) == ("c-9", job.response_url)
    assert (plan.server_ids, dict(plan.options)) == (
        (VOLUME,),
        {"force": True, "disk_format": "qcow2"},
    )
    assert plan.time == when.replace(microsecond=0)
