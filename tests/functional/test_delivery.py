"""Result delivery end to end: exports through the app, events to a loopback webhook receiver
(signed per Standard Webhooks) and to the fake SMN topic, with the same event IDs."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from fakecloud import Fault
from function.app import invoke
from function.signatures import verify_standard_webhook
from tests.functional.conftest import (
    RESULT_SECRET,
    TOPIC,
    VOLUME_A,
    VOLUME_B,
    Harness,
    export_batch,
)
from tests.functional.webhook_receiver import Answer, Receiver


def sinks_env(url: str) -> dict[str, str]:
    return {
        "RESULT_WEBHOOK_URL": url,
        "RESULT_WEBHOOK_SECRET": RESULT_SECRET,
        "RESULT_SMN_TOPIC_URN": TOPIC,
    }


def test_two_exports_reach_webhook_and_smn_with_one_503_retried(harness: Harness) -> None:
    """Two accepted exports are two signed webhook deliveries (one after a 503) and two SMN
    messages, carrying the result's event IDs."""
    with Receiver([503]) as rx:
        result = harness.run(export_batch(VOLUME_A, VOLUME_B), **sinks_env(rx.url))
    ids = [e["id"] for e in result["results"]]
    assert [e["type"] for e in result["results"]] == ["evs.export.accepted"] * 2
    assert result["deliveries"] == {"sinks": ["webhook", "smn"], "delivered": 4, "failed": []}

    now = int(harness.clock().timestamp())
    assert len(rx.requests) == 3 and [r.status for r in rx.requests].count(503) == 1
    for req in rx.requests:
        assert req.headers["content-type"] == "application/cloudevents+json; charset=UTF-8"
        msg_id = verify_standard_webhook(req.body, req.headers, [RESULT_SECRET], now)
        assert json.loads(req.body)["id"] == msg_id
    seen = Counter(r.headers["webhook-id"] for r in rx.requests)
    assert set(seen) == set(ids) and sorted(seen.values()) == [1, 2]
    by_id = {json.loads(r.body)["id"]: json.loads(r.body) for r in rx.requests}
    assert [by_id[i] for i in ids] == result["results"]

    messages = harness.cloud.smn.messages
    assert sorted(json.loads(m["message"])["id"] for m in messages) == sorted(ids)
    for m in messages:
        event = json.loads(m["message"])
        assert m["topic_urn"] == TOPIC
        assert m["subject"] == (
            f"evs.export.accepted vol {event['subject']} -> image {event['data']['image_id']}"
        )
        assert {a["name"]: a["value"] for a in m["message_attributes"]} == {
            "type": "evs.export.accepted",
            "volume_id": event["subject"],
        }


def test_webhook_that_keeps_failing_is_reported_and_logged(harness: Harness) -> None:
    """A webhook still failing after its retries is a deliveries.failed entry and an ERROR
    line per event, while SMN still gets every event."""
    with Receiver(default=500) as rx:
        result = harness.run(export_batch(VOLUME_A), **sinks_env(rx.url))
    [event] = result["results"]
    assert len(rx.requests) == 5  # every attempt, same webhook-id
    assert {r.headers["webhook-id"] for r in rx.requests} == {event["id"]}
    deliveries = result["deliveries"]
    assert deliveries["delivered"] == 1
    assert deliveries["failed"] == [
        {
            "event_id": event["id"],
            "sink": "webhook",
            "error": {"code": "HTTP500", "message": "the webhook answered 500", "http_status": 500},
        }
    ]
    errors = [line for line in harness.logs() if line["level"] == "ERROR"]
    assert [(e["message"], e["event_id"], e["sink"]) for e in errors] == [
        ("result delivery failed", event["id"], "webhook")
    ]
    assert len(harness.cloud.smn.messages) == 1


def test_gone_webhook_is_not_retried(harness: Harness) -> None:
    """A 410 answer ends that event's delivery after one attempt."""
    with Receiver([Answer(410)]) as rx:
        result = harness.run(export_batch(VOLUME_A), RESULT_WEBHOOK_URL=rx.url, **_secret())
    assert len(rx.requests) == 1
    assert result["deliveries"]["failed"][0]["error"]["code"] == "Gone"


def test_throttled_webhook_waits_retry_after(harness: Harness) -> None:
    """A 429 with Retry-After is waited out (through the runtime's sleep) and retried."""
    with Receiver([Answer(429, (("Retry-After", "3"),))]) as rx:
        result = harness.run(export_batch(VOLUME_A), RESULT_WEBHOOK_URL=rx.url, **_secret())
    assert len(rx.requests) == 2
    assert result["deliveries"]["failed"] == []
    assert max(harness.sleeps) >= 3


def test_no_sink_configured_means_no_deliveries_key(harness: Harness) -> None:
    """Without a webhook, topic or Slack URL the return value has no deliveries section."""
    result = harness.run(export_batch(VOLUME_A))
    assert "deliveries" not in result
    assert harness.cloud.smn.messages == []


def test_smn_failure_is_reported_with_the_event_id(harness: Harness) -> None:
    """An SMN topic that does not exist fails each event's publish, reported by ID."""
    missing = TOPIC.replace("cn-north-4", "cn-north-1")
    result = harness.run(export_batch(VOLUME_A), RESULT_SMN_TOPIC_URN=missing)
    [event] = result["results"]
    [failed] = result["deliveries"]["failed"]
    assert failed["event_id"] == event["id"] and failed["sink"] == "smn"
    assert failed["error"]["http_status"] == 404


def test_accepted_event_keeps_tagging_error_and_is_still_delivered(harness: Harness) -> None:
    """A refused provenance tag leaves the export accepted, with data.tagging_error."""
    harness.cloud.faults.add(
        Fault(
            method="POST",
            path=r"/images/[^/]+/tags/action$",
            status=400,
            body={"error_code": "IMG.0001", "error_msg": "tags refused"},
        )
    )
    with Receiver() as rx:
        result = harness.run(export_batch(VOLUME_A), RESULT_WEBHOOK_URL=rx.url, **_secret())
    [event] = result["results"]
    assert event["type"] == "evs.export.accepted"
    assert event["data"]["tagging_error"] == {"code": "IMG.0001", "message": "tags refused"}
    assert json.loads(rx.requests[0].body) == event


def test_invoke_with_env_delivers_through_the_real_entry(harness: Harness) -> None:
    """app.invoke (as the FunctionGraph handler calls it) delivers to webhook and SMN."""
    harness.clock.set(datetime.now(timezone.utc))  # invoke runs on the real clock
    env: dict[str, Any] = {**harness.env}
    with Receiver() as rx:
        env.update(sinks_env(rx.url))
        result = invoke(export_batch(VOLUME_A), None, env=env)
    [event] = result["results"]
    assert result["deliveries"]["delivered"] == 2
    assert rx.requests[0].headers["webhook-id"] == event["id"]


def _secret() -> dict[str, str]:
    return {"RESULT_WEBHOOK_SECRET": RESULT_SECRET}
