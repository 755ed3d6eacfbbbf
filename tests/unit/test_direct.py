"""Direct events through the app, and the handler's last line of defence."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import handler
from function import app, log, triggers
from function.cloud.transport import HttpResponse
from function.config import Settings
from function.model import ACTION_KEY
from function.triggers import direct
from tests.unit.fakes import (
    IMAGE,
    PROJECT,
    SK,
    VOLUME,
    VOLUME_2,
    MockTransport,
    ScriptedTransport,
    Sent,
    make_runtime,
    make_settings,
    response,
)

EXPORT_URL = f"https://evs.cn-north-4.myhuaweicloud.com/v2/{PROJECT}/volumes/{VOLUME}/action"
SOURCE = f"urn:fss:cn-north-4:{PROJECT}:function:default:evs-export:latest"
ACCEPTED_BODY = {
    ACTION_KEY: {
        "status": "uploading",
        "size": 40,
        "id": VOLUME,
        "image_id": IMAGE,
        "image_name": "sxmatch2",
        "container_format": "bare",
        "disk_format": "vhd",
    }
}
ZERO = {"accepted": 0, "rejected": 0, "failed": 0, "skipped": 0}


def accepted_answer(req: Sent) -> HttpResponse:
    """The export's 202 for the volume and name of ``req``."""
    volume = urlsplit(req.url).path.split("/")[-2]
    name = json.loads(req.body)[ACTION_KEY]["image_name"]
    body = {ACTION_KEY: {**ACCEPTED_BODY[ACTION_KEY], "id": volume, "image_name": name}}
    return response(202, body, {"X-Request-Id": "req-202"})


def is_export(req: Sent) -> bool:
    """True for the seed's export call, POST {EVS}/v2/{project}/volumes/{id}/action."""
    path = urlsplit(req.url).path
    return req.method == "POST" and path.startswith(f"/v2/{PROJECT}/volumes/")


def fake_cloud(export: HttpResponse | None = None) -> MockTransport:
    """IMS lists no image of any name and accepts tags; EVS answers the export with
    ``export`` (or a 202)."""

    def route(req: Sent) -> HttpResponse:
        path = urlsplit(req.url).path
        if req.method == "GET" and path == "/v2/cloudimages":
            return response(200, {"images": []})
        if is_export(req):
            return export if export is not None else accepted_answer(req)
        if req.method == "POST" and path.endswith("/tags/action") and "/images/" in path:
            return response(204)
        raise AssertionError(f"unexpected request {req.method} {req.url}")

    return MockTransport(route)


def posts(transport: MockTransport) -> list[Sent]:
    """The export requests among everything sent."""
    return [s for s in transport.sent if is_export(s)]


@pytest.fixture(autouse=True)
def log_stream() -> Iterator[io.StringIO]:
    """Log lines of the test, kept out of stdout."""
    stream = io.StringIO()
    log.configure("INFO", stream=stream)
    yield stream


def item(volume_id: str = VOLUME, name: str = "img-1", **options: object) -> dict[str, Any]:
    return {"volume_id": volume_id, ACTION_KEY: {"image_name": name, **options}}


def run(
    event: object,
    settings: Settings | None = None,
    transport: MockTransport | None = None,
) -> tuple[dict[str, Any], MockTransport]:
    """app.handle with fixed runtime and a scripted transport (empty: any request fails)."""
    transport = transport if transport is not None else ScriptedTransport()
    result = app.handle(event, settings or make_settings(), make_runtime(), transport)
    return result, transport


def errors(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["data"]["error"] for e in result["results"]]


