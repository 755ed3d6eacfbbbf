"""End to end, in process: raw events through the handler (or the app) against the fake
cloud routed by ``responses``; events, the fake's request log and its state come out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import handler
from fakecloud import FakeCloud, Fault, mock_cloud
from function.app import handle, invoke
from function.config import Settings
from tests.harness import (
    ACTION_KEY,
    AK,
    CONFIG_VARS,
    FAULT_EXPORT_PATH,
    PROJECT,
    REGION,
    SK,
    SOURCE,
    TOKEN,
    VOLUME,
    VOLUME_IN_USE,
    VOLUME_UNKNOWN,
    WRONG_SK,
    ZERO,
    FakeContext,
    base_env,
    export_event,
    export_posts,
    image_names,
    new_cloud,
    quick_runtime,
    reset_logging,
    seed_event,
    seed_options,
    signature_of,
    signed_headers,
)

SDK_SIGNED = "content-type;host;user-agent;x-project-id;x-sdk-date"
ENVELOPE_KEYS = {"specversion", "id", "source", "type", "subject", "time", "datacontenttype"}


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts and ends with structlog, its context and the redactor reset."""
    reset_logging()
    yield
    reset_logging()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """``os.environ`` without any variable the function reads (handler.handler reads it)."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def only_event(result: dict[str, Any]) -> dict[str, Any]:
    """The single result event of ``result``."""
    events = result["results"]
    assert isinstance(events, list) and len(events) == 1, result
    event = events[0]
    assert isinstance(event, dict)
    return event


def summary(**counts: int) -> dict[str, int]:
    return {**ZERO, **counts}


def the_image(cloud: FakeCloud) -> dict[str, Any]:
    """The one image the fake holds."""
    images = cloud.state()["images"]
    assert len(images) == 1, images
    image = images[0]
    assert isinstance(image, dict)
    return image


def assert_envelope(event: dict[str, Any], type_: str, subject: str | None) -> None:
    """CloudEvents 1.0 structured-mode attributes with the function's conventions."""
    assert ENVELOPE_KEYS - {"subject"} <= set(event)
    assert event["specversion"] == "1.0"
    assert event["type"] == type_
    assert event["datacontenttype"] == "application/json"
    assert isinstance(event["id"], str) and event["id"]
    assert event.get("subject") == subject
    when = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    assert when.utcoffset() is not None and when.utcoffset() == timezone.utc.utcoffset(None)
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 120


# -- 1. the seed's example --------------------------------------------------------------


