"""The triggers end to end: API Gateway events (Standard Webhooks and Slack), CTS traces and
the asynchronous half of Slack commands, through ``function.app.handle`` against the
in-process fake cloud, with the clock frozen so that official signature vectors can be used.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import pytest

from fakecloud import FakeCloud, ManualClock, RecordedRequest, mock_cloud
from function import app
from function.config import Settings
from function.runtime import Runtime
from function.signatures import sign_slack, sign_standard_webhook, standard_webhook_headers
from tests.harness import fake_cloud
from tests.support import AK as AK
from tests.support import PROJECT as PROJECT
from tests.support import REGION as REGION
from tests.support import SK as SK

FUNCTION_URN = f"urn:fss:{REGION}:{PROJECT}:function:default:evs-export:latest"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + base64.b64encode(b"rotation: the other secret, 32B").decode()
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_USER = "U2CERLKJA"
SLACK_CHANNEL = "G8PSS9T3V"
NOW = datetime(2026, 11, 25, 18, 0, tzinfo=timezone.utc)  # 2026-11-26 02:00 at +08:00

SERVER = "b6d1f0c2-3e4a-4f5b-9c8d-1a2b3c4d5e6f"
SYSTEM_DISK = "0f4c7e2a-9b1d-4c3e-8a6f-2d5b7c9e1a34"
DATA_DISK = "7a2e9d41-5c83-4f6b-b1e0-93d8c4a5f267"
LOOSE_VOLUME = "16369c5d-384d-4e64-b37a-56d898769362"
PLAIN_SERVER = "c0ffee00-1111-4222-8333-444455556666"
PLAIN_DISK = "d15c0000-aaaa-4bbb-8ccc-dddddddddddd"
IMAGE = "8d0b1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4"

# PLATFORM §5.1 and §5.2: the official vectors.
WH_VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
WH_VECTOR_TS = 1614265330
WH_VECTOR_BODY = b'{"test": 2432232314}'
WH_VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
WH_VECTOR_BAD_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
SLACK_VECTOR_TS = 1531420618
SLACK_VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_VECTOR_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
RESPONSE_URL = "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"

ZERO = {"accepted": 0, "rejected": 0, "failed": 0, "skipped": 0}


# -- helpers -------------------------------------------------------------------------------


def at(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, timezone.utc)


def make_env(**extra: str | None) -> dict[str, str]:
    """The function's environment for the in-process fake (default endpoints); ``None``
    removes a variable."""
    env = {
        "REGION": REGION,
        "PROJECT_ID": PROJECT,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "CHAT_ALLOWED_USERS": SLACK_USER,
        "FUNCTION_URN": FUNCTION_URN,
        "MAX_REQUESTS_PER_SECOND": "1000",
    }
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(event: object, env: Mapping[str, str], clock: Callable[[], datetime]) -> dict[str, Any]:
    """One invocation with the clock frozen at ``clock()`` and no real sleeping."""
    runtime = Runtime(clock=clock, sleep=lambda s: None)
    return app.handle(event, Settings.from_env(env), runtime)


def add_web01(
    cloud: FakeCloud,
    *,
    tags: list[str] | None = None,
    system: tuple[str, str, int] = ("web-01-system", "in-use", 40),
    data: tuple[str, str, int] = ("web-01-logs", "in-use", 100),
    status: str = "SHUTOFF",
) -> None:
    """Server SERVER ("web-01", stopped unless ``status`` says otherwise) with its system
    disk on /dev/vda and a data disk on /dev/vdb, each given as (name, status, size)."""
    cloud.ecs.add_server(SERVER, "web-01", tags=tags, status=status)
    for volume, (name, status, size), device in (
        (SYSTEM_DISK, system, "/dev/vda"),
        (DATA_DISK, data, "/dev/vdb"),
    ):
        cloud.evs.add_volume(
            volume,
            name,
            status,
            size,
            device == "/dev/vda",
            attachments=[{"server_id": SERVER, "device": device}],
        )


def new_cloud(clock: Callable[[], datetime]) -> FakeCloud:
    """A fake with server SERVER (tagged evs-export=on-stop; a system and a data disk), a
    loose volume, and an untagged server PLAIN_SERVER with one disk."""
    cloud = fake_cloud(clock)
    add_web01(cloud, tags=["evs-export=on-stop", "env=demo"])
    cloud.ecs.add_server(PLAIN_SERVER, "db-02", tags=["env=demo"], status="SHUTOFF")
    cloud.evs.add_volume(LOOSE_VOLUME, "app-data-archive", "available", 40, False)
    cloud.evs.add_volume(
        PLAIN_DISK,
        "db-02-system",
        "in-use",
        40,
        True,
        attachments=[{"server_id": PLAIN_SERVER, "device": "/dev/vda"}],
    )
    return cloud


def apig_event(
    body: bytes,
    headers: Mapping[str, str],
    *,
    encoded: bool = True,
    method: str = "POST",
    path: str = "/evs-export",
) -> dict[str, Any]:
    """An APIG trigger event (PLATFORM §2.2); the body is base64 when ``encoded``."""
    return {
        "body": base64.b64encode(body).decode() if encoded else body.decode(),
        "requestContext": {"apiId": "api-1", "requestId": "apig-req-1", "stage": "RELEASE"},
        "queryStringParameters": {},
        "httpMethod": method,
        "pathParameters": {},
        "headers": {"host": "evs-export.example.com", "x-real-ip": "203.0.113.7", **headers},
        "path": path,
        "isBase64Encoded": encoded,
    }


def webhook_event(
    payload: object,
    *,
    now: datetime = NOW,
    msg_id: str = "msg_decommission_0001",
    secret: str = WEBHOOK_SECRET,
    encoded: bool = True,
) -> dict[str, Any]:
    """A Standard Webhooks delivery signed at ``now``."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = standard_webhook_headers(secret, msg_id, int(now.timestamp()), body)
    return apig_event(body, {"content-type": "application/json", **headers}, encoded=encoded)