@pytest.mark.parametrize(
    "event",
    [None, [], [item()], "x", "{}", 3, 1.5, True, {}, {"foo": 1}, {"image_name": "a"}],
    ids=repr,
)
def test_unsupported_event_rejected(event: object) -> None:
    """An event of no known shape yields one rejected event (UnsupportedEvent, field event)."""
    result, transport = run(event)
    assert len(result["results"]) == 1
    ev = result["results"][0]
    assert ev["type"] == "evs.export.rejected"
    assert ev["data"]["error"]["code"] == "UnsupportedEvent"
    assert ev["data"]["error"]["field"] == "event"
    assert ev["data"]["trigger"] == "direct"
    assert ev["data"]["correlation_id"] == "req-0001"
    assert result["summary"] == {**ZERO, "rejected": 1}
    assert transport.sent == []


def test_single_export_accepted() -> None:
    """A valid direct export is POSTed once, byte for byte, and reported accepted."""
    event = {
        "volume_id": VOLUME,
        ACTION_KEY: {
            "image_name": "sxmatch2",
            "force": True,
            "container_format": "bare",
            "disk_format": "vhd",
            "__os_type": "linux",
        },
    }
    transport = fake_cloud()
    result, _ = run(event, transport=transport)
    lookup = transport.sent[0]
    assert lookup.method == "GET"
    assert parse_qs(urlsplit(lookup.url).query)["name"] == ["sxmatch2"]
    [sent] = posts(transport)
    assert (sent.method, sent.url) == ("POST", EXPORT_URL)
    assert sent.body == (
        b'{"os-volume_upload_image": {"image_name": "sxmatch2", "force": true, '
        b'"container_format": "bare", "disk_format": "vhd", "__os_type": "linux"}}'
    )
    [ev] = result["results"]
    assert ev["type"] == "evs.export.accepted"
    assert ev["source"] == SOURCE
    assert ev["subject"] == VOLUME
    assert ev["id"] == "id-1"
    assert ev["time"].startswith("2025-01-01T00:00:0")
    assert ev["time"].endswith("Z")
    assert ev["data"] == {
        "volume_id": VOLUME,
        "image_name": "sxmatch2",
        "image_id": IMAGE,
        "status": "uploading",
        "disk_format": "vhd",
        "container_format": "bare",
        "size_gb": 40,
        "request_id": "req-202",
        "trigger": "direct",
        "correlation_id": "req-0001",
    }
    assert result["summary"] == {**ZERO, "accepted": 1}


def test_results_logged_as_json_lines(log_stream: io.StringIO) -> None:
    """Each result event is written to the log as one JSON line."""
    run(None)
    records = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    logged = [r["cloudevent"] for r in records if "cloudevent" in r]
    assert [e["type"] for e in logged] == ["evs.export.rejected"]
    assert records[-1]["message"] == "invocation summary"


def test_single_invalid_export_rejected_without_sending() -> None:
    """An invalid direct export is rejected naming the field; nothing is sent."""
    result, transport = run(item(disk_format="iso"))
    [ev] = result["results"]
    assert ev["type"] == "evs.export.rejected"
    assert ev["subject"] == VOLUME
    assert ev["data"]["error"]["field"] == f"{ACTION_KEY}.disk_format"
    assert transport.sent == []


def test_api_4xx_rejected_with_status() -> None:
    """A 4xx answer to the export is a rejected event with code, status and request id."""
    body = {"badRequest": {"code": 400, "message": "Invalid volume: in-use"}}
    transport = fake_cloud(response(400, body, {"X-Request-Id": "req-400"}))
    result, _ = run(item(), transport=transport)
    [ev] = result["results"]
    assert ev["type"] == "evs.export.rejected"
    assert ev["data"]["error"] == {
        "code": "400",
        "message": "Invalid volume: in-use",
        "http_status": 400,
    }
    assert ev["data"]["request_id"] == "req-400"
    assert len(posts(transport)) == 1


def test_correlation_id_taken_from_event() -> None:
    """A well-formed correlation_id in the event is carried into every result."""
    result, _ = run({**item(disk_format="iso"), "correlation_id": "ticket-42"})
    assert result["results"][0]["data"]["correlation_id"] == "ticket-42"


