"""SDK-HMAC-SHA256 verification: PLATFORM.md 3.1 vectors, and the gateway's 401/400 answers."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fakecloud import FakeCloud, ManualClock, mock_cloud
from fakecloud.auth import (
    AuthError,
    canonical_query,
    canonical_request,
    signature,
    string_to_sign,
    verify,
)
from tests.contract.conftest import AK, PROJECT, SK, Client, sign

VECTOR_BODY = json.dumps(
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
VECTOR_PATH = f"/v2/{PROJECT}/volumes/11111111-2222-3333-4444-555555555555/action"
VECTOR_HOST = "evs.cn-north-4.myhuaweicloud.com"
VECTOR_NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)
VECTOR_CANONICAL = (
    "POST\n"
    f"{VECTOR_PATH}/\n"
    "\n"
    "content-type:application/json;charset=UTF-8\n"
    "host:evs.cn-north-4.myhuaweicloud.com\n"
    f"x-project-id:{PROJECT}\n"
    "x-sdk-date:20250101T000000Z\n"
    "\n"
    "content-type;host;x-project-id;x-sdk-date\n"
    "9b85110f90a281e36005b9fcc05d6d3c5bd0a76c75464ecae6aaea54dc9056bf"
)
POST_SIG = "bf9ef95ec99a227ecf76a80c51b24b1840f235e9ec8a8f7ad4eac25640bcca5a"
TOKEN_SIG = "6cb6879a354d760e21728a4146785f2438cb80b14cd9c162352e4f8b9ecb9bc4"
GET_SIG = "eb6516069a64814ce500330f71771b91dc97a418a7bbc97b8d24450a7a22d4a3"
GET_PATH = f"/v2/{PROJECT}/cloudvolumes/detail"
GET_QUERY = [("limit", "10"), ("marker", "x~y/z"), ("name", "a b")]


def post_headers(token: str | None = None) -> dict[str, str]:
    """The vector's headers (lower-case), plus X-Security-Token when given."""
    headers = {
        "content-type": "application/json;charset=UTF-8",
        "host": VECTOR_HOST,
        "x-project-id": PROJECT,
        "x-sdk-date": "20250101T000000Z",
    }
    if token:
        headers["x-security-token"] = token
    return headers


def authorization(signed: str, sig: str, ak: str = "AKEXAMPLE") -> str:
    """An Authorization header value."""
    return f"SDK-HMAC-SHA256 Access={ak}, SignedHeaders={signed}, Signature={sig}"


def check(
    headers: dict[str, str], body: bytes = VECTOR_BODY, security_token: str | None = None
) -> str:
    """verify() on the POST vector's path with the example credentials."""
    creds = {"AKEXAMPLE": "SKEXAMPLE"}
    return verify(
        "POST",
        VECTOR_PATH,
        [],
        headers,
        body,
        credentials=creds,
        now=VECTOR_NOW,
        security_token=security_token,
    )


def test_post_vector_canonical_request() -> None:
    """The canonical request and string to sign match the SDK-produced POST vector."""
    assert hashlib.sha256(VECTOR_BODY).hexdigest().startswith("9b85110f")
    signed = ["content-type", "host", "x-project-id", "x-sdk-date"]
    canonical = canonical_request("POST", VECTOR_PATH, [], post_headers(), signed, VECTOR_BODY)
    assert canonical == VECTOR_CANONICAL
    assert string_to_sign("20250101T000000Z", canonical) == (
        "SDK-HMAC-SHA256\n20250101T000000Z\n"
        "802efaf8e31a7acbae0c54fc4ebd2ec297cea5f9c5a090f47851c22340080ab7"
    )
    assert signature("SKEXAMPLE", string_to_sign("20250101T000000Z", canonical)) == POST_SIG


def test_post_vector_verifies() -> None:
    """The POST vector's Authorization is accepted and yields the access key."""
    headers = post_headers()
    headers["authorization"] = authorization("content-type;host;x-project-id;x-sdk-date", POST_SIG)
    assert check(headers) == "AKEXAMPLE"