def slack_form(text: str, *, user: str = SLACK_USER, channel: str = SLACK_CHANNEL) -> bytes:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": "T1DC2JH3J",
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": "ops",
            "user_id": user,
            "user_name": "roadrunner",
            "command": "/evs-export",
            "text": text,
            "api_app_id": "A0APP",
            "response_url": RESPONSE_URL,
            "trigger_id": "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        }
    ).encode()


def slack_event(body: bytes, *, now: datetime = NOW, secret: str = SLACK_SECRET) -> dict[str, Any]:
    """A Slack slash command through APIG, signed at ``now``."""
    ts = int(now.timestamp())
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": str(ts),
        "x-slack-signature": sign_slack(secret, ts, body),
    }
    return apig_event(body, headers)


def body_of(response: Mapping[str, Any]) -> Any:
    text = response["body"]
    assert isinstance(text, str)
    return json.loads(text) if text else None


def export_posts(cloud: FakeCloud) -> list[RecordedRequest]:
    return [
        r
        for r in cloud.requests
        if r.method == "POST" and "/volumes/" in r.path and r.path.endswith("/action")
    ]


def exported_bodies(cloud: FakeCloud) -> dict[str, dict[str, Any]]:
    """Per exported volume ID, the ``os-volume_upload_image`` body it was sent."""
    out: dict[str, dict[str, Any]] = {}
    for req in export_posts(cloud):
        volume_id = req.path.rstrip("/").split("/")[-2]
        out[volume_id] = req.json()["os-volume_upload_image"]
    return out


OUTCOME_TYPES = tuple(
    f"evs.export.{kind}" for kind in ("accepted", "rejected", "failed", "skipped", "deferred")
)


def outcome_events(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-volume outcome events of a result (not life-cycle reports such as completed)."""
    return [e for e in result["results"] if e["type"] in OUTCOME_TYPES]


def kinds(result: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """(volume ID, outcome) of every outcome event, sorted."""
    return sorted(
        (e["data"]["volume_id"], e["type"].removeprefix("evs.export."))
        for e in outcome_events(result)
    )


@pytest.fixture(autouse=True)
def quiet_log(log_buffer: io.StringIO) -> io.StringIO:
    """The function's JSON log lines go to a buffer (tests/conftest.py resets logging)."""
    return log_buffer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def cloud(clock: ManualClock) -> Iterator[FakeCloud]:
    with mock_cloud(new_cloud(clock)) as fake:
        yield fake


# -- official vectors through the triggers -------------------------------------------------


def test_slack_vector_is_verified_through_apig_and_answers_help() -> None:
    """The official Slack vector, at its own timestamp, passes APIG → Slack and gets the help."""
    frozen = at(SLACK_VECTOR_TS)
    assert sign_slack(SLACK_SECRET, SLACK_VECTOR_TS, SLACK_VECTOR_BODY) == SLACK_VECTOR_SIG
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": str(SLACK_VECTOR_TS),
        "x-slack-signature": SLACK_VECTOR_SIG,
    }
    with mock_cloud(new_cloud(lambda: frozen)) as fake:
        response = run(apig_event(SLACK_VECTOR_BODY, headers), make_env(), lambda: frozen)
    assert response["statusCode"] == 200
    message = body_of(response)
    assert message["response_type"] == "ephemeral"
    assert "/webhook-collect status &lt;image_id&gt;" in message["text"]
    assert "/webhook-collect help" in message["text"]
    assert fake.requests == []


@pytest.mark.parametrize(
    ("offset", "status"), [(-300, 200), (300, 200), (301, 401), (-301, 401), (3600, 401)]
)
def test_slack_vector_window_is_five_minutes_either_way(offset: int, status: int) -> None:
    """The Slack vector is accepted up to 300 s from its timestamp and 401 one second past."""
    frozen = at(SLACK_VECTOR_TS + offset)
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": str(SLACK_VECTOR_TS),
        "x-slack-signature": SLACK_VECTOR_SIG,
    }
    with mock_cloud(new_cloud(lambda: frozen)) as fake:
        response = run(apig_event(SLACK_VECTOR_BODY, headers), make_env(), lambda: frozen)
    assert response["statusCode"] == status
    if status == 401:
        assert body_of(response)["error"]["code"] == "Unauthorized"
    assert fake.requests == []