def test_malformed_correlation_id_replaced_by_request_id() -> None:
    """A correlation_id with disallowed characters falls back to the request ID."""
    result, _ = run({**item(disk_format="iso"), "correlation_id": "a b\n"})
    assert result["results"][0]["data"]["correlation_id"] == "req-0001"


# --- batches ----------------------------------------------------------------------------------


def test_batch_with_one_invalid_item_rejects_all() -> None:
    """One invalid item rejects the whole batch; the bad one names exports[i]; nothing is sent."""
    event = {
        "exports": [
            item(VOLUME, "a"),
            item(VOLUME_2, "b", disk_format="iso"),
            item("36369c5d-384d-4e64-b37a-56d898769362", "c"),
        ]
    }
    result, transport = run(event)
    assert transport.sent == []
    assert [e["type"] for e in result["results"]] == ["evs.export.rejected"] * 3
    bad_field = f"exports[1].{ACTION_KEY}.disk_format"
    errs = errors(result)
    assert errs[1]["field"] == bad_field
    assert errs[1]["code"] == "InvalidInput"
    for other in (errs[0], errs[2]):
        assert other["code"] == "BatchRejected"
        assert other["field"] == bad_field
    assert [e.get("subject") for e in result["results"]] == [
        VOLUME,
        VOLUME_2,
        "36369c5d-384d-4e64-b37a-56d898769362",
    ]
    assert result["summary"] == {**ZERO, "rejected": 3}


def test_batch_item_not_an_object_named_by_position() -> None:
    """A batch item that is not an object is rejected as exports[i]."""
    result, transport = run({"exports": [item(), "oops"]})
    assert errors(result)[1]["field"] == "exports[1]"
    assert errors(result)[0]["code"] == "BatchRejected"
    assert transport.sent == []


@pytest.mark.parametrize("second", [VOLUME, VOLUME.upper()])
def test_duplicate_volume_in_batch_rejected(second: str) -> None:
    """A volume named twice (in any letter case) rejects the batch, naming the repeat."""
    result, transport = run({"exports": [item(VOLUME, "a"), item(second, "b")]})
    assert transport.sent == []
    errs = errors(result)
    assert errs[1]["field"] == "exports[1].volume_id"
    assert "exports[0]" in errs[1]["message"]
    assert errs[0]["code"] == "BatchRejected"
    assert result["summary"]["rejected"] == 2


@pytest.mark.parametrize(
    ("exports", "words"),
    [
        ({"volume_id": VOLUME}, "must be a list"),
        ("x", "must be a list"),
        (None, "must be a list"),
        ([], "empty"),
        ([item()] * (direct.MAX_BATCH + 1), "at most 1000"),
    ],
    ids=["object", "string", "null", "empty", "too-many"],
)
def test_bad_exports_list_rejected(exports: object, words: str) -> None:
    """exports that is not a list, is empty or holds more than 1000 items is rejected."""
    result, transport = run({"exports": exports})
    [ev] = result["results"]
    assert ev["type"] == "evs.export.rejected"
    assert ev["data"]["error"]["field"] == "exports"
    assert words in ev["data"]["error"]["message"]
    assert transport.sent == []


def test_batch_with_unknown_key_rejected() -> None:
    """A key beside exports is rejected by name."""
    result, transport = run({"exports": [item()], "volume_id": VOLUME})
    assert errors(result) == [
        {
            "code": "InvalidInput",
            "message": "volume_id is not a known field of a batch",
            "field": "volume_id",
        }
    ]
    assert transport.sent == []


def test_valid_batch_exports_each_volume_in_order() -> None:
    """A valid batch sends one POST per volume and reports them in the caller's order."""
    transport = fake_cloud()
    result, _ = run({"exports": [item(VOLUME, "a"), item(VOLUME_2, "b")]}, transport=transport)
    assert sorted(s.url.split("/")[-2] for s in posts(transport)) == [VOLUME, VOLUME_2]
    assert [e["subject"] for e in result["results"]] == [VOLUME, VOLUME_2]
    assert [e["data"]["image_name"] for e in result["results"]] == ["a", "b"]
    assert result["summary"] == {**ZERO, "accepted": 2}


