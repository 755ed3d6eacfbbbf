"""The API Gateway envelope: decoding trigger events and shaping responses."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from function.apig import (
    BODY_TOO_LARGE,
    MAX_BODY_BYTES,
    ApigRequest,
    apig_response,
    decode_apig,
    is_apig,
)
from function.errors import InvalidInput

BODY = b'{"volume_id": "16369c5d-384d-4e64-b37a-56d898769362"}'


def event(**overrides: Any) -> dict[str, Any]:
    """An APIG event like Huawei's sample (functiongraph_02_0741), body base64-encoded."""
    base: dict[str, Any] = {
        "body": base64.b64encode(BODY).decode(),
        "requestContext": {"apiId": "api-1", "requestId": "ctx-req-1", "stage": "RELEASE"},
        "queryStringParameters": {"responseType": "json"},
        "httpMethod": "POST",
        "pathParameters": {},
        "headers": {
            "x-forwarded-for": "203.0.113.7, 10.0.0.1",
            "host": "example.apig.cn-north-4.huaweicloudapis.com",
            "content-type": "application/json",
        },
        "path": "/exports",
        "isBase64Encoded": True,
    }
    base.update(overrides)
    return base


def test_is_apig_needs_http_method_and_request_context() -> None:
    """An event is APIG only when it has both httpMethod and requestContext (PLATFORM §2.4)."""
    assert is_apig(event())
    assert not is_apig({"httpMethod": "POST"})
    assert not is_apig({"requestContext": {}})
    assert not is_apig({"volume_id": "x"})
    assert not is_apig("POST")


def test_decode_apig_base64_body() -> None:
    """A base64 body (isBase64Encoded true, APIG's default) is decoded to its exact bytes."""
    request = decode_apig(event())
    assert request == ApigRequest(
        method="POST",
        path="/exports",
        headers={
            "x-forwarded-for": "203.0.113.7, 10.0.0.1",
            "host": "example.apig.cn-north-4.huaweicloudapis.com",
            "content-type": "application/json",
        },
        query={"responseType": "json"},
        raw_body=BODY,
        request_id="ctx-req-1",
        source_ip="203.0.113.7",
    )


def test_decode_apig_plain_body() -> None:
    """A plain body (isBase64Encoded false, as console tests send) is kept as UTF-8 bytes."""
    request = decode_apig(event(body="名字=nightly", isBase64Encoded=False))
    assert request.raw_body == "名字=nightly".encode()


def test_decode_apig_missing_flag_means_plain_body() -> None:
    """Without isBase64Encoded the body is taken as plain text."""
    raw = event(body="hello")
    del raw["isBase64Encoded"]
    assert decode_apig(raw).raw_body == b"hello"


@pytest.mark.parametrize("body", [None, ""])
def test_decode_apig_empty_body(body: str | None) -> None:
    """A missing or empty body decodes to no bytes."""
    assert decode_apig(event(body=body)).raw_body == b""


def test_decode_apig_lower_cases_header_names() -> None:
    """Header names are lower-cased once, so lookups never depend on the sender's spelling."""
    request = decode_apig(event(headers={"Webhook-Id": "msg_1", "X-Slack-Signature": "v0=ab"}))
    assert request.headers == {"webhook-id": "msg_1", "x-slack-signature": "v0=ab"}
    assert request.header("WEBHOOK-ID") == "msg_1"


def test_decode_apig_joins_repeated_headers() -> None:
    """Two spellings of one header, or a list value, combine as HTTP does, with ", "."""
    request = decode_apig(event(headers={"Accept": "a", "accept": ["b", "c"]}))
    assert request.headers == {"accept": "a, b, c"}


def test_decode_apig_upper_cases_method_and_defaults_path() -> None:
    """The method is upper-cased and a missing path is "/"."""
    raw = event(httpMethod="post")
    del raw["path"]
    request = decode_apig(raw)
    assert (request.method, request.path) == ("POST", "/")


def test_decode_apig_request_id_prefers_header() -> None:
    """The x-request-id header wins over requestContext.requestId."""
    request = decode_apig(event(headers={"X-Request-Id": "hdr-req"}))
    assert request.request_id == "hdr-req"


def test_decode_apig_request_id_absent() -> None:
    """With neither header nor context ID, request_id is None."""
    assert decode_apig(event(requestContext={}, headers={})).request_id is None


def test_decode_apig_source_ip_prefers_x_real_ip() -> None:
    """x-real-ip wins, then the first x-forwarded-for hop, then requestContext.sourceIp."""
    both = {"x-real-ip": "198.51.100.1", "x-forwarded-for": "203.0.113.7"}
    assert decode_apig(event(headers=both)).source_ip == "198.51.100.1"
    context = {"requestId": "r", "sourceIp": "192.0.2.9"}
    assert decode_apig(event(headers={}, requestContext=context)).source_ip == "192.0.2.9"
    assert decode_apig(event(headers={}, requestContext={})).source_ip is None


def test_decode_apig_query_list_keeps_last_value() -> None:
    """A multi-valued query parameter keeps its last value; missing query is empty."""
    assert decode_apig(event(queryStringParameters={"a": ["1", "2"]})).query == {"a": "2"}
    assert decode_apig(event(queryStringParameters=None)).query == {}