def test_token_vector_verifies() -> None:
    """The X-Security-Token vector is accepted, also when the cloud requires that token."""
    headers = post_headers("TOKEN123")
    signed = "content-type;host;x-project-id;x-sdk-date;x-security-token"
    headers["authorization"] = authorization(signed, TOKEN_SIG)
    assert check(headers) == "AKEXAMPLE"
    assert check(headers, security_token="TOKEN123") == "AKEXAMPLE"
    with pytest.raises(AuthError, match="security token"):
        check(headers, security_token="OTHER")


def test_get_vector_verifies() -> None:
    """The GET vector (quoted query, X_Custom header unsigned) is accepted."""
    assert canonical_query(GET_QUERY) == "limit=10&marker=x~y%2Fz&name=a%20b"
    headers = {
        "host": "evs.example.com",
        "x-sdk-date": "20250101T000000Z",
        "x_custom": "ignored",
        "authorization": authorization("host;x-sdk-date", GET_SIG),
    }
    creds = {"AKEXAMPLE": "SKEXAMPLE"}
    assert verify("GET", GET_PATH, GET_QUERY, headers, b"", credentials=creds, now=VECTOR_NOW)
    with pytest.raises(AuthError, match="signature"):
        verify("GET", GET_PATH, GET_QUERY[:2], headers, b"", credentials=creds, now=VECTOR_NOW)


def test_reference_signer_matches_vectors() -> None:
    """The tests' own signer reproduces the POST, token and GET vector signatures."""
    base = {
        "Content-Type": "application/json;charset=UTF-8",
        "X-Project-Id": PROJECT,
        "X-Sdk-Date": "20250101T000000Z",
    }
    plain = sign("POST", VECTOR_HOST, VECTOR_PATH, [], base, VECTOR_BODY, "AKEXAMPLE", "SKEXAMPLE")
    assert plain.endswith(f"Signature={POST_SIG}")
    with_token = {**base, "X-Security-Token": "TOKEN123"}
    token = sign(
        "POST", VECTOR_HOST, VECTOR_PATH, [], with_token, VECTOR_BODY, "AKEXAMPLE", "SKEXAMPLE"
    )
    assert token.endswith(TOKEN_SIG)
    get_headers = {"X-Sdk-Date": "20250101T000000Z", "X_Custom": "x"}
    get = sign(
        "GET", "evs.example.com", GET_PATH, GET_QUERY, get_headers, b"", "AKEXAMPLE", "SKEXAMPLE"
    )
    assert get == authorization("host;x-sdk-date", GET_SIG)


def vector_with(**changes: object) -> dict[str, str]:
    """The POST vector's signed headers with some values changed."""
    headers = post_headers()
    headers["authorization"] = authorization("content-type;host;x-project-id;x-sdk-date", POST_SIG)
    headers.update({k: str(v) for k, v in changes.items()})
    return headers


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (vector_with(), VECTOR_BODY.replace(b"img-1", b"img-2"), "signature"),
        (
            vector_with(
                authorization=authorization(
                    "content-type;host;x-project-id;x-sdk-date", POST_SIG, "AKOTHER"
                )
            ),
            VECTOR_BODY,
            "unknown access key",
        ),
        (vector_with(host="evs.cn-north-1.myhuaweicloud.com"), VECTOR_BODY, "signature"),
        (vector_with(**{"x-sdk-date": "20241231T234400Z"}), VECTOR_BODY, "15 minutes"),
        (vector_with(**{"x-sdk-date": "2025-01-01"}), VECTOR_BODY, "X-Sdk-Date"),
        (vector_with(**{"x-security-token": "TOKEN123"}), VECTOR_BODY, "not signed"),
        (vector_with(authorization="Bearer abc"), VECTOR_BODY, "not SDK-HMAC-SHA256"),
        (
            vector_with(
                authorization=authorization("content-type;x-project-id;x-sdk-date", POST_SIG)
            ),
            VECTOR_BODY,
            "host header is not signed",
        ),
    ],
    ids=[
        "tampered-body",
        "unknown-ak",
        "other-host",
        "stale-date",
        "garbled-date",
        "unsigned-token",
        "garbled-auth",
        "host-unsigned",
    ],
)
def test_vector_rejections(headers: dict[str, str], body: bytes, reason: str) -> None:
    """Tampering with the POST vector is rejected with a reason naming the problem."""
    with pytest.raises(AuthError, match=reason):
        check(headers, body)


