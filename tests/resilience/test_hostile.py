"""Hostile input: every parser gets mutated and random payloads through ``handle()``.

Strategies build each payload as valid-looking or invalid *by construction*; invalid ones
must be answered without a single request to the cloud, and every answer must be well formed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from unittest import mock
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import handler
from fakecloud import ConnectionReset, FakeCloud, ManualClock
from function import log
from function.apig import MAX_BODY_BYTES
from function.app import handle
from function.cloud.transport import HttpResponse
from function.config import Settings
from function.errors import TransportError
from function.triggers import direct, timer_policy
from function.triggers.chat import JOB_KEY
from function.triggers.continuation import KEY as CONTINUATION_KEY
from tests.resilience import AK, PROJECT, REGION, SK, env, make_runtime, reset_logging

HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
TS = int(NOW.timestamp())
WEBHOOK_KEY = b"hostile-webhook-key-0123456789ab"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_USER, SLACK_CHANNEL = "U0ALLOWED", "C0ALLOWED"
ACTION = "os-volume_upload_image"
SLACK_HOSTS = {"hooks.slack.com", "hooks.slack-gov.com"}
_NAME_OK = re.compile(r"[A-Za-z0-9\u4e00-\u9fff\-._ ]{1,128}")
_UUID_ANYWHERE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_UUID = re.compile(_UUID_ANYWHERE.pattern + r"\Z")
SETTINGS = Settings.from_env(
    env(
        WEBHOOK_SECRETS=WEBHOOK_SECRET,
        SLACK_SIGNING_SECRET=SLACK_SECRET,
        CHAT_ALLOWED_USERS=SLACK_USER,
        CHAT_ALLOWED_CHANNELS=SLACK_CHANNEL,
    )
)


@pytest.fixture(autouse=True, scope="module")
def _quiet_logs() -> Iterator[None]:
    """Log lines go nowhere (but are still rendered: a rendering crash would surface)."""
    with open(os.devnull, "w", encoding="utf-8") as sink:
        log.use_stream(sink)
        log.configure("INFO", sink)
        yield
    reset_logging()


# -- the transport: a recorder in front of an (empty) fake cloud --------------------------


class Recorder:
    """Records every request; answers from a fake cloud, or with a 503 when there is none."""

    def __init__(self, cloud: FakeCloud | None = None) -> None:
        self.cloud = cloud
        self.sent: list[tuple[str, str]] = []

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: tuple[float, float],
    ) -> HttpResponse:
        self.sent.append((method, url))
        if self.cloud is None:
            return HttpResponse(503, {}, b'{"error_code": "X", "error_msg": "refused"}')
        try:
            status, reply_headers, data = self.cloud.handle(method, url, headers, body)
        except ConnectionReset:
            raise TransportError("ConnectionReset", "reset", maybe_sent=True) from None
        return HttpResponse(status, reply_headers, data)

    def cloud_requests(self) -> list[tuple[str, str]]:
        """Requests to the cloud's APIs (not result deliveries to Slack)."""
        return [(m, u) for m, u in self.sent if urlsplit(u).hostname not in SLACK_HOSTS]


def run(event: object, *, invalid: bool) -> dict[str, Any]:
    """``handle()`` the event; an invalid one must send nothing to the cloud, and nothing
    may go anywhere but the cloud and Slack's reply hosts."""
    if invalid:
        transport = Recorder()
    else:
        transport = Recorder(
            FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION, clock=ManualClock(NOW))
        )
    runtime = make_runtime(clock=lambda: NOW)
    result = handle(event, SETTINGS, runtime, transport)
    assert isinstance(result, dict)
    if invalid:
        assert transport.cloud_requests() == [], f"requests sent for invalid input: {event!r:.300}"
    for _method, url in transport.sent:
        host = urlsplit(url).hostname or ""
        assert host in SLACK_HOSTS or host.endswith(".myhuaweicloud.com"), url
    return result


# -- what every answer must look like ------------------------------------------------------