def test_standard_webhooks_vector_verifies_then_is_an_unknown_shape() -> None:
    """The official Standard Webhooks vector passes verification but its body is a 400."""
    frozen = at(WH_VECTOR_TS)
    assert sign_standard_webhook(WEBHOOK_SECRET, WH_VECTOR_ID, WH_VECTOR_TS, WH_VECTOR_BODY) == (
        WH_VECTOR_SIG
    )
    headers = {
        "content-type": "application/json",
        "webhook-id": WH_VECTOR_ID,
        "webhook-timestamp": str(WH_VECTOR_TS),
        "webhook-signature": WH_VECTOR_SIG,
    }
    with mock_cloud(new_cloud(lambda: frozen)) as fake:
        response = run(apig_event(WH_VECTOR_BODY, headers), make_env(), lambda: frozen)
    assert response["statusCode"] == 400
    error = body_of(response)["error"]
    assert error["code"] == "UnknownShape"
    assert error["field"] == "body"
    assert "decommission" in error["message"]
    assert fake.requests == []


def test_standard_webhooks_vector_with_last_byte_changed_is_401() -> None:
    """The vector's ``...1OA=`` variant is refused with 401."""
    frozen = at(WH_VECTOR_TS)
    headers = {
        "content-type": "application/json",
        "webhook-id": WH_VECTOR_ID,
        "webhook-timestamp": str(WH_VECTOR_TS),
        "webhook-signature": WH_VECTOR_BAD_SIG,
    }
    with mock_cloud(new_cloud(lambda: frozen)) as fake:
        response = run(apig_event(WH_VECTOR_BODY, headers), make_env(), lambda: frozen)
    assert response["statusCode"] == 401
    assert fake.requests == []


# -- webhook: signatures -------------------------------------------------------------------

DECOMMISSION = {"action": "decommission", "server_id": SERVER}


def _without(header: str) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        del event["headers"][header]

    return mutate


def _drop_all(event: dict[str, Any]) -> None:
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        del event["headers"][name]


def _tamper(event: dict[str, Any]) -> None:
    body = {**DECOMMISSION, "server_id": PLAIN_SERVER}
    event["body"] = base64.b64encode(json.dumps(body).encode()).decode()


def _resign(
    *, ts: int | None = None, secret: str = WEBHOOK_SECRET, over: str = "decoded"
) -> Callable[[dict[str, Any]], None]:
    """Sign again: at ``ts``, with ``secret``, over the decoded body or over the text that
    APIG delivered (``over="delivered"``)."""

    def mutate(event: dict[str, Any]) -> None:
        headers = event["headers"]
        stamp = int(headers["webhook-timestamp"]) if ts is None else ts
        delivered = str(event["body"]).encode()
        decoded = base64.b64decode(delivered) if event["isBase64Encoded"] else delivered
        signed = decoded if over == "decoded" else delivered
        if over == "base64":
            signed = base64.b64encode(decoded)
        headers["webhook-timestamp"] = str(stamp)
        headers["webhook-signature"] = sign_standard_webhook(
            secret, headers["webhook-id"], stamp, signed
        )

    return mutate


def _v1a_only(event: dict[str, Any]) -> None:
    value = event["headers"]["webhook-signature"]
    event["headers"]["webhook-signature"] = "v1a," + value.partition(",")[2]


SIGNATURE_FAILURES: dict[str, tuple[Callable[[dict[str, Any]], None], bool]] = {
    # name: (mutation, base64 body?)
    "no-webhook-headers": (_drop_all, True),
    "missing-webhook-id": (_without("webhook-id"), True),
    "missing-webhook-timestamp": (_without("webhook-timestamp"), True),
    "missing-webhook-signature": (_without("webhook-signature"), True),
    "wrong-secret": (_resign(secret=OTHER_SECRET), True),
    "stale-301s": (_resign(ts=int(NOW.timestamp()) - 301), True),
    "stale-1h": (_resign(ts=int(NOW.timestamp()) - 3600), True),
    "future-301s": (_resign(ts=int(NOW.timestamp()) + 301), True),
    "tampered-body": (_tamper, True),
    "base64-signed-over-base64-text": (_resign(over="delivered"), True),
    "plain-signed-over-base64-of-body": (_resign(over="base64"), False),
    "only-v1a-signature": (_v1a_only, True),
}


@pytest.mark.parametrize("case", sorted(SIGNATURE_FAILURES))
def test_webhook_signature_failure_is_401_and_exports_nothing(
    case: str, cloud: FakeCloud, clock: ManualClock
) -> None:
    """Every signature failure of a decommission webhook is 401 without detail, no request."""
    mutate, encoded = SIGNATURE_FAILURES[case]
    event = webhook_event(DECOMMISSION, encoded=encoded)
    mutate(event)
    response = run(event, make_env(), clock)
    assert response["statusCode"] == 401
    error = body_of(response)["error"]
    assert error == {"code": "Unauthorized", "message": error["message"]}  # no reason given
    assert "secret" not in error["message"]
    assert cloud.requests == []
    assert cloud.ims.images == {}


def test_webhook_without_configured_secrets_is_401(cloud: FakeCloud, clock: ManualClock) -> None:
    """With WEBHOOK_SECRETS unset no delivery is trusted: 401, nothing sent."""
    response = run(webhook_event(DECOMMISSION), make_env(WEBHOOK_SECRETS=None), clock)
    assert response["statusCode"] == 401
    assert cloud.requests == []


