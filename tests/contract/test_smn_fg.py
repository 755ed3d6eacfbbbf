"""SMN publish and FunctionGraph async invocation are validated and recorded."""

from __future__ import annotations

import json

import pytest
import requests

from tests.contract.conftest import PROJECT, REGION, Client

TOPIC = f"urn:smn:{REGION}:{PROJECT}:evs_export_results"
FUNCTION = f"urn:fss:{REGION}:{PROJECT}:function:default:evs-export:latest"


def publish(client: Client, body: object, topic: str = TOPIC) -> requests.Response:
    """POST the publish call."""
    path = f"/v2/{PROJECT}/notifications/topics/{topic}/publish"
    return client.call("POST", path, service="smn", body=body)


def test_publish_message(client: Client) -> None:
    """A message is accepted with request_id and message_id and recorded."""
    body = {
        "subject": "done",
        "message": "hello",
        "time_to_live": "3600",
        "message_attributes": [{"name": "status", "type": "STRING", "value": "ok"}],
    }
    response = publish(client, body)
    assert response.status_code == 200
    answer = response.json()
    [message] = client.cloud.smn.messages
    assert message["message_id"] == answer["message_id"]
    assert answer["request_id"]
    assert (message["topic_urn"], message["subject"], message["message"]) == (
        TOPIC,
        "done",
        "hello",
    )
    assert message["message_attributes"] == body["message_attributes"]


def test_publish_structure(client: Client) -> None:
    """A message_structure with a default is accepted and recorded as sent."""
    structure = json.dumps({"default": "d", "https": "{}"})
    assert publish(client, {"message_structure": structure}).status_code == 200
    assert client.cloud.smn.messages[0]["message_structure"] == structure


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": "a", "message_structure": json.dumps({"default": "d"})},
        {"message_structure": "{}"},
        {"message_structure": "not json"},
        {"message": ""},
        {"message": "a", "bogus": 1},
        {"message": "a", "time_to_live": 3600},
        {
            "message": "a",
            "message_attributes": [{"name": "Bad-Name", "type": "STRING", "value": "x"}],
        },
    ],
    ids=["none", "two", "no-default", "bad-json", "empty", "unknown-field", "ttl-int", "bad-attr"],
)
def test_publish_invalid(client: Client, body: object) -> None:
    """Bodies without exactly one valid message kind, or with bad fields, are 400 and not kept."""
    response = publish(client, body)
    assert response.status_code == 400
    assert response.json()["code"].startswith("SMN.")
    assert client.cloud.smn.messages == []


@pytest.mark.parametrize(
    "topic",
    ["urn:smn:cn-north-1:" + PROJECT + ":t", f"urn:smn:{REGION}:{'f' * 32}:t", "not-a-urn"],
)
def test_publish_unknown_topic(client: Client, topic: str) -> None:
    """A topic URN of another region or project, or no URN at all, is 404."""
    assert publish(client, {"message": "x"}, topic).status_code == 404


def invoke(client: Client, urn: str, body: object) -> requests.Response:
    """POST the async invocation."""
    path = f"/v2/{PROJECT}/fgs/functions/{urn}/invocations-async"
    return client.call("POST", path, service="functiongraph", body=body)


def test_invoke_async(client: Client) -> None:
    """An async invocation is 202 with a request_id and recorded with the event."""
    response = invoke(client, FUNCTION, {"exports": [{"volume_id": "v"}]})
    assert response.status_code == 202
    [call] = client.cloud.functiongraph.invocations
    assert call == {
        "function_urn": FUNCTION,
        "body": {"exports": [{"volume_id": "v"}]},
        "request_id": response.json()["request_id"],
    }


def test_invoke_bad_urn(client: Client) -> None:
    """A URN of another project or not a function URN is 404 FSS.0404."""
    other = FUNCTION.replace(PROJECT, "f" * 32)
    for urn in (other, "evs-export"):
        response = invoke(client, urn, {})
        assert response.status_code == 404
        assert response.json()["error_code"] == "FSS.0404"
    assert client.cloud.functiongraph.invocations == []


def test_invoke_body_not_json(client: Client) -> None:
    """A body that is not JSON is 400."""
    path = f"/v2/{PROJECT}/fgs/functions/{FUNCTION}/invocations-async"
    response = client.call("POST", path, service="functiongraph", raw=b"nope")
    assert response.status_code == 400