def check_events(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A direct/timer/CTS return value: results and summary; rejections name the field."""
    assert isinstance(result.get("results"), list)
    assert isinstance(result.get("summary"), dict)
    for event in result["results"]:
        assert isinstance(event, dict) and event["specversion"] == "1.0"
        assert isinstance(event["type"], str) and isinstance(event["id"], str)
        data = event["data"]
        assert isinstance(data, dict) and "trigger" in data and "correlation_id" in data
        if event["type"] in ("evs.export.rejected", "evs.export.failed"):
            error = data["error"]
            assert isinstance(error["code"], str) and error["code"]
            assert isinstance(error["message"], str) and error["message"]
            if event["type"] == "evs.export.rejected" and "http_status" not in error:
                assert isinstance(error.get("field"), str) and error["field"], event
    json.dumps(result)  # JSON-serialisable as a whole
    return list(result["results"])


def check_rejected(result: Mapping[str, Any]) -> None:
    """Invalid input: at least one rejection, and nothing but rejections."""
    events = check_events(result)
    assert events, result
    for event in events:
        assert event["type"] == "evs.export.rejected", event
        assert event["data"]["error"]["field"]


def check_apig(response: Mapping[str, Any]) -> Any:
    """A well-formed APIG response; returns its parsed body (None for ssl_check's empty one)."""
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    status = response["statusCode"]
    assert isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 599
    headers = response["headers"]
    assert isinstance(headers, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    assert isinstance(response["body"], str)
    assert response["isBase64Encoded"] is False
    if response["body"] == "" and status == 200 and headers.get("Content-Type") == "text/plain":
        return None  # Slack's ssl_check probe
    body = json.loads(response["body"])
    if status in (400, 413):
        error = body["error"]
        assert error["code"] and error["message"] and error["field"], body
    elif status >= 400:
        assert body["error"]["code"] and body["error"]["message"], body
    elif status == 202:
        check_events(body)
    return body


# -- building blocks -----------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
non_strings = json_values.filter(lambda v: not isinstance(v, str))
non_mappings = json_values.filter(lambda v: not isinstance(v, dict))
huge = st.builds(
    lambda n, piece: piece * n,
    st.integers(1024, 1 << 20),
    st.sampled_from(["A", "é", "../", "%2e", "\u4e00", "{", "\x00", "😀"]),
)
uuids = st.uuids().map(str)
EVIL_IDS = [
    "../../x",
    "%2e%2e/",
    "%2E%2E%2F%2E%2E%2Fx",
    "..%2F..%2Fsecret",
    "/v2/other-project/volumes/x",
    "16369c5d-384d-4e64-b37a-56d898769362/../../x",
    "16369c5d-384d-4e64-b37a-56d898769362?marker=x",
    "16369c5d-384d-4e64-b37a-56d898769362#",
    " 16369c5d-384d-4e64-b37a-56d898769362",
    "16369c5d-384d-4e64-b37a-56d898769362\n",
    "\u202e16369c5d-384d-4e64-b37a-56d898769362",
    "16369c5d\u2010384d\u20104e64\u2010b37a\u201056d898769362",
    "\uff11" * 36,
    "16369c5d-384d-4e64-b37a-56d89876936g",
    "",
]
not_uuids = (st.sampled_from(EVIL_IDS) | st.text(max_size=60) | huge).filter(
    lambda s: _UUID.match(s) is None
)
bad_ids = not_uuids | non_strings
bad_names = (
    st.sampled_from(["", " x", "x ", "a" * 129, "a/b", "../../etc", "naïve", "emoji 😀", "t\tab"])
    | st.text(max_size=140)
    | huge
).filter(lambda s: not (_NAME_OK.fullmatch(s) and s.strip(" ") == s)) | non_strings
good_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True)
TOP_KEYS = {"volume_id", ACTION, "exports", "action", "correlation_id"}
INNER_KEYS = {"image_name", "disk_format", "container_format", "force", "__os_type", "os_type"}
BAD_TIMES: list[object] = [
    "yesterday",
    "2025-13-45T00:00:00",
    "99999999999999999999999",
    True,
    [],
    {},
    "1e9",
    "-5",
    1e30,
    "x" * 65,
]


def good_export(volume: str, name: str) -> dict[str, Any]:
    return {"volume_id": volume, ACTION: {"image_name": name, "force": True}}


@st.composite
def valid_exports(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"image_name": draw(good_names)}
    for key, choices in (
        ("disk_format", ["vhd", "zvhd", "zvhd2", "raw", "qcow2"]),
        ("container_format", ["ami", "ari", "aki", "ovf", "bare"]),
        ("__os_type", ["linux", "windows"]),
    ):
        if draw(st.booleans()):
            body[key] = draw(st.sampled_from(choices))
    if draw(st.booleans()):
        body["force"] = draw(st.booleans())
    return {"volume_id": draw(uuids), ACTION: body}


EXPORT_BREAKS = (
    "volume",
    "name",
    "disk",
    "container",
    "os",
    "force",
    "extra",
    "inner_extra",
    "no_volume",
    "no_body",
    "body_type",
    "not_object",
)
BODY_BREAKS = ("name", "disk", "container", "os", "force", "inner_extra", "no_body", "body_type")


@st.composite
def invalid_exports(draw: st.DrawFn, ways: tuple[str, ...] = EXPORT_BREAKS) -> Any:
    """A direct export broken in exactly one way that the seed's rules forbid."""
    event = draw(valid_exports())
    inner = event[ACTION]
    how = draw(st.sampled_from(ways))
    if how == "volume":
        event["volume_id"] = draw(bad_ids)
    elif how == "name":
        inner["image_name"] = draw(bad_names)
    elif how in ("disk", "container", "os"):
        key = {"disk": "disk_format", "container": "container_format", "os": "__os_type"}[how]
        allowed = {
            "vhd",
            "zvhd",
            "zvhd2",
            "raw",
            "qcow2",
            "ami",
            "ari",
            "aki",
            "ovf",
            "bare",
            "linux",
            "windows",
        }
        inner[key] = draw(
            (st.text(max_size=12) | non_strings).filter(
                lambda v: v is not None and not (isinstance(v, str) and v in allowed)
            )
        )
    elif how == "force":
        inner["force"] = draw(
            json_values.filter(lambda v: v is not None and not isinstance(v, bool))
        )
    elif how == "extra":
        event[draw(st.text(min_size=1, max_size=30).filter(lambda k: k not in TOP_KEYS))] = draw(
            json_values
        )
    elif how == "inner_extra":
        inner[draw(st.text(min_size=1, max_size=30).filter(lambda k: k not in INNER_KEYS))] = draw(
            json_values
        )
    elif how == "no_volume":
        del event["volume_id"]
    elif how == "no_body":
        del event[ACTION]
    elif how == "body_type":
        event[ACTION] = draw(non_mappings)
    else:
        return draw(non_mappings)
    return event


# -- direct and batch ----------------------------------------------------------------------


@HYPOTHESIS
@given(invalid_exports())
def test_direct_invalid_sends_nothing(event: Any) -> None:
    """A direct export broken in one way is rejected, naming the field, with no request."""
    if not isinstance(event, dict):
        event = {"volume_id": "x", ACTION: event}  # keep it direct-shaped
    check_rejected(run(event, invalid=True))


@HYPOTHESIS
@given(
    st.lists(valid_exports(), max_size=4),
    st.lists(invalid_exports(), min_size=1, max_size=3),
    st.randoms(use_true_random=False),
)
def test_batch_with_an_invalid_item_sends_nothing(
    good: list[dict[str, Any]], bad: list[Any], rnd: Any
) -> None:
    """A batch with any invalid item is rejected whole: each item reported, none sent."""
    items: list[Any] = [*good, *bad]
    rnd.shuffle(items)
    result = run({"exports": items}, invalid=True)
    check_rejected(result)
    assert len(result["results"]) == len(items)


@HYPOTHESIS
@given(
    st.one_of(
        non_strings.map(lambda v: {"exports": v}).filter(
            lambda e: not isinstance(e["exports"], list)
        ),
        st.just({"exports": []}),
        st.builds(
            lambda k, v: {"exports": [good_export(str(uuid.uuid4()), "a")], k: v},
            st.text(min_size=1, max_size=20).filter(
                lambda k: k not in ("exports", "correlation_id")
            ),
            json_values,
        ),
    )
)
def test_batch_shape_errors_send_nothing(event: dict[str, Any]) -> None:
    """``exports`` not a list, empty, or beside an unknown key: rejected, nothing sent."""
    check_rejected(run(event, invalid=True))


@HYPOTHESIS
@given(valid_exports(), st.one_of(st.none(), json_values, huge, st.sampled_from(EVIL_IDS)))
def test_valid_direct_is_answered(event: dict[str, Any], correlation: Any) -> None:
    """A valid export of an unknown volume (with any correlation_id) ends in one event."""
    result = run({**event, "correlation_id": correlation}, invalid=False)
    [only] = check_events(result)
    assert only["subject"] == event["volume_id"]
    cid = only["data"]["correlation_id"]
    assert isinstance(cid, str) and 0 < len(cid) <= 128


# -- timer ---------------------------------------------------------------------------------


def good_policy() -> dict[str, Any]:
    return {
        "policy": "nightly",
        "select": {"volume_ids": [str(uuid.UUID(int=1))], "tags": {"backup": "daily"}},
        "image_name": "{policy}-{volume_name}-{time:%Y%m%d}",
        "force": True,
        "keep": 3,
    }


def timer_with(user_event: object, time: object = "2025-03-01T02:00:00Z") -> dict[str, Any]:
    return {"trigger_type": "TIMER", "trigger_name": "t", "time": time, "user_event": user_event}


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


@st.composite
def invalid_policies(draw: st.DrawFn) -> str:
    """A policy JSON string broken in one way."""
    policy = good_policy()
    how = draw(
        st.sampled_from(
            [
                "policy",
                "select_empty",
                "select_ids",
                "select_type",
                "tags",
                "extra",
                "keep",
                "dry_run",
                "template",
                "format",
                "missing",
            ]
        )
    )
    if how == "policy":
        policy["policy"] = draw(
            (st.text(max_size=80) | non_strings).filter(
                lambda v: (
                    not (isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", v))
                )
            )
        )
    elif how == "select_empty":
        policy["select"] = draw(
            st.sampled_from([{}, {"volume_ids": []}, {"tags": {}, "server_ids": []}])
        )
    elif how == "select_ids":
        key = draw(st.sampled_from(["volume_ids", "server_ids"]))
        policy["select"][key] = [*draw(st.lists(uuids, max_size=2)), draw(bad_ids)]
    elif how == "select_type":
        policy["select"] = draw(non_mappings)
    elif how == "tags":
        policy["select"]["tags"] = {"backup": draw(non_strings)}
    elif how == "extra":
        policy[
            draw(
                st.text(min_size=1, max_size=20).filter(
                    lambda k: (
                        k not in good_policy()
                        and k not in ("dry_run", "disk_format", "container_format", "os_type")
                    )
                )
            )
        ] = 1
    elif how == "keep":
        policy["keep"] = draw(st.sampled_from([0, -1, 1001, "3", True, 2.5, [3]]))
    elif how == "dry_run":
        policy["dry_run"] = draw(json_values.filter(lambda v: not isinstance(v, bool)))
    elif how == "template":
        policy["image_name"] = draw(
            st.sampled_from(
                [
                    "",
                    "   ",
                    "{nope}",
                    "{time!r}",
                    "{volume_name:>10}",
                    "{",
                    "}",
                    "x" * 513,
                    "{time:%Q}",
                    7,
                ]
            )
        )
    elif how == "format":
        policy["disk_format"] = draw(
            st.text(max_size=8).filter(lambda v: v not in ("vhd", "zvhd", "zvhd2", "raw", "qcow2"))
        )
    else:
        del policy[draw(st.sampled_from(["policy", "select"]))]
    return json.dumps(policy)


@HYPOTHESIS
@given(
    st.one_of(
        invalid_policies().map(timer_with),
        non_strings.map(timer_with),
        st.text(max_size=300).filter(lambda s: not _json_object(s)).map(timer_with),
        huge.map(timer_with),
        st.sampled_from(BAD_TIMES).map(lambda t: timer_with(json.dumps(good_policy()), t)),
    )
)
def test_timer_invalid_sends_nothing(event: dict[str, Any]) -> None:
    """A TIMER event whose user_event (or time) is not a valid policy is rejected, naming
    the field, with no request."""
    result = run(event, invalid=True)
    check_rejected(result)
    [only] = result["results"]
    assert only["data"]["error"]["field"].startswith(("user_event", "time"))


# -- API Gateway: webhook and Slack --------------------------------------------------------


def apig(
    body: object, headers: object, *, b64: object = False, method: object = "POST"
) -> dict[str, Any]:
    return {
        "httpMethod": method,
        "path": "/evs-export",
        "headers": headers,
        "queryStringParameters": {},
        "pathParameters": {},
        "body": body,
        "isBase64Encoded": b64,
        "requestContext": {"requestId": "apig-req-1", "sourceIp": "203.0.113.9"},
    }


def webhook_headers(
    body: bytes, *, msg_id: str = "msg_1", ts: int = TS, key: bytes = WEBHOOK_KEY
) -> dict[str, str]:
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def signed_webhook(raw: bytes, *, b64: bool = False, **kw: Any) -> dict[str, Any]:
    text = base64.b64encode(raw).decode() if b64 else raw.decode("utf-8")
    return apig(text, webhook_headers(raw, **kw), b64=b64)


def _not_json_shape(raw: bytes) -> bool:
    """True when the body can not be a known webhook shape (not JSON, or JSON without any
    of the keys a decommission or a direct export needs)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return True
    return not isinstance(value, dict) or not (set(value) & {*TOP_KEYS, "action"})


def _not_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return True
    return False


@st.composite
def invalid_webhooks(draw: st.DrawFn) -> dict[str, Any]:
    """An APIG webhook request broken in one way (envelope, encoding, size, signature, or a
    signed body that is not a valid export)."""
    body = json.dumps(good_export(str(uuid.UUID(int=5)), "hook")).encode()
    event = signed_webhook(body)
    how = draw(
        st.sampled_from(
            [
                "method",
                "httpMethod",
                "path",
                "context",
                "headers",
                "header_value",
                "query",
                "body_type",
                "b64_flag",
                "bad_base64",
                "too_large",
                "too_large_b64",
                "unsigned",
                "forged",
                "stale",
                "other_key",
                "junk_bytes",
                "junk_json",
                "invalid_utf8",
                "decommission",
                "direct",
                "batch",
            ]
        )
    )
    if how == "method":
        event["httpMethod"] = draw(st.sampled_from(["GET", "PUT", "DELETE", "patch", "OPTIONS"]))
    elif how == "httpMethod":
        event["httpMethod"] = draw(non_strings.filter(lambda v: v is not None) | st.just("  "))
    elif how == "path":
        event["path"] = draw(non_strings.filter(lambda v: v is not None))
    elif how == "context":
        event["requestContext"] = draw(non_mappings.filter(lambda v: v is not None))
    elif how == "headers":
        event["headers"] = draw(non_mappings.filter(lambda v: v is not None))
    elif how == "header_value":
        event["headers"]["webhook-id"] = draw(
            non_strings.filter(
                lambda v: not (isinstance(v, list) and v and all(isinstance(i, str) for i in v))
            )
        )
    elif how == "query":
        event["queryStringParameters"] = draw(non_mappings.filter(lambda v: v is not None))
    elif how == "body_type":
        event["body"] = draw(non_strings.filter(lambda v: v is not None))
    elif how == "b64_flag":
        event["isBase64Encoded"] = draw(
            json_values.filter(lambda v: v is not None and not isinstance(v, bool))
        )
    elif how == "bad_base64":
        event["isBase64Encoded"] = True
        event["body"] = draw((st.text(min_size=1, max_size=200) | huge).filter(_not_base64))
    elif how in ("too_large", "too_large_b64"):
        size = draw(st.integers(MAX_BODY_BYTES + 1, MAX_BODY_BYTES + 4096))
        raw = b"{" + b" " * (size - 2) + b"}"
        event = signed_webhook(raw, b64=how.endswith("b64"))
    elif how == "unsigned":
        headers = draw(
            st.dictionaries(
                st.text(min_size=1, max_size=20).filter(
                    lambda k: not k.lower().startswith(("webhook-", "x-slack-"))
                ),
                st.text(max_size=40),
                max_size=5,
            )
        )
        headers.pop("content-type", None)
        headers.pop("Content-Type", None)
        event["headers"] = headers
    elif how == "forged":
        key = draw(st.binary(min_size=1, max_size=40).filter(lambda k: k != WEBHOOK_KEY))
        event["headers"] = webhook_headers(body, key=key)
        if draw(st.booleans()):
            event["headers"]["webhook-signature"] = draw(st.text(max_size=200))
    elif how == "stale":
        event["headers"] = webhook_headers(
            body, ts=TS + draw(st.sampled_from([-1, 1])) * draw(st.integers(301, 10**8))
        )
    elif how == "other_key":
        event = signed_webhook(
            body, msg_id=draw(st.text(min_size=1, max_size=300).filter(lambda s: s.strip()))
        )
        event["headers"]["webhook-signature"] = webhook_headers(b"other", msg_id="x")[
            "webhook-signature"
        ]
    elif how == "junk_bytes":
        raw = draw(st.binary(max_size=300).filter(_not_json_shape))
        event = signed_webhook(raw, b64=True)
    elif how == "junk_json":
        raw = json.dumps(draw(json_values)).encode()
        event = signed_webhook(raw, b64=draw(st.booleans()))
        if not _not_json_shape(raw):
            event = signed_webhook(b"[]")
    elif how == "invalid_utf8":
        raw = (
            b'{"volume_id": "'
            + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]))
            + b'"}'
        )
        event = signed_webhook(raw, b64=True)
    elif how == "decommission":
        notice: dict[str, Any] = {"action": "decommission", "server_id": str(uuid.UUID(int=9))}
        what = draw(st.sampled_from(["server_id", "force", "image_name", "extra"]))
        if what == "server_id":
            notice["server_id"] = draw(bad_ids)
        elif what == "force":
            notice["force"] = draw(json_values.filter(lambda v: not isinstance(v, bool)))
        elif what == "image_name":
            notice["image_name"] = draw(st.sampled_from(["", "{nope}", "{", 5, "x" * 600]))
        else:
            notice[
                draw(
                    st.text(min_size=1, max_size=12).filter(
                        lambda k: k not in ("action", "server_id", "force", "image_name")
                    )
                )
            ] = 1
        event = signed_webhook(json.dumps(notice).encode(), b64=draw(st.booleans()))
    elif how == "direct":
        broken = draw(invalid_exports())
        if not isinstance(broken, dict):
            broken = {"volume_id": "x", ACTION: broken}
        event = signed_webhook(json.dumps(broken).encode(), b64=draw(st.booleans()))
    else:
        items = [good_export(str(uuid.UUID(int=7)), "ok"), draw(invalid_exports())]
        event = signed_webhook(json.dumps({"exports": items}).encode())
    return event


@HYPOTHESIS
@given(invalid_webhooks())
def test_webhook_invalid_sends_nothing(event: dict[str, Any]) -> None:
    """A webhook request broken in any one way gets a well-formed 4xx (or a 202 whose every
    event is a rejection naming the field) and sends nothing."""
    response = run(event, invalid=True)
    body = check_apig(response)
    status = response["statusCode"]
    if status == 202:
        check_rejected(body)
    elif body is not None:
        assert status in (400, 401, 405, 413), response


@HYPOTHESIS
@given(
    st.one_of(
        uuids.map(lambda s: {"action": "decommission", "server_id": s}),
        valid_exports(),
        st.lists(valid_exports(), min_size=1, max_size=3).map(lambda xs: {"exports": xs}),
    ),
    st.booleans(),
)
def test_webhook_valid_is_accepted_for_processing(payload: dict[str, Any], b64: bool) -> None:
    """A correctly signed webhook with a valid body gets a well-formed 202 of result events."""
    if "exports" in payload:
        ids = [e["volume_id"] for e in payload["exports"]]
        if len(set(ids)) != len(ids):
            return
    response = run(signed_webhook(json.dumps(payload).encode(), b64=b64), invalid=False)
    body = check_apig(response)
    assert response["statusCode"] == 202, response
    wanted = len(payload["exports"]) if "exports" in payload else 1
    assert len(body["results"]) == wanted  # the unknown server: one rejection


def slack_event(
    form: str | bytes,
    *,
    sign: bool = True,
    ts: int = TS,
    secret: str = SLACK_SECRET,
    b64: bool = False,
) -> dict[str, Any]:
    raw = form.encode() if isinstance(form, str) else form
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if sign:
        digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
        headers["X-Slack-Request-Timestamp"] = str(ts)
        headers["X-Slack-Signature"] = f"v0={digest}"
    body = base64.b64encode(raw).decode() if b64 else raw.decode("utf-8")
    return apig(body, headers, b64=b64)


def slack_form(text: str, user: str = SLACK_USER, channel: str = SLACK_CHANNEL) -> str:
    return urlencode(
        {
            "token": "t",
            "team_id": "T1",
            "channel_id": channel,
            "user_id": user,
            "user_name": "ann",
            "command": "/evs-export",
            "text": text,
            "response_url": "https://hooks.slack.com/commands/T1/1/x",
            "trigger_id": "1.2.3",
        }
    )


no_uuid_text = st.text(max_size=200).filter(lambda s: _UUID_ANYWHERE.search(s) is None)


@st.composite
def invalid_slack(draw: st.DrawFn) -> dict[str, Any]:
    """A Slack command that may not or can not run: unsigned, forged, stale, not allowed,
    not a form, not UTF-8, or text naming no valid command."""
    how = draw(
        st.sampled_from(
            [
                "unsigned",
                "forged",
                "stale",
                "user",
                "channel",
                "junk_form",
                "invalid_utf8",
                "text",
                "bad_option",
                "missing_user",
            ]
        )
    )
    valid_text = f"{uuid.UUID(int=3)} name=nightly force"
    if how == "unsigned":
        return slack_event(slack_form(valid_text), sign=False)
    if how == "forged":
        secret = draw(st.text(min_size=1, max_size=40).filter(lambda s: s != SLACK_SECRET))
        return slack_event(slack_form(valid_text), secret=secret)
    if how == "stale":
        return slack_event(slack_form(valid_text), ts=TS - draw(st.integers(301, 10**8)))
    if how == "user":
        return slack_event(
            slack_form(
                valid_text, user=draw(st.text(max_size=20).filter(lambda u: u != SLACK_USER))
            )
        )
    if how == "channel":
        return slack_event(
            slack_form(
                valid_text,
                channel=draw(st.text(min_size=1, max_size=20).filter(lambda c: c != SLACK_CHANNEL)),
            )
        )
    if how == "junk_form":
        return slack_event(draw(no_uuid_text))
    if how == "invalid_utf8":
        return slack_event(b"text=" + draw(st.binary(min_size=1, max_size=50)) + b"\xff", b64=True)
    if how == "bad_option":
        opt = draw(
            st.sampled_from(
                [
                    "format=iso",
                    "os=beos",
                    "container=zip",
                    'name="a/b"',
                    "force=1",
                    "force force",
                    "colour=red",
                    "name",
                    'name="unterminated',
                ]
            )
        )
        return slack_event(slack_form(f"{uuid.UUID(int=3)} {opt}"))
    if how == "missing_user":
        return slack_event(urlencode({"channel_id": SLACK_CHANNEL, "text": valid_text}))
    return slack_event(slack_form(draw(no_uuid_text)))


@HYPOTHESIS
@given(invalid_slack())
def test_slack_invalid_sends_nothing(event: dict[str, Any]) -> None:
    """A Slack command that may not or can not run gets a well-formed reply (401 for a bad
    signature, else 200 with an ephemeral message) and sends nothing."""
    response = run(event, invalid=True)
    body = check_apig(response)
    if response["statusCode"] == 200 and body is not None:
        assert body["response_type"] == "ephemeral" and body["text"]
    else:
        assert response["statusCode"] == 401 or body is None, response


@HYPOTHESIS
@given(
    st.one_of(
        st.tuples(uuids, good_names).map(lambda t: f'{t[0]} name="{t[1]}" format=qcow2 force'),
        uuids.map(lambda s: f"status {s}"),
        uuids.map(lambda s: f"server {s} force"),
        st.just("help"),
        st.just(""),
    ),
    st.booleans(),
)
def test_slack_valid_is_answered(text: str, b64: bool) -> None:
    """A signed command from an allowed user gets a 200 ephemeral Slack message."""
    response = run(slack_event(slack_form(text), b64=b64), invalid=False)
    body = check_apig(response)
    assert response["statusCode"] == 200 and body["response_type"] == "ephemeral"


def test_slack_ssl_check_answers_empty() -> None:
    """Slack's ssl_check probe gets the empty 200 text/plain answer, and nothing is sent."""
    response = run(slack_event("token=x&ssl_check=1", sign=False), invalid=True)
    assert check_apig(response) is None


# -- CTS, chat jobs, continuations ---------------------------------------------------------


@st.composite
def invalid_cts(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A CTS event that names no server to export; the flag says whether it is a rejection
    (True) or a trace that needs no export (False)."""
    how = draw(st.sampled_from(["not_object", "other_trace", "no_server", "bad_time"]))
    server = str(uuid.UUID(int=11))
    junk_request = json_values.filter(lambda v: _UUID_ANYWHERE.search(json.dumps(v)) is None)
    if how == "not_object":
        return {"cts": draw(non_mappings)}, True
    if how == "other_trace":
        trace = draw(st.text(max_size=30).filter(lambda t: t != "stopServer") | non_strings)
        return {"cts": {"trace_name": trace, "service_type": "ECS", "resource_id": server}}, False
    if how == "no_server":
        cts = {
            "trace_name": "stopServer",
            "service_type": draw(st.sampled_from(["ECS", "ecs"])),
            "resource_type": "ecs",
            "resource_id": draw(bad_ids),
            "request": draw(junk_request | junk_request.map(json.dumps)),
            "trace_id": draw(st.text(max_size=300) | non_strings),
        }
        return {"cts": cts}, True
    cts = {
        "trace_name": "stopServer",
        "service_type": "ECS",
        "resource_id": server,
        "time": draw(st.sampled_from(BAD_TIMES)),
    }
    return {"cts": cts}, True


@HYPOTHESIS
@given(invalid_cts())
def test_cts_invalid_sends_nothing(case: tuple[dict[str, Any], bool]) -> None:
    """A CTS event that names no server (or a trace that needs none) sends nothing."""
    event, rejected = case
    result = run(event, invalid=True)
    if rejected:
        check_rejected(result)
        assert result["results"][0]["data"]["error"]["field"].startswith("cts")
    else:
        assert check_events(result) == [] and result["message"]


@HYPOTHESIS
@given(uuids, st.one_of(st.none(), st.text(max_size=40), non_strings))
def test_cts_valid_is_answered(server: str, trace_id: Any) -> None:
    """A stopServer trace of a (here unknown) server is answered with well-formed events."""
    event = {
        "cts": {
            "trace_name": "stopServer",
            "service_type": "ECS",
            "resource_id": server,
            "trace_id": trace_id,
            "time": "2016/12/08 11:07:28 GMT+08:00",
        }
    }
    check_events(run(event, invalid=False))


slack_urls = (
    st.sampled_from(
        [
            "https://hooks.slack.com/commands/T1/2/x",
            "http://hooks.slack.com/x",
            "https://evil.example/x",
            "https://hooks.slack.com.evil.example/x",
            "https://user@hooks.slack.com@evil.example/",
            "javascript:alert(1)",
            "",
        ]
    )
    | json_values
)


@st.composite
def invalid_chat_jobs(draw: st.DrawFn) -> dict[str, Any]:
    job: dict[str, Any] = {
        "server_id": str(uuid.UUID(int=12)),
        "image_name": "{server_name}-{volume_name}",
        "time": TS,
        "force": True,
        "response_url": draw(slack_urls),
        "correlation_id": draw(st.text(max_size=300) | non_strings),
    }
    how = draw(st.sampled_from(["server_id", "image_name", "time", "force", "not_object"]))
    if how == "server_id":
        job["server_id"] = draw(bad_ids)
    elif how == "image_name":
        job["image_name"] = draw(
            st.sampled_from(["", "{nope}", "{", "}", "x" * 513, 3, None, "{time!s}"])
        )
    elif how == "time":
        job["time"] = draw(st.sampled_from(BAD_TIMES))
    elif how == "force":
        job["force"] = draw(json_values.filter(lambda v: not isinstance(v, bool)))
    else:
        return {JOB_KEY: draw(non_mappings)}
    return {JOB_KEY: job}


@HYPOTHESIS
@given(invalid_chat_jobs())
def test_chat_job_invalid_sends_nothing(event: dict[str, Any]) -> None:
    """A chat job with a broken field is rejected, naming it; only Slack's own reply host
    may be contacted (never a URL the job names elsewhere)."""
    check_rejected(run(event, invalid=True))


@st.composite
def invalid_orders(draw: st.DrawFn) -> Any:
    how = draw(st.sampled_from(["not_object", "volume", "body"]))
    if how == "not_object":
        return draw(non_mappings)
    if how == "volume":
        return {"volume_id": draw(bad_ids), "body": {ACTION: {"image_name": "ok"}}}
    broken = draw(invalid_exports(BODY_BREAKS))
    body = {k: v for k, v in broken.items() if k != "volume_id"}
    return {
        "volume_id": str(uuid.UUID(int=13)),
        "body": body,
        "policy": draw(json_values),
        "keep": draw(json_values),
        "dry_run": draw(json_values),
    }


@HYPOTHESIS
@given(
    st.one_of(
        st.lists(invalid_orders(), min_size=1, max_size=4),
        non_strings.filter(lambda v: not (isinstance(v, list) and v)),
    ),
    json_values,
    slack_urls,
    st.sampled_from(["direct", "timer", "webhook", "chat", "cts", "evil", None]),
)
def test_continuation_invalid_sends_nothing(orders: Any, hop: Any, url: Any, trigger: Any) -> None:
    """A continuation whose orders are all broken is rejected order by order, nothing sent."""
    event = {
        CONTINUATION_KEY: {
            "hop": hop,
            "trigger": trigger,
            "orders": orders,
            "response_url": url,
            "correlation_id": "c-1",
        }
    }
    check_rejected(run(event, invalid=True))


@HYPOTHESIS
@given(st.lists(valid_exports(), min_size=1, max_size=3), json_values)
def test_continuation_valid_is_answered(exports: list[dict[str, Any]], hop: Any) -> None:
    """A continuation with valid orders is answered with one event per order."""
    orders = [{"volume_id": e["volume_id"], "body": {ACTION: e[ACTION]}} for e in exports]
    result = run({CONTINUATION_KEY: {"hop": hop, "orders": orders}}, invalid=False)
    assert len(check_events(result)) == len(orders)


@st.composite
def invalid_waits(draw: st.DrawFn) -> Any:
    """A wait for stopping servers (function.stopwait) with one field broken."""
    wait: dict[str, Any] = {
        "policy": "on-stop",
        "template": "{server_name}-{volume_name}",
        "time": "2026-11-25T18:00:00Z",
        "options": {"force": True},
        "server_ids": [str(uuid.UUID(int=21))],
        "server_tag": ["evs-export", "on-stop"],
        "stop_deadline": "2026-11-25T18:10:00Z",
    }
    if draw(st.booleans()):
        return draw(non_mappings)
    key = draw(st.sampled_from(["template", "options", "server_ids", "server_tag", "time"]))
    bad = {
        "template": st.one_of(non_strings, st.just(""), st.just("x" * 600)),
        "options": st.one_of(non_mappings, st.just({"force": "yes"}), st.just({"evil": 1})),
        "server_ids": st.one_of(non_strings, st.lists(bad_ids, min_size=1, max_size=2)),
        "server_tag": st.one_of(st.just(["a"]), st.just([1, 2]), st.just("k=v")),
        "time": st.one_of(st.just("yesterday"), st.just(None), st.just(True)),
    }[key]
    wait[key] = draw(bad)
    return wait


@HYPOTHESIS
@given(st.lists(invalid_waits(), min_size=1, max_size=3))
def test_continuation_invalid_waits_send_nothing(waits: list[Any]) -> None:
    """A continuation whose waits for stopping servers are broken is rejected wait by wait,
    each naming its field; nothing is sent."""
    event = {CONTINUATION_KEY: {"hop": 1, "trigger": "cts", "orders": [], "waits": waits}}
    result = run(event, invalid=True)
    check_rejected(result)
    assert result["summary"]["rejected"] == len(waits)


# -- whatever arrives at the handler -------------------------------------------------------


class JunkContext:
    """A FunctionGraph context whose getters return junk or raise."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("get"):
            raise AttributeError(name)
        value = self.values.get(name, None)

        def getter(*_args: object) -> Any:
            if value == "raise":
                raise RuntimeError("context getter failed")
            return value

        return getter


GETTERS = [
    "getRequestID",
    "getRemainingTimeInMilliSeconds",
    "getSecurityAccessKey",
    "getSecuritySecretKey",
    "getSecurityToken",
    "getFunctionName",
    "getVersion",
    "getProjectID",
]


@HYPOTHESIS
@given(
    json_values | invalid_exports() | st.builds(timer_with, json_values),
    st.none()
    | st.dictionaries(st.sampled_from(GETTERS), scalars | st.just("raise"), max_size=8).map(
        JunkContext
    ),
)
def test_handler_never_raises(event: Any, context: Any) -> None:
    """handler.handler returns a result dict for any JSON value and any context; with no
    credentials and no endpoints configured nothing can be sent."""
    with mock.patch.dict(os.environ, {"LOG_LEVEL": "INFO"}, clear=True):
        result = handler.handler(event, context)
    assert isinstance(result, dict)
    if set(result) >= {"statusCode", "body"}:
        check_apig(result)
    else:
        check_events(result)


# -- size limits ---------------------------------------------------------------------------


def test_apig_body_limit() -> None:
    """A body over MAX_BODY_BYTES (plain or base64) is refused with 413 naming ``body`` and
    the limit; a body of exactly the limit is read (and here refused for its signature)."""
    over = "x" * (MAX_BODY_BYTES + 1)
    for event in (apig(over, {}), apig(base64.b64encode(over.encode()).decode(), {}, b64=True)):
        response = run(event, invalid=True)
        body = check_apig(response)
        assert response["statusCode"] == 413
        assert body["error"]["field"] == "body" and str(MAX_BODY_BYTES) in body["error"]["message"]
    multibyte = "é" * (MAX_BODY_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
    response = run(apig(multibyte, {}), invalid=True)
    assert response["statusCode"] == 413
    at_limit = run(apig("x" * MAX_BODY_BYTES, webhook_headers(b"y")), invalid=True)
    assert at_limit["statusCode"] == 401


def test_batch_limit() -> None:
    """More than MAX_BATCH exports are refused as a whole, naming ``exports`` and the limit;
    exactly MAX_BATCH are parsed into orders."""
    items = [good_export(str(uuid.UUID(int=i + 1)), f"b{i}") for i in range(direct.MAX_BATCH + 1)]
    result = run({"exports": items}, invalid=True)
    [only] = check_events(result)
    error = only["data"]["error"]
    assert only["type"] == "evs.export.rejected"
    assert error["field"] == "exports" and str(direct.MAX_BATCH) in error["message"]
    work = direct.parse({"exports": items[:-1]}, SETTINGS, make_runtime())
    assert len(work.items) == direct.MAX_BATCH
    assert all(type(i).__name__ == "ExportOrder" for i in work.items)


def test_timer_user_event_limit() -> None:
    """A user_event longer than MAX_USER_EVENT is refused naming ``user_event`` and the
    limit; a valid policy padded to exactly the limit is accepted."""
    policy = json.dumps(good_policy())
    padded = policy + " " * (timer_policy.MAX_USER_EVENT - len(policy))
    result = run(timer_with(padded + " "), invalid=True)
    [only] = check_events(result)
    assert only["data"]["error"]["field"] == "user_event"
    assert str(timer_policy.MAX_USER_EVENT) in only["data"]["error"]["message"]
    assert timer_policy.parse_policy(padded).policy == "nightly"