@pytest.mark.parametrize("encoded", [True, False], ids=["base64-body", "plain-body"])
def test_webhook_verifies_the_decoded_body_either_encoding(
    encoded: bool, cloud: FakeCloud, clock: ManualClock
) -> None:
    """A body signed over its bytes is accepted whether APIG base64-encoded it or not."""
    response = run(webhook_event(DECOMMISSION, encoded=encoded), make_env(), clock)
    assert response["statusCode"] == 202
    assert body_of(response)["summary"] == {**ZERO, "accepted": 2}


@pytest.mark.parametrize("signer", ["old", "new"])
def test_webhook_secret_rotation_accepts_either_secret(
    signer: str, cloud: FakeCloud, clock: ManualClock
) -> None:
    """WEBHOOK_SECRETS="old,new" accepts a delivery signed with either secret."""
    secret = OTHER_SECRET if signer == "old" else WEBHOOK_SECRET
    env = make_env(WEBHOOK_SECRETS=f"{OTHER_SECRET},{WEBHOOK_SECRET}")
    response = run(webhook_event(DECOMMISSION, secret=secret), env, clock)
    assert response["statusCode"] == 202
    assert body_of(response)["summary"] == {**ZERO, "accepted": 2}


def test_webhook_rotation_still_refuses_a_third_secret(
    cloud: FakeCloud, clock: ManualClock
) -> None:
    """During rotation a secret outside WEBHOOK_SECRETS is still 401."""
    third = "whsec_" + base64.b64encode(b"a third secret nobody configured").decode()
    env = make_env(WEBHOOK_SECRETS=f"{OTHER_SECRET},{WEBHOOK_SECRET}")
    response = run(webhook_event(DECOMMISSION, secret=third), env, clock)
    assert response["statusCode"] == 401
    assert cloud.requests == []


# -- webhook: bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        (b'{"action": "decommission", "server_id": ', "InvalidJson", "body"),
        (b"", "InvalidJson", "body"),
        (b'{"action": "reboot", "server_id": "x"}', "UnknownShape", "body"),
        (b"[1, 2, 3]", "UnknownShape", "body"),
        (b'{"action": "decommission", "server_id": "web-01"}', None, "server_id"),
        (b'{"action": "decommission", "server_id": "' + SERVER.encode() + b'", "x": 1}', None, "x"),
        (
            b'{"action": "decommission", "server_id": "' + SERVER.encode() + b'", "force": "yes"}',
            None,
            "force",
        ),
        (
            b'{"action": "decommission", "server_id": "'
            + SERVER.encode()
            + b'", "image_name": "{hostname}"}',
            None,
            "image_name",
        ),
    ],
    ids=[
        "truncated-json",
        "empty-body",
        "unknown-action",
        "json-array",
        "non-uuid-server",
        "unknown-key",
        "non-boolean-force",
        "unknown-template-field",
    ],
)
def test_webhook_body_problem_is_400_naming_the_field(
    payload: bytes, code: str | None, field: str, cloud: FakeCloud, clock: ManualClock
) -> None:
    """A signed body that is not JSON or not a valid shape is 400 naming what is wrong."""
    response = run(webhook_event(payload), make_env(), clock)
    assert response["statusCode"] == 400
    error = body_of(response)["error"]
    assert error["field"] == field
    if code is not None:
        assert error["code"] == code
    assert field in error["message"] or code in ("InvalidJson", "UnknownShape")
    assert cloud.requests == []


@pytest.mark.parametrize("encoded", [True, False], ids=["base64-body", "plain-body"])
def test_webhook_oversized_body_is_413(encoded: bool, cloud: FakeCloud, clock: ManualClock) -> None:
    """A body over 256 KiB is 413, whatever its signature, and nothing is sent."""
    payload = json.dumps({**DECOMMISSION, "padding": "x" * (256 * 1024)}).encode()
    response = run(webhook_event(payload, encoded=encoded), make_env(), clock)
    assert response["statusCode"] == 413
    assert body_of(response)["error"]["field"] == "body"
    assert cloud.requests == []


def test_webhook_get_is_405(cloud: FakeCloud, clock: ManualClock) -> None:
    """A signed webhook sent with GET is refused as a method error, nothing sent."""
    event = webhook_event(DECOMMISSION)
    event["httpMethod"] = "GET"
    response = run(event, make_env(), clock)
    assert response["statusCode"] == 405
    assert cloud.requests == []


def test_webhook_direct_body_exports_the_named_volume(cloud: FakeCloud, clock: ManualClock) -> None:
    """A signed direct-shaped body exports that volume with exactly the options given."""
    payload = {
        "volume_id": LOOSE_VOLUME,
        "os-volume_upload_image": {"image_name": "archive-by-webhook", "disk_format": "zvhd2"},
    }
    response = run(webhook_event(payload), make_env(), clock)
    assert response["statusCode"] == 202
    result = body_of(response)
    assert result["summary"] == {**ZERO, "accepted": 1}
    assert result["results"][0]["data"]["trigger"] == "webhook"
    assert result["results"][0]["data"]["correlation_id"] == "msg_decommission_0001"
    assert exported_bodies(cloud) == {
        LOOSE_VOLUME: {"image_name": "archive-by-webhook", "disk_format": "zvhd2"}
    }


