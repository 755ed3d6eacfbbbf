"""Result sinks: the signed webhook, SMN publish, Slack's response_url, and deliver_all."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from function.cloud.client import CloudClient
from function.errors import ApiError, BudgetExhausted, TransportError
from function.runtime import Runtime
from function.signatures import verify_standard_webhook
from function.sinks import BrokenSink, Sink, build_sinks, deliver_all
from function.sinks.slack import SlackSink
from function.sinks.smn import SmnSink, attributes, publish_body, subject_line
from function.sinks.webhook import CONTENT_TYPE, WebhookSink, event_body
from function.work import Exports
from tests.unit.fakes import (
    IMAGE,
    PROJECT,
    VOLUME,
    FakeTime,
    ScriptedTransport,
    make_runtime,
    make_settings,
    response,
)

SECRET = "whsec_" + base64.b64encode(b"result-webhook-secret-32-bytes!!").decode()
HOOK = "https://hooks.example.com/evs-export"
URN = f"urn:smn:cn-north-4:{PROJECT}:evs_results"


def event(n: int = 1, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"evt-{n}",
        "source": "urn:fss:cn-north-4:p:function:default:evs-export:latest",
        "type": "evs.export.accepted",
        "subject": VOLUME,
        "time": "2025-01-01T00:00:00Z",
        "datacontenttype": "application/json",
        "data": {"volume_id": VOLUME, "image_id": IMAGE, "image_name": "nightly-é", **data},
    }


def webhook(transport: ScriptedTransport, runtime: Runtime) -> WebhookSink:
    return WebhookSink(HOOK, SECRET, transport, runtime, make_settings())


def verify(sent_headers: dict[str, str], body: bytes, now: int) -> str:
    lower = {k.lower(): v for k, v in sent_headers.items()}
    return verify_standard_webhook(body, lower, [SECRET], now)


def test_webhook_sends_structured_cloudevent_with_verifiable_signature() -> None:
    """The webhook body is the event JSON in structured mode, signed per Standard Webhooks."""
    fake = FakeTime()
    transport = ScriptedTransport(response(204))
    webhook(transport, make_runtime(fake)).deliver(event())
    [sent] = transport.sent
    assert sent.method == "POST" and sent.url == HOOK
    assert sent.headers["Content-Type"] == CONTENT_TYPE
    assert json.loads(sent.body) == event()
    assert sent.body == event_body(event())
    assert verify(sent.headers, sent.body, int(fake.now.timestamp())) == "evt-1"
    assert sent.headers["webhook-timestamp"] == str(int(fake.now.timestamp()))


def test_webhook_retries_503_with_same_id_and_fresh_signature() -> None:
    """A 503 is retried with the same webhook-id and a fresh timestamp and signature."""
    fake = FakeTime()
    transport = ScriptedTransport(response(503), response(200))
    webhook(transport, make_runtime(fake)).deliver(event())
    first, second = transport.sent
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "evt-1"
    assert first.body == second.body
    assert verify(second.headers, second.body, int(fake.now.timestamp())) == "evt-1"
    assert len(fake.sleeps) == 1


def test_webhook_signs_each_attempt_at_its_own_time() -> None:
    """Each attempt's timestamp is the clock at that attempt (Retry-After moves it on)."""
    fake = FakeTime()
    transport = ScriptedTransport(response(503, headers={"Retry-After": "20"}), response(200))
    webhook(transport, make_runtime(fake)).deliver(event())
    first, second = transport.sent
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) >= 20
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]


def test_webhook_honours_retry_after_on_429() -> None:
    """A 429's Retry-After is waited out before the next attempt."""
    fake = FakeTime()
    transport = ScriptedTransport(response(429, headers={"Retry-After": "7"}), response(200))
    webhook(transport, make_runtime(fake)).deliver(event())
    assert len(transport.sent) == 2
    assert fake.sleeps[0] >= 7


def test_webhook_retries_connection_errors() -> None:
    """A refused connection is retried like a 5xx."""
    refused = TransportError("ConnectionRefused", "connection failed", maybe_sent=False)
    transport = ScriptedTransport(refused, response(200))
    webhook(transport, make_runtime()).deliver(event())
    assert len(transport.sent) == 2