def test_seed_example_through_handler_is_accepted(clean_env: pytest.MonkeyPatch) -> None:
    """The seed's example sends exactly the seed's body, signed, and reports the image."""
    for name, value in base_env().items():
        clean_env.setenv(name, value)
    with mock_cloud(new_cloud()) as cloud:
        result = handler.handler(seed_event(), None)

    posts = export_posts(cloud.requests)
    assert len(posts) == 1
    post = posts[0]
    assert post.path == f"/v2/{PROJECT}/volumes/{VOLUME}/action"
    assert post.body == json.dumps({ACTION_KEY: seed_options()}).encode()
    assert post.status == 202 and post.fault is None
    assert post.headers["x-project-id"] == PROJECT
    auth = post.headers["authorization"]
    assert auth.startswith(f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=")
    assert signed_headers(auth) == SDK_SIGNED
    assert "x-security-token" not in post.headers

    image = the_image(cloud)
    assert image["name"] == "sxmatch2"
    event = only_event(result)
    assert_envelope(event, "evs.export.accepted", VOLUME)
    assert event["source"] == SOURCE
    data = event["data"]
    assert data["volume_id"] == VOLUME
    assert data["image_id"] == image["id"]
    assert data["image_name"] == "sxmatch2"
    assert data["status"] == "uploading"
    assert data["disk_format"] == "vhd"
    assert data["container_format"] == "bare"
    assert data["size_gb"] == 40
    assert data["request_id"] == post.request_id
    assert data["trigger"] == "direct"
    assert isinstance(data["correlation_id"], str) and data["correlation_id"]
    assert "recovered" not in data
    assert result["summary"] == summary(accepted=1)


def test_seed_example_with_agency_token_signs_the_token(clean_env: pytest.MonkeyPatch) -> None:
    """With the context's temporary credentials, X-Security-Token is sent and signed."""
    clean_env.setenv("REGION", REGION)
    context = FakeContext(token=TOKEN, request_id="fg-req-token-1")
    with mock_cloud(new_cloud(security_token=TOKEN)) as cloud:
        result = handler.handler(seed_event(), context)

    posts = export_posts(cloud.requests)
    assert len(posts) == 1
    assert posts[0].status == 202
    assert posts[0].headers["x-security-token"] == TOKEN
    assert posts[0].headers["x-project-id"] == PROJECT
    assert signed_headers(posts[0].headers["authorization"]) == f"{SDK_SIGNED};x-security-token"
    assert all(r.headers.get("x-security-token") == TOKEN for r in cloud.requests)
    event = only_event(result)
    assert event["type"] == "evs.export.accepted"
    assert event["data"]["image_id"] == the_image(cloud)["id"]
    assert event["data"]["correlation_id"] == "fg-req-token-1"
    assert result["summary"] == summary(accepted=1)


# -- 2. invalid input never reaches the cloud ---------------------------------------------

INNER = f"{ACTION_KEY}."
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("name-too-long", export_event(VOLUME, image_name="a" * 129), INNER + "image_name"),
    ("name-empty", export_event(VOLUME, image_name=""), INNER + "image_name"),
    ("name-leading-space", export_event(VOLUME, image_name=" img"), INNER + "image_name"),
    ("name-trailing-space", export_event(VOLUME, image_name="img "), INNER + "image_name"),
    ("name-bad-char", export_event(VOLUME, image_name="img/01"), INNER + "image_name"),
    ("name-missing", export_event(VOLUME, force=True), INNER + "image_name"),
    ("name-not-string", export_event(VOLUME, image_name=7), INNER + "image_name"),
    (
        "disk-format",
        export_event(VOLUME, image_name="i", disk_format="vmdk"),
        INNER + "disk_format",
    ),
    (
        "container-format",
        export_event(VOLUME, image_name="i", container_format="docker"),
        INNER + "container_format",
    ),
    ("force-string", export_event(VOLUME, image_name="i", force="true"), INNER + "force"),
    ("os-type", export_event(VOLUME, image_name="i", __os_type="macos"), INNER + "__os_type"),
    ("unknown-option", export_event(VOLUME, image_name="i", os_type="linux"), INNER + "os_type"),
    ("unknown-top-key", {**export_event(VOLUME, image_name="i"), "zone": "az1"}, "zone"),
    ("volume-not-uuid", export_event("vol-1", image_name="i"), "volume_id"),
    ("volume-traversal", export_event("../../v2/x", image_name="i"), "volume_id"),
    ("volume-uuid-traversal", export_event(f"{VOLUME}/../x", image_name="i"), "volume_id"),
    ("volume-missing", {ACTION_KEY: {"image_name": "i"}}, "volume_id"),
    ("volume-trailing-newline", export_event(f"{VOLUME}\n", image_name="i"), "volume_id"),
    ("name-trailing-newline", export_event(VOLUME, image_name="img\n"), INNER + "image_name"),
    ("force-null", export_event(VOLUME, image_name="i", force=None), INNER + "force"),
    (
        "disk-format-null",
        export_event(VOLUME, image_name="i", disk_format=None),
        INNER + "disk_format",
    ),
    ("os-type-null", export_event(VOLUME, image_name="i", __os_type=None), INNER + "__os_type"),
    ("options-not-object", {"volume_id": VOLUME, ACTION_KEY: "sxmatch2"}, ACTION_KEY),
]