def test_webhook_reconcile_body_runs_the_reconcile(cloud: FakeCloud, clock: ManualClock) -> None:
    """A signed ``{"action": "reconcile"}`` body runs the reconcile, as the direct event does,
    and reports the finished image the function made."""
    image = cloud.ims.add_image(
        name="made-earlier", status="active", tags={"evs-export": "managed"}
    )
    response = run(webhook_event({"action": "reconcile"}), make_env(), clock)
    assert response["statusCode"] == 202
    result = body_of(response)
    assert "reconcile" in result
    assert [(e["type"], e["data"]["image_id"]) for e in result["results"]] == [
        ("evs.export.completed", image.id)
    ]


def test_webhook_redelivery_across_midnight_exports_nothing_new() -> None:
    """A decommission delivered at 23:58 UTC and redelivered (same webhook-id) at 00:03 ends
    in duplicate skips: the retry must not make a second image of each disk."""
    clock = ManualClock(datetime(2026, 11, 25, 23, 58, tzinfo=timezone.utc))
    with mock_cloud(new_cloud(clock)) as fake:
        first = run(webhook_event(DECOMMISSION, now=clock()), make_env(), clock)
        assert body_of(first)["summary"] == {**ZERO, "accepted": 2}
        clock.advance(300)  # Standard Webhooks' third attempt comes 5 minutes later
        again = run(webhook_event(DECOMMISSION, now=clock()), make_env(), clock)
    assert again["statusCode"] == 202
    assert body_of(again)["summary"] == {**ZERO, "skipped": 2}
    assert len(fake.ims.images) == 2


# -- Slack ---------------------------------------------------------------------------------


def test_slack_export_sends_exactly_the_typed_options(cloud: FakeCloud, clock: ManualClock) -> None:
    """`<volume> name="nightly db" format=qcow2 force` exports with just those options and
    the ephemeral reply names the new image."""
    body = slack_form(f'{DATA_DISK} name="nightly db" format=qcow2 force')
    response = run(slack_event(body), make_env(), clock)
    assert response["statusCode"] == 200
    assert exported_bodies(cloud) == {
        DATA_DISK: {"image_name": "nightly db", "force": True, "disk_format": "qcow2"}
    }
    (image,) = cloud.ims.images.values()
    assert image.name == "nightly db"
    message = body_of(response)
    assert message["response_type"] == "ephemeral"
    assert "1 accepted" in message["text"]
    assert image.id in json.dumps(message)


def test_slack_export_accepts_smart_quotes_and_aliases(
    cloud: FakeCloud, clock: ManualClock
) -> None:
    """Slack's typographic quotes and the long option names work like the short ones."""
    body = slack_form(f"{LOOSE_VOLUME} image_name=“weekly archive” disk_format=vhd os=linux")
    response = run(slack_event(body), make_env(), clock)
    assert response["statusCode"] == 200
    assert exported_bodies(cloud) == {
        LOOSE_VOLUME: {"image_name": "weekly archive", "disk_format": "vhd", "__os_type": "linux"}
    }


def test_slack_export_without_a_name_uses_the_chat_template(
    cloud: FakeCloud, clock: ManualClock
) -> None:
    """Without name= the image is named `{volume_name}-chat-{time}` at the request's time."""
    response = run(slack_event(slack_form(LOOSE_VOLUME)), make_env(), clock)
    assert response["statusCode"] == 200
    assert exported_bodies(cloud) == {
        LOOSE_VOLUME: {"image_name": "app-data-archive-chat-20261125-180000"}
    }


@pytest.mark.parametrize(
    ("env", "user", "channel", "why"),
    [
        ({"CHAT_ALLOWED_USERS": "U0SOMEONE,U0ELSE"}, SLACK_USER, SLACK_CHANNEL, "add your user"),
        ({"CHAT_ALLOWED_USERS": None}, SLACK_USER, SLACK_CHANNEL, "turned off"),
        ({"CHAT_ALLOWED_USERS": ""}, SLACK_USER, SLACK_CHANNEL, "turned off"),
        ({"CHAT_ALLOWED_CHANNELS": "C0OPS"}, SLACK_USER, SLACK_CHANNEL, "add the channel"),
        ({"CHAT_ALLOWED_CHANNELS": "C0OPS"}, SLACK_USER, "C0RANDOM", "C0RANDOM"),
    ],
    ids=["user-not-listed", "users-unset", "users-empty", "channel-not-listed", "names-channel"],
)
def test_slack_refusal_is_ephemeral_says_why_and_sends_nothing(
    env: dict[str, str | None],
    user: str,
    channel: str,
    why: str,
    cloud: FakeCloud,
    clock: ManualClock,
) -> None:
    """A command from outside the allow lists gets a 200 ephemeral refusal; nothing is sent."""
    body = slack_form(f"{DATA_DISK} force", user=user, channel=channel)
    response = run(slack_event(body), make_env(**env), clock)
    assert response["statusCode"] == 200
    message = body_of(response)
    assert message["response_type"] == "ephemeral"
    assert why in message["text"]
    assert "CHAT_ALLOWED_" in message["text"]
    assert cloud.requests == []