def test_webhook_410_is_final_without_retry() -> None:
    """410 Gone fails the delivery at once: no second attempt."""
    transport = ScriptedTransport(response(410))
    with pytest.raises(ApiError) as info:
        webhook(transport, make_runtime()).deliver(event())
    assert info.value.code == "Gone"
    assert len(transport.sent) == 1


def test_webhook_redirect_is_a_failure_not_followed() -> None:
    """A 3xx answer is a failure, and its Location is not requested."""
    transport = ScriptedTransport(response(302, headers={"Location": "https://elsewhere/"}))
    with pytest.raises(ApiError) as info:
        webhook(transport, make_runtime()).deliver(event())
    assert info.value.code == "Redirected"
    assert [s.url for s in transport.sent] == [HOOK]


def test_webhook_does_not_start_without_time_left() -> None:
    """Nothing is sent when the remaining time would not cover an attempt."""
    transport = ScriptedTransport()
    with pytest.raises(BudgetExhausted):
        webhook(transport, make_runtime(FakeTime(budget_ms=3500))).deliver(event())
    assert transport.sent == []


def test_webhook_gives_up_within_budget() -> None:
    """Retries stop when the backoff would not fit the remaining time."""
    fake = FakeTime(budget_ms=10_000)
    transport = ScriptedTransport(*[response(503, headers={"Retry-After": "30"})] * 5)
    with pytest.raises(BudgetExhausted):
        webhook(transport, make_runtime(fake)).deliver(event())
    assert len(transport.sent) == 1
    assert fake.budget_ms > 0


def test_give_up_is_logged_as_error_and_reported() -> None:
    """A delivery that fails after every retry is an ERROR line and a failed entry."""
    transport = ScriptedTransport(*[response(500)] * 5)
    sink = webhook(transport, make_runtime())
    with capture_logs() as logs:
        report = deliver_all([sink], [event(1)], max_workers=4)
    assert len(transport.sent) == 5  # max_attempts
    assert report["delivered"] == 0
    [failed] = report["failed"]
    assert failed["event_id"] == "evt-1" and failed["sink"] == "webhook"
    assert failed["error"]["http_status"] == 500
    errors = [line for line in logs if line["log_level"] == "error"]
    assert errors and errors[0]["event_id"] == "evt-1" and errors[0]["sink"] == "webhook"


def test_smn_publishes_event_with_subject_and_attributes() -> None:
    """SMN gets the event JSON as message, a one-line subject and filterable attributes."""
    transport = ScriptedTransport(response(200, {"request_id": "r", "message_id": "m"}))
    runtime = make_runtime()
    client = CloudClient(make_settings(), runtime, transport)
    SmnSink(URN, lambda: client).deliver(event())
    [sent] = transport.sent
    assert sent.url.startswith(f"https://smn.cn-north-4.myhuaweicloud.com/v2/{PROJECT}/")
    assert sent.url.endswith(f"/notifications/topics/{URN}/publish")
    assert sent.headers["Authorization"].startswith("SDK-HMAC-SHA256 ")
    body = json.loads(sent.body)
    assert json.loads(body["message"]) == event()
    assert body["subject"] == f"evs.export.accepted vol {VOLUME} -> image {IMAGE}"
    assert body["message_attributes"] == [
        {"name": "type", "type": "STRING", "value": "evs.export.accepted"},
        {"name": "volume_id", "type": "STRING", "value": VOLUME},
    ]


def test_smn_subject_is_one_line_within_512_bytes() -> None:
    """The subject stays one line of at most 512 bytes whatever the data holds."""
    ev = event(reason="x\n" * 400 + "é")
    ev["type"] = "evs.export.skipped"
    subject = subject_line(ev)
    assert "\n" not in subject and len(subject.encode()) <= 512
    subject.encode("utf-8").decode("utf-8")


def test_smn_attributes_skip_missing_volume() -> None:
    """An event without a volume carries only the type attribute."""
    ev = event()
    ev["data"]["volume_id"] = None
    assert attributes(ev) == [{"name": "type", "type": "STRING", "value": ev["type"]}]
    assert publish_body(ev)["subject"] == f"evs.export.accepted vol {VOLUME} -> image {IMAGE}"