def test_decode_apig_media_type() -> None:
    """media_type is the Content-Type without parameters, lower-case."""
    request = decode_apig(
        event(headers={"Content-Type": "Application/X-WWW-Form-Urlencoded; charset=utf-8"})
    )
    assert request.media_type == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"body": "not base64!"}, "body"),
        ({"body": "YWJj\n"}, "body"),
        ({"body": "é"}, "body"),
        ({"body": 42}, "body"),
        ({"isBase64Encoded": "true"}, "isBase64Encoded"),
        ({"httpMethod": ""}, "httpMethod"),
        ({"httpMethod": None}, "httpMethod"),
        ({"path": 3}, "path"),
        ({"headers": ["a"]}, "headers"),
        ({"headers": {"a": 1}}, "headers.a"),
        ({"queryStringParameters": "a=1"}, "queryStringParameters"),
        ({"requestContext": "ctx"}, "requestContext"),
    ],
)
def test_decode_apig_rejects_malformed_envelope(overrides: dict[str, Any], field: str) -> None:
    """A malformed envelope raises InvalidInput naming the offending field."""
    with pytest.raises(InvalidInput) as exc:
        decode_apig(event(**overrides))
    assert exc.value.field == field
    assert exc.value.code == "InvalidInput"


def test_decode_apig_rejects_non_mapping_event() -> None:
    """An event that is not an object raises InvalidInput for "event"."""
    with pytest.raises(InvalidInput) as exc:
        decode_apig([])  # type: ignore[arg-type]
    assert exc.value.field == "event"


def test_decode_apig_accepts_body_at_limit() -> None:
    """A body of exactly MAX_BODY_BYTES is accepted, base64 or plain."""
    data = b"a" * MAX_BODY_BYTES
    assert decode_apig(event(body=base64.b64encode(data).decode())).raw_body == data
    plain = event(body=data.decode(), isBase64Encoded=False)
    assert decode_apig(plain).raw_body == data


@pytest.mark.parametrize(
    "overrides",
    [
        {"body": base64.b64encode(b"a" * (MAX_BODY_BYTES + 1)).decode()},
        {"body": "a" * (MAX_BODY_BYTES + 1), "isBase64Encoded": False},
        {"body": "é" * (MAX_BODY_BYTES // 2 + 1), "isBase64Encoded": False},
        {"body": "A" * (8 * MAX_BODY_BYTES)},
    ],
    ids=["base64", "plain", "multibyte", "huge-base64"],
)
def test_decode_apig_rejects_oversized_body(overrides: dict[str, Any]) -> None:
    """A body over 256 KiB raises InvalidInput on "body" with the 413 code."""
    with pytest.raises(InvalidInput) as exc:
        decode_apig(event(**overrides))
    assert exc.value.field == "body"
    assert exc.value.code == BODY_TOO_LARGE
    assert str(MAX_BODY_BYTES) in exc.value.message


def test_apig_response_serialises_body_as_json() -> None:
    """A non-string body becomes a JSON string, with a JSON content type and no base64."""
    response = apig_response(202, {"summary": {"accepted": 1}, "name": "名字"})
    assert response == {
        "statusCode": 202,
        "headers": {"Content-Type": "application/json"},
        "body": '{"summary": {"accepted": 1}, "name": "名字"}',
        "isBase64Encoded": False,
    }
    assert json.loads(str(response["body"])) == {"summary": {"accepted": 1}, "name": "名字"}


def test_apig_response_passes_string_body_through() -> None:
    """A string body is sent as is, so an empty body (Slack's ssl_check) stays empty."""
    assert apig_response(200, "")["body"] == ""
    assert apig_response(200, '{"a":1}')["body"] == '{"a":1}'


def test_apig_response_merges_headers() -> None:
    """Extra headers are added; a caller's Content-Type replaces the default."""
    response = apig_response(200, "ok", {"content-type": "text/plain", "X-Trace": "t1"})
    assert response["headers"] == {"content-type": "text/plain", "X-Trace": "t1"}
    response = apig_response(401, {"error": "unauthorized"}, {"WWW-Authenticate": "HMAC"})
    assert response["headers"] == {
        "Content-Type": "application/json",
        "WWW-Authenticate": "HMAC",
    }


@pytest.mark.parametrize("status", [99, 600, True])
def test_apig_response_rejects_non_http_status(status: int) -> None:
    """A status outside 100-599 is a programming error and raises ValueError."""
    with pytest.raises(ValueError, match="HTTP status"):
        apig_response(status, {})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_FIELDS = st.sampled_from(
    [
        "httpMethod",
        "path",
        "headers",
        "queryStringParameters",
        "body",
        "isBase64Encoded",
        "requestContext",
    ]
)


@settings(deadline=None)
@given(
    st.dictionaries(_FIELDS, _JSON | st.binary(max_size=40).map(base64.b64encode).map(bytes.decode))
)
def test_decode_apig_raises_only_invalid_input(raw: dict[str, Any]) -> None:
    """On arbitrary JSON-like events decode_apig returns a request or raises InvalidInput."""
    try:
        request = decode_apig(raw)
    except InvalidInput as exc:
        assert exc.field
    else:
        assert request.method == request.method.upper()
        assert all(name == name.lower() for name in request.headers)
        assert len(request.raw_body) <= MAX_BODY_BYTES


@settings(deadline=None)
@given(st.binary(max_size=500))
def test_decode_apig_base64_round_trip(data: bytes) -> None:
    """Any bytes sent base64-encoded come out exactly as sent."""
    assert decode_apig(event(body=base64.b64encode(data).decode())).raw_body == data