def test_slack_status_replies_with_the_ims_status(cloud: FakeCloud, clock: ManualClock) -> None:
    """`status <image_id>` answers with the image's name and IMS status."""
    cloud.ims.add_image(id=IMAGE, name="web-01-logs-decom-20261125", status="saving")
    response = run(slack_event(slack_form(f"status {IMAGE}")), make_env(), clock)
    assert response["statusCode"] == 200
    message = body_of(response)
    assert message["response_type"] == "ephemeral"
    assert message["text"] == f"Image {IMAGE} (web-01-logs-decom-20261125) is saving."
    assert export_posts(cloud) == []


def test_slack_status_of_an_unknown_image_says_so(cloud: FakeCloud, clock: ManualClock) -> None:
    """`status` of an image IMS does not know replies with IMS's reason, not a crash."""
    response = run(slack_event(slack_form(f"status {IMAGE}")), make_env(), clock)
    assert response["statusCode"] == 200
    message = body_of(response)
    assert message["text"].startswith(f"Image {IMAGE}: ")
    assert "is active" not in message["text"]


def test_slack_server_command_hands_off_then_the_job_exports_every_disk(
    clock: ManualClock,
) -> None:
    """`server <id> force` answers at once, records one async invocation, and that
    invocation's event, run through handle(), exports every disk of the server."""
    slack_posts: list[bytes] = []

    def slack_hook(request: Any) -> tuple[int, dict[str, str], str]:
        slack_posts.append(bytes(request.body or b""))
        return 200, {}, "ok"

    mocked = mock_cloud(new_cloud(clock))
    with mocked as cloud:
        # Nothing leaves the process: should the job report to response_url, it lands here.
        mocked.responses.add_callback("POST", RESPONSE_URL, callback=slack_hook)
        response = run(slack_event(slack_form(f"server {SERVER} force")), make_env(), clock)
        assert response["statusCode"] == 200
        message = body_of(response)
        assert message["response_type"] == "ephemeral"
        assert f"Exporting every disk of server {SERVER}" in message["text"]
        assert "posted here when done" in message["text"]
        assert export_posts(cloud) == []
        (invocation,) = cloud.functiongraph.invocations
        assert invocation["function_urn"] == FUNCTION_URN
        job = invocation["body"]["evs_export_chat_job"]
        assert (job["server_id"], job["force"], job["response_url"]) == (
            SERVER,
            True,
            RESPONSE_URL,
        )

        clock.advance(2)
        result = run(invocation["body"], make_env(), clock)
    assert result["summary"] == {**ZERO, "accepted": 2}
    assert {e["data"]["trigger"] for e in result["results"]} == {"chat"}
    assert exported_bodies(cloud) == {
        SYSTEM_DISK: {"image_name": "web-01-web-01-system-chat-20261125-180000", "force": True},
        DATA_DISK: {"image_name": "web-01-web-01-logs-chat-20261125-180000", "force": True},
    }
    (report,) = slack_posts  # the outcome goes to response_url, once
    assert json.loads(report)["response_type"] == "ephemeral"
    assert "2 accepted" in json.loads(report)["text"]
    assert result["deliveries"]


def test_slack_server_command_with_an_unknown_template_field_is_refused_at_once(
    cloud: FakeCloud, clock: ManualClock
) -> None:
    """`server <id> name="{foo}-x"` is refused in the reply, not accepted and then rejected
    by the asynchronous half after the user was told the export is under way."""
    response = run(slack_event(slack_form(f'server {SERVER} name="{{foo}}-x"')), make_env(), clock)
    assert response["statusCode"] == 200
    message = body_of(response)
    assert "{foo}" in message["text"]
    assert "Exporting every disk" not in message["text"]
    assert cloud.functiongraph.invocations == []


def test_slack_server_command_without_a_urn_or_region_says_it_could_not_start(
    cloud: FakeCloud, clock: ManualClock
) -> None:
    """When the function cannot invoke itself the reply says the export did not start."""
    env = make_env(FUNCTION_URN=None, REGION=None)
    for service in ("EVS", "IMS", "ECS", "FUNCTIONGRAPH"):
        env[f"{service}_ENDPOINT"] = f"https://{service.lower()}.{REGION}.myhuaweicloud.com"
    response = run(slack_event(slack_form(f"server {SERVER}")), env, clock)
    assert response["statusCode"] == 200
    message = body_of(response)
    assert message["text"].startswith(f"Could not start the export of server {SERVER}")
    assert "FUNCTION_URN" in message["text"]
    assert cloud.functiongraph.invocations == []


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("frobnicate", "type its UUID"),
        ("force", "type the volume ID first"),
        ("server", "type the server ID after server"),
        ("status", "type the image ID after status"),
        (f"status {IMAGE} now", "status <image_id>"),
        (f"{DATA_DISK} format=floppy", "use one of vhd, zvhd, zvhd2, raw, qcow2"),
        (f"{DATA_DISK} colour=red", "the options are name=, format=, container=, os= and force"),
        (f"{DATA_DISK} name", 'e.g. name="nightly db"'),
        (f"{DATA_DISK} name=", "name must be 1 to 128 characters"),
        (f'{DATA_DISK} name="unterminated', "close every quote you open"),
        (f'{DATA_DISK} name="bad/name"', "may hold only letters"),
        (f"{DATA_DISK} force force", "give it once"),
        (f"server {SERVER} container=bare", "the options are name=, format= and force"),
    ],
)
def test_slack_bad_grammar_replies_with_what_to_type(
    text: str, hint: str, cloud: FakeCloud, clock: ManualClock
) -> None:
    """A command that does not parse gets an ephemeral reply saying what to type; no request."""
    response = run(slack_event(slack_form(text)), make_env(), clock)
    assert response["statusCode"] == 200
    message = body_of(response)
    assert message["response_type"] == "ephemeral"
    assert hint.replace("<", "&lt;").replace(">", "&gt;") in message["text"]
    assert "Type `/evs-export help` for the syntax." in message["text"]
    assert cloud.requests == []


