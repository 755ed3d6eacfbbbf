"""SDK-HMAC-SHA256 signing against the vectors of PLATFORM §3.1."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from function.cloud.signing import CONTENT_TYPE, USER_AGENT, sign_request
from function.config import Credentials
from tests.unit.fakes import reference_authorization

NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)
PROJECT = "0123456789abcdef0123456789abcdef"
VOLUME = "11111111-2222-3333-4444-555555555555"
EVS = "https://evs.cn-north-4.myhuaweicloud.com"
EXPORT_PATH = f"/v2/{PROJECT}/volumes/{VOLUME}/action"
BODY = json.dumps(
    {
        "os-volume_upload_image": {
            "image_name": "img-1",
            "force": True,
            "disk_format": "vhd",
            "container_format": "bare",
            "__os_type": "linux",
        }
    }
).encode()
KEYS = Credentials("AKEXAMPLE", "SKEXAMPLE")
POST_AUTH = (
    "SDK-HMAC-SHA256 Access=AKEXAMPLE, SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
    "Signature=bf9ef95ec99a227ecf76a80c51b24b1840f235e9ec8a8f7ad4eac25640bcca5a"
)
POST_TOKEN_AUTH = (
    "SDK-HMAC-SHA256 Access=AKEXAMPLE, "
    "SignedHeaders=content-type;host;x-project-id;x-sdk-date;x-security-token, "
    "Signature=6cb6879a354d760e21728a4146785f2438cb80b14cd9c162352e4f8b9ecb9bc4"
)
GET_URL = (
    f"https://evs.example.com/v2/{PROJECT}/cloudvolumes/detail?limit=10&marker=x~y%2Fz&name=a%20b"
)
GET_AUTH = (
    "SDK-HMAC-SHA256 Access=AKEXAMPLE, SignedHeaders=host;x-sdk-date, "
    "Signature=eb6516069a64814ce500330f71771b91dc97a418a7bbc97b8d24450a7a22d4a3"
)
GET_QUERY = [("limit", "10"), ("marker", "x~y/z"), ("name", "a b")]


def test_post_vector_reproduced() -> None:
    """The SDK-produced POST vector (no token, no user agent) is reproduced exactly."""
    signed = sign_request("POST", EVS, EXPORT_PATH, KEYS, PROJECT, NOW, body=BODY, user_agent=None)
    assert signed.headers["Authorization"] == POST_AUTH
    assert signed.url == f"{EVS}{EXPORT_PATH}"
    assert signed.body == BODY
    assert signed.headers["X-Sdk-Date"] == "20250101T000000Z"
    assert signed.headers["Host"] == "evs.cn-north-4.myhuaweicloud.com"
    assert signed.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert signed.headers["X-Project-Id"] == PROJECT
    assert "X-Security-Token" not in signed.headers
    assert "User-Agent" not in signed.headers


def test_post_vector_with_security_token_reproduced() -> None:
    """With X-Security-Token TOKEN123 the token header is present and signed, as in the vector."""
    creds = Credentials("AKEXAMPLE", "SKEXAMPLE", "TOKEN123")
    signed = sign_request("POST", EVS, EXPORT_PATH, creds, PROJECT, NOW, body=BODY, user_agent=None)
    assert signed.headers["Authorization"] == POST_TOKEN_AUTH
    assert signed.headers["X-Security-Token"] == "TOKEN123"


def test_reference_signer_matches_every_vector() -> None:
    """The stdlib reference signer used below reproduces all three documented vectors."""
    base = {
        "Content-Type": CONTENT_TYPE,
        "Host": "evs.cn-north-4.myhuaweicloud.com",
        "X-Project-Id": PROJECT,
        "X-Sdk-Date": "20250101T000000Z",
    }
    url = f"{EVS}{EXPORT_PATH}"
    assert reference_authorization("POST", url, base, BODY, "AKEXAMPLE", "SKEXAMPLE") == POST_AUTH
    with_token = {**base, "X-Security-Token": "TOKEN123"}
    assert (
        reference_authorization("POST", url, with_token, BODY, "AKEXAMPLE", "SKEXAMPLE")
        == POST_TOKEN_AUTH
    )
    get_headers = {"Host": "evs.example.com", "X-Sdk-Date": "20250101T000000Z", "X_Custom": "v"}
    assert (
        reference_authorization("GET", GET_URL, get_headers, b"", "AKEXAMPLE", "SKEXAMPLE")
        == GET_AUTH
    )


def test_get_with_query_signs_canonical_query() -> None:
    """The GET vector's query is sent and signed canonically; its signature matches the reference.

    sign_request always adds Content-Type and X-Project-Id (and cannot add an ``X_Custom``
    header), so the vector's exact ``SignedHeaders=host;x-sdk-date`` cannot be expressed; the
    rest of the vector (URL, query encoding, canonical request) is checked via the reference.
    """
    signed = sign_request(
        "GET",
        "https://evs.example.com",
        f"/v2/{PROJECT}/cloudvolumes/detail",
        KEYS,
        PROJECT,
        NOW,
        query=GET_QUERY,
        user_agent=None,
    )
    assert signed.url == GET_URL
    assert signed.body == b""
    assert signed.headers["Authorization"].startswith(
        "SDK-HMAC-SHA256 Access=AKEXAMPLE, SignedHeaders=content-type;host;x-project-id;x-sdk-date,"
    )
    assert signed.headers["Authorization"] == reference_authorization(
        "GET", signed.url, signed.headers, b"", "AKEXAMPLE", "SKEXAMPLE"
    )


def test_query_order_does_not_change_the_signature() -> None:
    """Query pairs given in any order produce the same sorted URL and signature."""
    path = f"/v2/{PROJECT}/cloudvolumes/detail"
    a = sign_request("GET", EVS, path, KEYS, PROJECT, NOW, query=GET_QUERY)
    b = sign_request("GET", EVS, path, KEYS, PROJECT, NOW, query=list(reversed(GET_QUERY)))
    assert a.url == b.url
    assert a.headers["Authorization"] == b.headers["Authorization"]


def test_default_call_signs_user_agent_and_project() -> None:
    """By default the User-Agent is set and signed, and X-Project-Id is always present."""
    signed = sign_request("POST", EVS, EXPORT_PATH, KEYS, PROJECT, NOW, body=BODY)
    assert signed.headers["User-Agent"] == USER_AGENT
    assert signed.headers["X-Project-Id"] == PROJECT
    assert (
        "SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date,"
        in signed.headers["Authorization"]
    )
    assert signed.headers["Authorization"] == reference_authorization(
        "POST", signed.url, signed.headers, BODY, "AKEXAMPLE", "SKEXAMPLE"
    )
    assert signed.headers["Authorization"] != POST_AUTH


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://127.0.0.1:8080", f"http://127.0.0.1:8080{EXPORT_PATH}"),
        ("https://proxy.example.com/evs/", f"https://proxy.example.com/evs{EXPORT_PATH}"),
    ],
)
def test_base_url_with_port_or_prefix(base: str, url: str) -> None:
    """A port is part of the signed host and a base path prefixes the request path."""
    signed = sign_request("POST", base, EXPORT_PATH, KEYS, PROJECT, NOW, body=BODY)
    assert signed.url == url
    assert signed.headers["Host"] == url.split("/")[2]
    assert signed.headers["Authorization"] == reference_authorization(
        "POST", signed.url, signed.headers, BODY, "AKEXAMPLE", "SKEXAMPLE"
    )


def test_date_comes_from_now() -> None:
    """X-Sdk-Date is the ``now`` passed in, so signing is deterministic."""
    when = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    one = sign_request("GET", EVS, "/v2/x", KEYS, PROJECT, when)
    two = sign_request("GET", EVS, "/v2/x", KEYS, PROJECT, when)
    assert one.headers["X-Sdk-Date"] == "20260203T040506Z"
    assert one == two