# --- configuration --------------------------------------------------------------------------


def test_missing_credentials_rejects_without_sending() -> None:
    """Without credentials every export is rejected naming HUAWEICLOUD_SDK_AK; nothing is sent."""
    settings = make_settings(credentials=None)
    result, transport = run({"exports": [item(VOLUME, "a"), item(VOLUME_2, "b")]}, settings)
    assert transport.sent == []
    for ev in result["results"]:
        assert ev["type"] == "evs.export.rejected"
        assert ev["data"]["error"]["code"] == "ConfigError"
        assert ev["data"]["error"]["field"] == "HUAWEICLOUD_SDK_AK"


def test_config_problem_rejects_naming_variable() -> None:
    """A malformed variable rejects the export naming that variable; nothing is sent."""
    settings = Settings.from_env(
        {
            "REGION": "cn-north-4",
            "PROJECT_ID": PROJECT,
            "HUAWEICLOUD_SDK_AK": "AK",
            "HUAWEICLOUD_SDK_SK": "SK",
            "MAX_CONCURRENCY": "abc",
        }
    )
    result, transport = run(item(), settings)
    assert errors(result)[0]["field"] == "MAX_CONCURRENCY"
    assert transport.sent == []


def test_missing_project_rejects_naming_project_id() -> None:
    """Without a project ID the export is rejected naming PROJECT_ID."""
    result, transport = run(item(), make_settings(project_id=None))
    assert errors(result)[0]["field"] == "PROJECT_ID"
    assert transport.sent == []


def test_missing_region_rejects_naming_region() -> None:
    """Without REGION or endpoint overrides the export is rejected naming REGION."""
    result, transport = run(item(), make_settings(region=None))
    assert errors(result)[0]["field"] == "REGION"
    assert transport.sent == []


# --- app.invoke and handler.handler -------------------------------------------------------------


class Context:
    """A FunctionGraph context with agency credentials."""

    def getRequestID(self) -> str:
        return "fg-req-1"

    def getRemainingTimeInMilliSeconds(self) -> int:
        return 60_000

    def getSecurityAccessKey(self) -> str:
        return "CTXAK"

    def getSecuritySecretKey(self) -> str:
        return SK

    def getSecurityToken(self) -> str:
        return "CTX-TOKEN-123456"

    def getFunctionName(self) -> str:
        return "evs-export"

    def getVersion(self) -> str:
        return "v1"


def test_invoke_with_context_sends_with_agency_token(capsys: pytest.CaptureFixture[str]) -> None:
    """invoke reads the context's agency credentials and request ID and never logs them."""
    transport = fake_cloud()
    env = {"REGION": "cn-north-4", "PROJECT_ID": PROJECT}
    result = app.invoke(item(), Context(), env=env, transport=transport)
    assert result["summary"] == {**ZERO, "accepted": 1}
    for sent in transport.sent:
        assert sent.headers["X-Security-Token"] == "CTX-TOKEN-123456"
        assert "Access=CTXAK," in sent.headers["Authorization"]
    assert result["results"][0]["data"]["correlation_id"] == "fg-req-1"
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines()]
    assert records
    assert all(r["request_id"] == "fg-req-1" for r in records)
    assert all(r["function_version"] == "v1" for r in records)
    assert SK not in out
    assert "CTX-TOKEN-123456" not in out