def test_wrong_secret_key_rejected() -> None:
    """The right access key with a signature from another secret key is rejected."""
    with pytest.raises(AuthError, match="signature"):
        verify(
            "POST",
            VECTOR_PATH,
            [],
            vector_with(),
            VECTOR_BODY,
            credentials={"AKEXAMPLE": "SKWRONG"},
            now=VECTOR_NOW,
        )


def test_signed_request_accepted(client: Client) -> None:
    """A correctly signed request is answered (404 here: no such volume, not 401)."""
    response = client.evs("GET", "cloudvolumes/nope")
    assert response.status_code == 404
    assert response.headers["X-Request-Id"]


def assert_401(response: object, reason: str) -> None:
    """An APIG 401 naming `reason`, with a request ID."""
    import requests

    assert isinstance(response, requests.Response)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error_code"] == "APIGW.0301"
    assert body["error_msg"].startswith("Incorrect IAM authentication information: ")
    assert reason in body["error_msg"]
    assert len(response.headers["X-Request-Id"]) == 32


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"sign_as": (AK, "SKWRONG")}, "signature"),
        ({"sign_as": ("AKOTHER", SK)}, "unknown access key"),
        ({"signed_body": b"{}"}, "signature"),
        ({"date": datetime(2024, 12, 31, 23, 44, tzinfo=timezone.utc)}, "15 minutes"),
        ({"date": datetime(2025, 1, 1, 0, 16, tzinfo=timezone.utc)}, "15 minutes"),
        ({"unsigned": {"X-Security-Token": "TOKEN"}}, "not signed"),
        ({"unsigned": {"Authorization": "SDK-HMAC-SHA256 garbage"}}, "not SDK-HMAC-SHA256"),
        ({"unsigned": {"Content-Type": "application/json"}}, "signature"),
    ],
    ids=[
        "wrong-sk",
        "unknown-ak",
        "tampered-body",
        "stale-date",
        "future-date",
        "unsigned-token",
        "garbled",
        "header-changed",
    ],
)
def test_auth_failures(client: Client, kwargs: dict[str, Any], reason: str) -> None:
    """Each broken signature gets the gateway's 401 and changes nothing."""
    client.cloud.evs.add_volume("vol-1", size=10)
    body = {"os-volume_upload_image": {"image_name": "img-1"}}
    response = client.evs("POST", "volumes/vol-1/action", body=body, **kwargs)
    assert_401(response, reason)
    assert client.cloud.ims.images == {}
    assert client.cloud.evs.volumes["vol-1"].status == "available"
    assert client.cloud.requests[-1].status == 401


def test_date_within_window_accepted(client: Client) -> None:
    """An X-Sdk-Date 14 minutes off the fake clock is still accepted."""
    date = client.cloud.now() - timedelta(minutes=14)
    assert client.evs("GET", "cloudvolumes/nope", date=date).status_code == 404


def test_security_token_required_when_configured(clock: ManualClock) -> None:
    """A cloud with a security token rejects requests without it or with another one."""
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, security_token="TOK", clock=clock)
    import requests

    with mock_cloud(cloud), requests.Session() as session:
        c = Client(cloud, "mock", session)
        assert_401(c.evs("GET", "cloudvolumes/x"), "X-Security-Token header is missing")
        assert_401(c.evs("GET", "cloudvolumes/x", token="BAD"), "security token is invalid")
        assert c.evs("GET", "cloudvolumes/x", token="TOK").status_code == 404


def test_project_header_mismatch(client: Client) -> None:
    """X-Project-Id naming another project is 400 Common.0018."""
    response = client.evs("GET", "cloudvolumes/x", project_header="f" * 32)
    assert response.status_code == 400
    assert response.json()["error_code"] == "Common.0018"


def test_path_project_mismatch(client: Client) -> None:
    """A project in the path other than the configured one is 400 Common.0018."""
    response = client.call("GET", f"/v2/{'e' * 32}/cloudvolumes/x", project_header=None)
    assert response.status_code == 400
    assert response.json()["error_code"] == "Common.0018"


def test_projectless_path_needs_project_header(client: Client) -> None:
    """IMS paths without a project need X-Project-Id (PLATFORM.md 3.1), else 401."""
    response = client.call("GET", "/v2/cloudimages", service="ims", project_header=None)
    assert_401(response, "X-Project-Id is required")