@pytest.mark.parametrize(
    ("event", "field"), [(e, f) for _, e, f in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_invalid_input_is_rejected_before_any_request(event: dict[str, Any], field: str) -> None:
    """Input breaking a seed rule is rejected naming the field, and nothing is sent."""
    mock = mock_cloud(new_cloud())
    with mock as cloud:
        result = invoke(event, None, env=base_env())
        calls = len(mock.responses.calls)

    event_out = only_event(result)
    assert event_out["type"] == "evs.export.rejected"
    error = event_out["data"]["error"]
    assert error["field"] == field
    assert error["code"] == "InvalidInput"
    assert "http_status" not in error
    assert event_out["data"]["trigger"] == "direct"
    assert result["summary"] == summary(rejected=1)
    assert cloud.requests == []
    assert calls == 0
    assert cloud.state()["images"] == []


# -- 3. the API's own refusals --------------------------------------------------------------


def test_in_use_volume_without_force_is_rejected_with_the_api_code() -> None:
    """An in-use volume exported without force ends rejected with EVS.5400 (HTTP 400)."""
    event = export_event(VOLUME_IN_USE, image_name="web-01-system", disk_format="qcow2")
    with mock_cloud(new_cloud()) as cloud:
        result = invoke(event, None, env=base_env())

    out = only_event(result)
    assert out["type"] == "evs.export.rejected"
    assert out["subject"] == VOLUME_IN_USE
    assert out["data"]["error"]["http_status"] == 400
    assert out["data"]["error"]["code"] == "EVS.5400"
    posts = export_posts(cloud.requests)
    assert [p.status for p in posts] == [400]
    assert out["data"]["request_id"] == posts[0].request_id
    assert cloud.state()["images"] == []
    assert result["summary"] == summary(rejected=1)


def test_unknown_volume_is_rejected_with_the_api_code() -> None:
    """A volume the project does not have ends rejected with EVS.5404 (HTTP 404)."""
    with mock_cloud(new_cloud()) as cloud:
        result = invoke(export_event(VOLUME_UNKNOWN, image_name="ghost"), None, env=base_env())

    out = only_event(result)
    assert out["type"] == "evs.export.rejected"
    assert out["data"]["error"]["http_status"] == 404
    assert out["data"]["error"]["code"] == "EVS.5404"
    assert [p.status for p in export_posts(cloud.requests)] == [404]
    assert cloud.state()["images"] == []


ERROR_BODIES: list[tuple[str, dict[str, Any], str, str]] = [
    ("error-wrapper", {"error": {"code": "EVS.2024", "message": "quota"}}, "EVS.2024", "quota"),
    ("cinder-int-code", {"badRequest": {"code": 400, "message": "Invalid"}}, "400", "Invalid"),
    ("gateway-style", {"error_code": "EVS.0001", "error_msg": "denied"}, "EVS.0001", "denied"),
]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [(b, c, m) for _, b, c, m in ERROR_BODIES],
    ids=[i for i, _, _, _ in ERROR_BODIES],
)
def test_every_documented_error_shape_is_reported(
    body: dict[str, Any], code: str, message: str
) -> None:
    """Error bodies under any wrapper key, with an integer code too, give code and message."""
    cloud = new_cloud()
    cloud.faults.add(Fault(method="POST", path=FAULT_EXPORT_PATH, status=400, body=body))
    with mock_cloud(cloud):
        result = invoke(seed_event(), None, env=base_env())

    error = only_event(result)["data"]["error"]
    assert error == {"code": code, "message": message, "http_status": 400}
    assert len(export_posts(cloud.requests)) == 1
    assert cloud.state()["images"] == []


def test_retry_after_is_waited_out_before_the_export_is_resent() -> None:
    """A 429's Retry-After (seconds) is waited before the next export attempt."""
    cloud = new_cloud()
    cloud.faults.add(Fault(method="POST", path=FAULT_EXPORT_PATH, status=429, retry_after="7"))
    waits: list[float] = []
    clock = [0.0]  # time passes only in the waits

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    runtime = quick_runtime()
    runtime.sleep = sleep
    runtime.monotonic = lambda: clock[0]
    with mock_cloud(cloud):
        result = handle(seed_event(), Settings.from_env(base_env()), runtime)

    assert only_event(result)["type"] == "evs.export.accepted"
    assert [p.status for p in export_posts(cloud.requests)] == [429, 202]
    assert waits and max(waits) >= 7.0
    assert max(waits) <= 30.0


def test_wrong_secret_key_is_rejected_with_the_gateway_code() -> None:
    """A secret key the cloud does not know ends rejected 401 with the gateway's code."""
    with mock_cloud(new_cloud()) as cloud:
        result = invoke(seed_event(), None, env=base_env(HUAWEICLOUD_SDK_SK=WRONG_SK))

    out = only_event(result)
    assert out["type"] == "evs.export.rejected"
    assert out["data"]["error"]["http_status"] == 401
    assert out["data"]["error"]["code"] == "APIGW.0301"
    assert cloud.requests and all(r.status == 401 for r in cloud.requests)
    assert cloud.state()["images"] == []
    assert result["summary"] == summary(rejected=1)


# -- 4. transient faults and ambiguous failures ----------------------------------------------


def run_quick(event: object, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The app with free backoff waits (the Runtime's sleep does nothing)."""
    return handle(event, Settings.from_env(env or base_env()), quick_runtime())


def test_503s_then_429_are_retried_to_one_image() -> None:
    """Two 503s and a 429 on the export are retried; one image, one accepted event."""
    cloud = new_cloud()
    cloud.faults.add(Fault(method="POST", path=FAULT_EXPORT_PATH, status=503, times=2))
    cloud.faults.add(
        Fault(method="POST", path=FAULT_EXPORT_PATH, status=429, retry_after="0", times=1)
    )
    with mock_cloud(cloud):
        result = run_quick(seed_event())

    posts = export_posts(cloud.requests)
    assert [p.status for p in posts] == [503, 503, 429, 202]
    assert [p.fault for p in posts] == ["status", "status", "status", None]
    assert all(p.body == posts[0].body for p in posts)
    image = the_image(cloud)
    out = only_event(result)
    assert out["type"] == "evs.export.accepted"
    assert out["data"]["image_id"] == image["id"]
    assert out["data"]["request_id"] == posts[-1].request_id
    assert result["summary"] == summary(accepted=1)


def test_reset_after_processing_recovers_the_image_without_resending() -> None:
    """A reset after the export was processed is resolved by an IMS lookup, not a resend."""
    cloud = new_cloud()
    cloud.faults.add(Fault(method="POST", path=FAULT_EXPORT_PATH, reset="after"))
    with mock_cloud(cloud):
        result = run_quick(seed_event())

    posts = export_posts(cloud.requests)
    assert len(posts) == 1
    assert posts[0].fault == "reset-after" and posts[0].status == 202
    image = the_image(cloud)
    out = only_event(result)
    assert out["type"] == "evs.export.accepted"
    assert out["data"]["recovered"] is True
    assert out["data"]["image_id"] == image["id"]
    assert out["data"]["image_name"] == "sxmatch2"
    log = cloud.requests
    first_post = log.index(posts[0])
    lookups = [
        i
        for i, r in enumerate(log)
        if i > first_post and r.method == "GET" and r.path == "/v2/cloudimages"
    ]
    assert lookups, [(r.method, r.path) for r in log]
    assert log[lookups[0]].query.get("name") == ["sxmatch2"]
    assert export_posts(log[lookups[0] :]) == []
    assert result["summary"] == summary(accepted=1)


def test_read_timeout_after_processing_recovers_the_image_without_resending() -> None:
    """A read timeout once the export arrived is resolved by an IMS lookup, not a resend."""
    cloud = new_cloud()
    cloud.faults.add(Fault(method="POST", path=FAULT_EXPORT_PATH, latency=3600.0))
    with mock_cloud(cloud):
        result = run_quick(seed_event())

    posts = export_posts(cloud.requests)
    assert [(p.status, p.fault) for p in posts] == [(202, "latency")]
    out = only_event(result)
    assert out["type"] == "evs.export.accepted"
    assert out["data"]["recovered"] is True
    assert out["data"]["image_id"] == the_image(cloud)["id"]


def test_reset_before_processing_looks_up_then_resends_once() -> None:
    """A reset before processing: the lookup finds nothing, the export is sent once more."""
    cloud = new_cloud()
    cloud.faults.add(Fault(method="POST", path=FAULT_EXPORT_PATH, reset="before"))
    with mock_cloud(cloud):
        result = run_quick(seed_event())

    posts = export_posts(cloud.requests)
    assert [(p.status, p.fault) for p in posts] == [(0, "reset-before"), (202, None)]
    log = cloud.requests
    between = log[log.index(posts[0]) + 1 : log.index(posts[1])]
    assert [(r.method, r.path, r.query.get("name")) for r in between] == [
        ("GET", "/v2/cloudimages", ["sxmatch2"])
    ]
    image = the_image(cloud)
    out = only_event(result)
    assert out["type"] == "evs.export.accepted"
    assert out["data"]["image_id"] == image["id"]
    assert "recovered" not in out["data"]


def test_reset_before_does_not_claim_an_older_killed_image_of_the_same_name() -> None:
    """After a reset before processing, an older killed image of that name is not taken for
    this export's result: the export is sent again and the new image is reported."""
    # The duplicate check lets the export go ahead because a killed image does not block
    # the name; the lookup after the ambiguous failure must not then claim that image.
    cloud = new_cloud()
    old = cloud.ims.add_image(
        name="sxmatch2",
        status="killed",
        created_at=datetime.now(timezone.utc) - timedelta(days=1),
    )
    cloud.faults.add(Fault(method="POST", path=FAULT_EXPORT_PATH, reset="before"))
    with mock_cloud(cloud):
        result = run_quick(seed_event())

    posts = export_posts(cloud.requests)
    assert [(p.status, p.fault) for p in posts] == [(0, "reset-before"), (202, None)]
    new = [i for i in cloud.state()["images"] if i["id"] != old.id]
    assert len(new) == 1 and new[0]["name"] == "sxmatch2"
    out = only_event(result)
    assert out["type"] == "evs.export.accepted"
    assert out["data"]["image_id"] == new[0]["id"]
    assert cloud.ims.images[old.id].tags == {}


# -- 5. retries exhausted, and a mixed batch -------------------------------------------------


def test_503_forever_ends_failed_without_an_image() -> None:
    """When every export attempt gets 503, the volume ends failed (503) and no image exists."""
    cloud = new_cloud()
    cloud.faults.add(Fault(method="POST", path=FAULT_EXPORT_PATH, status=503, times=-1))
    settings = Settings.from_env(base_env())
    with mock_cloud(cloud):
        result = handle(seed_event(), settings, quick_runtime())

    out = only_event(result)
    assert out["type"] == "evs.export.failed"
    assert out["data"]["error"]["http_status"] == 503
    assert out["data"]["error"]["code"] == "EVS.5503"
    posts = export_posts(cloud.requests)
    assert len(posts) == settings.max_attempts
    assert all(p.status == 503 for p in posts)
    assert cloud.state()["images"] == []
    assert result["summary"] == summary(failed=1)


def test_mixed_batch_reports_each_volume_in_input_order() -> None:
    """A batch of available, unknown and in-use (no force) volumes: 1 accepted, 2 rejected."""
    batch = {
        "exports": [
            export_event(VOLUME, image_name="batch-available", disk_format="qcow2"),
            export_event(VOLUME_UNKNOWN, image_name="batch-unknown"),
            export_event(VOLUME_IN_USE, image_name="batch-in-use", force=False),
        ]
    }
    with mock_cloud(new_cloud()) as cloud:
        result = run_quick(batch)

    events = result["results"]
    assert [e["subject"] for e in events] == [VOLUME, VOLUME_UNKNOWN, VOLUME_IN_USE]
    assert [e["type"] for e in events] == [
        "evs.export.accepted",
        "evs.export.rejected",
        "evs.export.rejected",
    ]
    assert [e["data"]["image_name"] for e in events] == [
        "batch-available",
        "batch-unknown",
        "batch-in-use",
    ]
    assert events[0]["data"]["image_id"] == the_image(cloud)["id"]
    assert (events[1]["data"]["error"]["http_status"], events[1]["data"]["error"]["code"]) == (
        404,
        "EVS.5404",
    )
    assert (events[2]["data"]["error"]["http_status"], events[2]["data"]["error"]["code"]) == (
        400,
        "EVS.5400",
    )
    assert len({e["data"]["correlation_id"] for e in events}) == 1
    assert len({e["id"] for e in events}) == 3
    assert image_names(cloud) == ["batch-available"]
    assert result["summary"] == summary(accepted=1, rejected=2)


# -- 6. configuration errors -------------------------------------------------------------------

CONFIG_CASES: list[tuple[str, dict[str, str], str]] = [
    ("no-region-no-endpoints", base_env(REGION=""), "REGION"),
    (
        "no-credentials",
        base_env(HUAWEICLOUD_SDK_AK="", HUAWEICLOUD_SDK_SK=""),
        "HUAWEICLOUD_SDK_AK",
    ),
    ("no-project", base_env(PROJECT_ID=""), "PROJECT_ID"),
    ("max-concurrency-abc", base_env(MAX_CONCURRENCY="abc"), "MAX_CONCURRENCY"),
]


@pytest.mark.parametrize(
    ("env", "field"), [(e, f) for _, e, f in CONFIG_CASES], ids=[i for i, _, _ in CONFIG_CASES]
)
def test_configuration_error_names_the_variable_and_sends_nothing(
    env: dict[str, str], field: str
) -> None:
    """Missing or malformed configuration is a rejection naming the variable; no request."""
    mock = mock_cloud(new_cloud())
    with mock as cloud:
        result = invoke(seed_event(), None, env=env)
        calls = len(mock.responses.calls)

    out = only_event(result)
    assert out["type"] == "evs.export.rejected"
    assert out["data"]["error"]["code"] == "ConfigError"
    assert out["data"]["error"]["field"] == field
    assert field in out["data"]["error"]["message"]
    assert out["subject"] == VOLUME
    assert cloud.requests == []
    assert calls == 0
    assert result["summary"] == summary(rejected=1)


# -- 7. logs ---------------------------------------------------------------------------------

LOG_KEYS = (
    "level",
    "timestamp",
    "service",
    "message",
    "cold_start",
    "function_name",
    "function_version",
    "request_id",
    "correlation_id",
)
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_SECRET_OLD = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
RESULT_SECRET = "whsec_cmVzdWx0LXNpZ25pbmcta2V5LTAwMDE="


def test_logs_are_json_lines_with_the_fixed_keys_and_no_secret(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every log line is JSON with the fixed keys, each result is logged once, no secret
    (SK, token, webhook and Slack secrets, request signatures) leaks to logs or results."""
    clean_env.setenv("REGION", REGION)
    clean_env.setenv("WEBHOOK_SECRETS", f"{WEBHOOK_SECRET},{WEBHOOK_SECRET_OLD}")
    clean_env.setenv("SLACK_SIGNING_SECRET", SLACK_SECRET)
    clean_env.setenv("RESULT_WEBHOOK_SECRET", RESULT_SECRET)
    clean_env.setenv("LOG_LEVEL", "DEBUG")
    clean_env.setattr(handler, "_COLD", [True])  # this process's next call is the cold one
    capsys.readouterr()
    with mock_cloud(new_cloud(security_token=TOKEN)) as cloud:
        good = handler.handler(seed_event(), FakeContext(request_id="fg-log-ok"))
        bad = handler.handler(
            export_event(VOLUME, image_name="signed-wrong"),
            FakeContext(sk=WRONG_SK, request_id="fg-log-bad"),
        )
    captured = capsys.readouterr()

    assert only_event(good)["type"] == "evs.export.accepted"
    bad_event = only_event(bad)
    assert bad_event["type"] == "evs.export.rejected"
    assert bad_event["data"]["error"]["http_status"] == 401

    lines = [line for line in captured.out.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]
    for record in records:
        missing = [k for k in LOG_KEYS if k not in record]
        assert not missing, (missing, record)
        assert record["service"] == "evs-export"
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert record["request_id"] in ("fg-log-ok", "fg-log-bad")
        assert record["cold_start"] is (record["request_id"] == "fg-log-ok")
        assert record["correlation_id"] == record["request_id"]
        assert (record["function_name"], record["function_version"]) == ("evs-export", "latest")
        stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        assert stamp.utcoffset() == timedelta(0)
    for result in (good, bad):
        for event in result["results"]:
            logged = [r for r in records if r.get("cloudevent", {}).get("id") == event["id"]]
            assert len(logged) == 1, event["id"]
            assert logged[0]["cloudevent"]["type"] == event["type"]

    signatures = [signature_of(r.headers["authorization"]) for r in cloud.requests]
    assert len(signatures) >= 3
    secrets = [
        SK,
        WRONG_SK,
        TOKEN,
        WEBHOOK_SECRET,
        WEBHOOK_SECRET_OLD,
        SLACK_SECRET,
        RESULT_SECRET,
        *signatures,
    ]
    returned = json.dumps([good, bad])
    for secret in secrets:
        assert secret not in captured.out
        assert secret not in captured.err
        assert secret not in returned


# -- 8. the handler never raises ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field"),
    [(None, "event"), ([], "event"), ("x", "event"), (3, "event"), ({"exports": "x"}, "exports")],
    ids=["none", "list", "string", "number", "exports-not-list"],
)
def test_handler_answers_every_shape_without_raising(
    clean_env: pytest.MonkeyPatch, event: object, field: str
) -> None:
    """Events of no known shape get a result dict (a rejection naming the problem)."""
    for name, value in base_env().items():
        clean_env.setenv(name, value)
    mock = mock_cloud(new_cloud())
    with mock as cloud:
        result = handler.handler(event, None)
        calls = len(mock.responses.calls)

    assert isinstance(result, dict)
    assert set(result) >= {"results", "summary"}
    out = only_event(result)
    assert out["type"] == "evs.export.rejected"
    assert out["data"]["error"]["field"] == field
    assert out["data"]["error"]["code"] != "InternalError"
    assert result["summary"] == summary(rejected=1)
    assert cloud.requests == [] and calls == 0


def test_handler_prefers_context_credentials_over_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """Agency credentials from the context win over HUAWEICLOUD_SDK_* in the environment."""
    for name, value in base_env(HUAWEICLOUD_SDK_SK=WRONG_SK, PROJECT_ID="").items():
        clean_env.setenv(name, value)
    with mock_cloud(new_cloud(security_token=TOKEN)) as cloud:
        result = handler.handler(seed_event(), FakeContext(sk=SK, token=TOKEN))
    assert only_event(result)["type"] == "evs.export.accepted"
    assert export_posts(cloud.requests)[0].headers["x-project-id"] == PROJECT
    assert {r.headers["authorization"].split(",")[0] for r in cloud.requests} == {
        f"SDK-HMAC-SHA256 Access={AK}"
    }