def test_smn_retries_a_throttled_publish() -> None:
    """A 429 from SMN is retried through the signed client."""
    transport = ScriptedTransport(response(429, {"code": "x", "message": "slow"}), response(200))
    client = CloudClient(make_settings(), make_runtime(), transport)
    SmnSink(URN, lambda: client).deliver(event())
    assert len(transport.sent) == 2


def test_bad_topic_urn_fails_every_event_by_name() -> None:
    """A malformed RESULT_SMN_TOPIC_URN reports each event as failed, naming the variable."""
    settings = make_settings(result_smn_topic_urn="not-a-urn")
    sinks = build_sinks(settings, make_runtime(), Exports("direct", "c"), ScriptedTransport, _nope)
    report = deliver_all(sinks, [event(1), event(2)], max_workers=2)
    assert [f["event_id"] for f in report["failed"]] == ["evt-1", "evt-2"]
    assert report["failed"][0]["error"]["field"] == "RESULT_SMN_TOPIC_URN"


def test_webhook_without_secret_is_reported_not_sent_unsigned() -> None:
    """RESULT_WEBHOOK_URL without RESULT_WEBHOOK_SECRET sends nothing and reports it."""
    transport = ScriptedTransport()
    settings = make_settings(result_webhook_url=HOOK)
    sinks = build_sinks(settings, make_runtime(), Exports("direct", "c"), lambda: transport, _nope)
    assert isinstance(sinks[0], BrokenSink)
    report = deliver_all(sinks, [event()], max_workers=1)
    assert report["failed"][0]["error"]["field"] == "RESULT_WEBHOOK_SECRET"
    assert transport.sent == []


def test_slack_posts_one_message_for_the_batch() -> None:
    """Chat-triggered work gets one Slack message for all its events."""
    transport = ScriptedTransport(response(200, b"ok"))
    sink = SlackSink(
        "https://hooks.slack.com/commands/T/1/x", transport, make_runtime(), make_settings()
    )
    report = deliver_all([sink], [event(1), event(2)], max_workers=4)
    assert report == {"sinks": ["slack"], "delivered": 2, "failed": []}
    [sent] = transport.sent
    message = json.loads(sent.body)
    assert message["response_type"] == "ephemeral"
    assert "2 export results" in message["text"]
    assert "Authorization" not in sent.headers


def test_slack_response_url_must_be_https() -> None:
    """A plain-http response_url to another host is refused and reported."""
    work = Exports("chat", "c", response_url="http://hooks.slack.com/commands/x")
    sinks = build_sinks(make_settings(), make_runtime(), work, ScriptedTransport, _nope)
    report = deliver_all(sinks, [event()], max_workers=1)
    assert report["failed"][0]["sink"] == "slack"
    assert report["failed"][0]["error"]["field"] == "response_url"


def test_deliver_all_counts_every_pair_concurrently() -> None:
    """Three events to two sinks are six deliveries, done across threads."""
    hook_transport = ScriptedTransport(*[response(200)] * 3)
    smn_transport = ScriptedTransport(*[response(200)] * 3)
    client = CloudClient(make_settings(), make_runtime(), smn_transport)
    sinks: list[Sink] = [
        webhook(hook_transport, make_runtime()),
        SmnSink(URN, lambda: client),
    ]
    report = deliver_all(sinks, [event(1), event(2), event(3)], max_workers=4)
    assert report == {"sinks": ["webhook", "smn"], "delivered": 6, "failed": []}
    ids = sorted(s.headers["webhook-id"] for s in hook_transport.sent)
    assert ids == ["evt-1", "evt-2", "evt-3"]


def test_deliver_all_without_events_sends_nothing() -> None:
    """No events, no requests."""
    transport = ScriptedTransport()
    assert deliver_all([webhook(transport, make_runtime())], [], 4)["delivered"] == 0
    assert transport.sent == []


def _nope() -> CloudClient:
    raise AssertionError("no cloud client expected")