def test_handler_never_raises(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """If the app raises, the handler returns one failed InternalError result instead."""

    def boom(event: object, context: object, *, cold_start: bool = False) -> dict[str, Any]:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(app, "invoke", boom)
    result = handler.handler({"volume_id": VOLUME}, None)
    [ev] = result["results"]
    assert ev["specversion"] == "1.0"
    assert ev["type"] == "evs.export.failed"
    assert ev["data"]["error"]["code"] == "InternalError"
    assert ev["data"]["error"]["message"].startswith("unexpected RuntimeError")
    assert "kaboom" not in ev["data"]["error"]["message"]
    assert ev["time"].endswith("Z")
    assert result["summary"] == {"accepted": 0, "rejected": 0, "failed": 1, "skipped": 0}
    [line] = capsys.readouterr().out.splitlines()
    logged = json.loads(line)
    assert {k: logged[k] for k in ("level", "service", "message")} == {
        "level": "ERROR",
        "service": "evs-export",
        "message": "handler crashed",
    }
    assert logged["error"]["code"] == "InternalError"
    assert logged["error"]["message"].startswith("unexpected RuntimeError")
    assert {"timestamp", "request_id", "correlation_id", "cold_start"} <= set(logged)


def test_handler_returns_rejection_for_null_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real handler with context None turns a null event into a rejected result."""
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    result = handler.handler(None, None)
    assert [e["type"] for e in result["results"]] == ["evs.export.rejected"]
    assert result["results"][0]["data"]["error"]["code"] == "UnsupportedEvent"


# --- routing: one ordered list of trigger modules ---------------------------------------------

APIG = {"httpMethod": "POST", "requestContext": {}, "headers": {}, "body": ""}
ROUTED = [
    (APIG, "http"),
    ({**APIG, "trigger_type": "TIMER", "volume_id": VOLUME}, "http"),
    ({"trigger_type": "TIMER", "user_event": "{}", "cts": {}}, "timer"),
    ({"cts": {}, "volume_id": VOLUME}, "cts"),
    ({triggers.CHAT_JOB_KEY: {}, triggers.CONTINUATION_KEY: {}}, "chat_job"),
    ({triggers.CONTINUATION_KEY: {}, "volume_id": VOLUME}, "continuation"),
    ({"volume_id": VOLUME}, "direct"),
    ({ACTION_KEY: {}}, "direct"),
    ({"exports": []}, "direct"),
    ({"action": "reconcile"}, "direct"),
    ({"action": "decommission", "server_id": VOLUME}, "direct"),
    ({"action": None}, "direct"),
]


@pytest.mark.parametrize(("event", "name"), ROUTED, ids=repr)
def test_route_takes_the_first_module_whose_matches_holds(event: object, name: str) -> None:
    """The router asks each module of ORDER in turn; the first that matches gets the event."""
    found = triggers.route(event)
    assert found is triggers.trigger(name)


@pytest.mark.parametrize("event", [None, [], "x", {}, {"foo": 1}, {"image_name": "a"}], ids=repr)
def test_route_finds_no_trigger_for_unknown_shapes(event: object) -> None:
    """A shape no module matches routes nowhere (the app rejects it as UnsupportedEvent)."""
    assert triggers.route(event) is None


@pytest.mark.parametrize("name", triggers.ORDER)
def test_every_routed_module_has_the_trigger_shape(name: str) -> None:
    """Each module in ORDER exposes NAME, matches and parse."""
    module = triggers.trigger(name)
    assert isinstance(module.NAME, str)
    assert callable(module.matches)
    assert callable(module.parse)


def test_direct_matches_any_action() -> None:
    """direct.matches agrees with the routing order: any ``action`` is direct's to reject."""
    assert direct.matches({"action": "decommission"})
    assert direct.matches({"action": "reconcile"})
    assert not direct.matches({"correlation_id": "x"})


def test_direct_request_is_an_export_a_batch_or_a_reconcile() -> None:
    """is_request (a webhook body's test) takes an export, a batch or a reconcile only."""
    bodies: list[dict[str, Any]] = [
        {"volume_id": VOLUME},
        {ACTION_KEY: {}},
        {"exports": []},
        {"action": "reconcile"},
    ]
    for body in bodies:
        assert direct.is_request(body) and direct.matches(body)
    others: list[object] = [{"action": "decommission"}, {"action": None}, [], None]
    for other in others:
        assert not direct.is_request(other)