def test_slack_ssl_check_is_200_with_an_empty_body(cloud: FakeCloud, clock: ManualClock) -> None:
    """Slack's unsigned ssl_check probe is answered 200 with an empty body."""
    body = b"ssl_check=1&token=deprecated-verification-token"
    event = apig_event(body, {"content-type": "application/x-www-form-urlencoded"})
    response = run(event, make_env(), clock)
    assert response["statusCode"] == 200
    assert response["body"] == ""
    assert cloud.requests == []


@pytest.mark.parametrize(
    "mutate",
    ["wrong-secret", "stale", "tampered", "no-timestamp"],
)
def test_slack_bad_signature_is_401_and_sends_nothing(
    mutate: str, cloud: FakeCloud, clock: ManualClock
) -> None:
    """A Slack command with a wrong, stale or missing signature, or a changed body, is 401."""
    body = slack_form(f"{DATA_DISK} force")
    if mutate == "wrong-secret":
        event = slack_event(body, secret="0" * 32)
    elif mutate == "stale":
        event = slack_event(body, now=datetime.fromtimestamp(NOW.timestamp() - 301, timezone.utc))
    else:
        event = slack_event(body)
        if mutate == "tampered":
            changed = slack_form(f"{SYSTEM_DISK} force")
            event["body"] = base64.b64encode(changed).decode()
        else:
            del event["headers"]["x-slack-request-timestamp"]
    response = run(event, make_env(), clock)
    assert response["statusCode"] == 401
    assert cloud.requests == []


# -- CTS -----------------------------------------------------------------------------------


def cts_event(
    trace: str = "stopServer",
    *,
    service: str = "ECS",
    resource_type: str = "ecs",
    resource_id: str | None = SERVER,
    request: object = None,
    time: object = 1764093600000,
) -> dict[str, Any]:
    """A CTS trace as FunctionGraph delivers it (PLATFORM §2.3)."""
    cts: dict[str, Any] = {
        "time": time,
        "user": {"name": "ops", "id": "5b726c4fbfd84821ba866bafaaf56aax"},
        "request": {} if request is None else request,
        "response": {},
        "code": 204,
        "service_type": service,
        "resource_type": resource_type,
        "resource_name": "web-01",
        "trace_name": trace,
        "trace_type": "ConsoleAction",
        "record_time": time,
        "trace_id": "69be64a7-0233-11e8-82e4-e5d37911193e",
        "trace_status": "normal",
    }
    if resource_id is not None:
        cts["resource_id"] = resource_id
    return {"cts": cts}


def test_cts_stop_of_a_tagged_server_exports_its_disks(
    cloud: FakeCloud, clock: ManualClock
) -> None:
    """stopServer of a server tagged evs-export=on-stop exports each disk, forced, once."""
    result = run(cts_event(), make_env(), clock)
    assert result["summary"] == {**ZERO, "accepted": 2}
    assert {e["data"]["trigger"] for e in result["results"]} == {"cts"}
    assert {e["data"]["correlation_id"] for e in result["results"]} == {
        "cts:69be64a7-0233-11e8-82e4-e5d37911193e"
    }
    assert exported_bodies(cloud) == {
        SYSTEM_DISK: {"image_name": "web-01-web-01-system-stop-20251125-180000", "force": True},
        DATA_DISK: {"image_name": "web-01-web-01-logs-stop-20251125-180000", "force": True},
    }


def test_cts_stop_redelivered_exports_nothing_new(cloud: FakeCloud, clock: ManualClock) -> None:
    """The same stopServer trace delivered twice ends the second time in duplicate skips."""
    run(cts_event(), make_env(), clock)
    clock.advance(30)
    again = run(cts_event(), make_env(), clock)
    assert again["summary"] == {**ZERO, "skipped": 2}
    assert {e["data"]["reason"] for e in again["results"]} == {"duplicate"}
    assert len(export_posts(cloud)) == 2
    assert len(cloud.ims.images) == 2


def test_cts_stop_of_an_untagged_server_is_left_alone(cloud: FakeCloud, clock: ManualClock) -> None:
    """stopServer of a server without the tag exports nothing and the message says so."""
    result = run(cts_event(resource_id=PLAIN_SERVER), make_env(), clock)
    assert result["results"] == []
    assert result["summary"] == ZERO
    assert (
        f"server {PLAIN_SERVER} is not tagged evs-export=on-stop: left alone" in (result["message"])
    )
    assert export_posts(cloud) == []


def test_cts_stops_on_different_days_each_export_even_with_long_names(
    cloud: FakeCloud, clock: ManualClock
) -> None:
    """Two stopServer traces a day apart each export the disks, even when the server and
    volume names are long: cutting a name to 128 characters must not cut off its time."""
    cloud.ecs.add_server(SERVER, "s" * 60, tags=["evs-export=on-stop"], status="SHUTOFF")
    cloud.evs.add_volume(
        DATA_DISK, "v" * 60, "in-use", 10, attachments=[{"server_id": SERVER, "device": "/dev/vdb"}]
    )
    first = run(cts_event(time=1764093600000), make_env(), clock)
    assert first["summary"] == {**ZERO, "accepted": 2}
    next_day = run(cts_event(time=1764093600000 + 86_400_000), make_env(), clock)
    names = [e["data"]["image_name"] for e in [*first["results"], *next_day["results"]]]
    assert all(len(n) <= 128 for n in names)
    assert next_day["summary"] == {**ZERO, "accepted": 2}, names


@pytest.mark.parametrize(
    ("trace", "service", "resource_type"),
    [
        ("deleteServer", "ECS", "ecs"),
        ("startServer", "ECS", "ecs"),
        ("deleteGraph", "FunctionGraph", "graph"),
        ("stopServer", "BMS", "bms"),
    ],
)
def test_cts_other_traces_are_acknowledged_and_send_nothing(
    trace: str, service: str, resource_type: str, cloud: FakeCloud, clock: ManualClock
) -> None:
    """Traces other than an ECS stopServer are acknowledged with a note; no request is sent."""
    event = cts_event(trace, service=service, resource_type=resource_type)
    result = run(event, make_env(), clock)
    assert result["results"] == []
    assert result["summary"] == ZERO
    assert "needs no export" in result["message"]
    assert trace in result["message"]
    assert cloud.requests == []


@pytest.mark.parametrize("as_string", [True, False], ids=["request-string", "request-object"])
def test_cts_request_is_read_as_a_json_string_or_an_object(
    as_string: bool, cloud: FakeCloud, clock: ManualClock
) -> None:
    """With no resource_id, the server is read from ``request`` given as a string or object."""
    request: object = {"server_id": SERVER, "os-stop": {"type": "SOFT"}}
    if as_string:
        request = json.dumps(request)
    result = run(cts_event(resource_id=None, request=request), make_env(), clock)
    assert result["summary"] == {**ZERO, "accepted": 2}
    assert set(exported_bodies(cloud)) == {SYSTEM_DISK, DATA_DISK}


def test_cts_stop_naming_no_server_is_rejected_naming_resource_id(
    cloud: FakeCloud, clock: ManualClock
) -> None:
    """A stopServer trace without a server UUID is one rejection naming cts.resource_id."""
    result = run(cts_event(resource_id="web-01", request="not json"), make_env(), clock)
    assert result["summary"] == {**ZERO, "rejected": 1}
    assert result["results"][0]["data"]["error"]["field"] == "cts.resource_id"
    assert cloud.requests == []


@pytest.mark.parametrize(
    ("time", "suffix"),
    [
        (1529974447000, "20180626-005407"),
        (1529974447, "20180626-005407"),
        ("1529974447000", "20180626-005407"),
        ("2016/12/08 11:07:28 GMT+08:00", "20161208-110728"),
        ("2018-06-26T08:54:07+08:00", "20180626-085407"),
    ],
    ids=["ms", "s", "ms-string", "cts-text", "iso"],
)
def test_cts_time_in_ms_s_or_text_names_the_images(
    time: object, suffix: str, cloud: FakeCloud, clock: ManualClock
) -> None:
    """The trace time, in ms, s or CTS's text form, is the time in the image names."""
    result = run(cts_event(time=time), make_env(), clock)
    assert result["summary"] == {**ZERO, "accepted": 2}
    assert exported_bodies(cloud)[DATA_DISK]["image_name"] == f"web-01-web-01-logs-stop-{suffix}"


def test_cts_unreadable_time_is_rejected_naming_the_field(
    cloud: FakeCloud, clock: ManualClock
) -> None:
    """A trace time that is not a time is rejected naming cts.time; nothing is sent."""
    result = run(cts_event(time="yesterday-ish"), make_env(), clock)
    assert result["summary"] == {**ZERO, "rejected": 1}
    assert result["results"][0]["data"]["error"]["field"] == "cts.time"
    assert cloud.requests == []


# -- invoke() with fresh timestamps ---------------------------------------------------------


def test_invoke_accepts_a_freshly_signed_webhook_and_keeps_secrets_out_of_the_log(
    quiet_log: io.StringIO,
) -> None:
    """Through invoke() (real clock), a fresh decommission is 202 and no secret is logged."""
    with mock_cloud(new_cloud(lambda: datetime.now(timezone.utc))) as fake:
        event = webhook_event(DECOMMISSION, now=datetime.now(timezone.utc))
        response = app.invoke(event, None, env=make_env())
    assert response["statusCode"] == 202
    assert body_of(response)["summary"] == {**ZERO, "accepted": 2}
    assert len(export_posts(fake)) == 2
    text = quiet_log.getvalue()
    assert '"trigger": "webhook"' in text
    for secret in (WEBHOOK_SECRET, SLACK_SECRET, SK):
        assert secret not in text
