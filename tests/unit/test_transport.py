"""The requests transport maps library exceptions in one place (function/cloud/transport.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses
from urllib3.connection import HTTPConnection
from urllib3.exceptions import MaxRetryError, NewConnectionError

from function.cloud.transport import HttpResponse, RequestsTransport
from function.errors import TransportError

URL = "https://evs.cn-north-4.myhuaweicloud.com/v2/p/volumes/v/action"
TIMEOUT = (5.0, 30.0)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens: a NewConnectionError inside."""
    conn = HTTPConnection("127.0.0.1", 9)
    reason = NewConnectionError(conn, "Failed to establish a new connection: refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, URL, reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "code", "maybe_sent"),
    [
        (requests.exceptions.ConnectTimeout("connect"), "ConnectTimeout", False),
        (requests.exceptions.ReadTimeout("read"), "ReadTimeout", True),
        (requests.exceptions.ConnectionError("Connection reset by peer"), "ConnectionReset", True),
        (refused(), "ConnectionRefused", False),
        (requests.exceptions.SSLError("certificate verify failed"), "TLSError", False),
        (requests.exceptions.ChunkedEncodingError("truncated"), "HttpError", True),
    ],
    ids=["connect-timeout", "read-timeout", "reset", "refused", "tls", "chunked"],
)
def test_exceptions_mapped(
    mock: responses.RequestsMock, exc: Exception, code: str, maybe_sent: bool
) -> None:
    """Each requests exception becomes a TransportError with its code and ambiguity."""
    mock.add(responses.POST, URL, body=exc)
    with pytest.raises(TransportError) as info:
        RequestsTransport().send("POST", URL, {"X-Project-Id": "p"}, b"{}", TIMEOUT)
    assert info.value.code == code
    assert info.value.maybe_sent is maybe_sent
    assert info.value.outcome == "failed"
    assert info.value.__cause__ is None


def test_answer_returned_as_http_response(mock: responses.RequestsMock) -> None:
    """An answer of any status is returned with its status, headers and raw body."""
    mock.add(
        responses.POST,
        URL,
        status=202,
        body=b'{"os-volume_upload_image": {"image_id": "i"}}',
        headers={"X-Request-Id": "req-1"},
    )
    resp = RequestsTransport().send(
        "POST", URL, {"X-Project-Id": "p", "Content-Type": "application/json"}, b"{}", TIMEOUT
    )
    assert resp.status == 202
    assert resp.request_id == "req-1"
    assert resp.json() == {"os-volume_upload_image": {"image_id": "i"}}
    sent = mock.calls[0].request
    assert sent.headers["X-Project-Id"] == "p"
    assert sent.body == b"{}"


def test_error_status_is_not_an_exception(mock: responses.RequestsMock) -> None:
    """A 503 is an answer, not a TransportError."""
    mock.add(responses.GET, URL, status=503, body=b"<html>busy</html>")
    resp = RequestsTransport().send("GET", URL, {}, b"", TIMEOUT)
    assert resp.status == 503
    assert resp.json() is None


def test_redirect_not_followed(mock: responses.RequestsMock) -> None:
    """A redirect is returned as it is, never followed (signed requests stay on their host)."""
    mock.add(responses.GET, URL, status=302, headers={"Location": "https://elsewhere.example/"})
    resp = RequestsTransport().send("GET", URL, {}, b"", TIMEOUT)
    assert resp.status == 302
    assert resp.header("location") == "https://elsewhere.example/"
    assert len(mock.calls) == 1


@pytest.mark.parametrize("body", [b"", b"<html>gateway</html>", b"\xff\xfe\x00", b"{", b"null"])
def test_json_tolerates_non_json(body: bytes) -> None:
    """HttpResponse.json returns None for an empty, HTML, non-UTF-8 or broken body."""
    assert HttpResponse(500, {}, body).json() is None


def test_json_parsed_once_and_cached() -> None:
    """HttpResponse.json parses the body and returns the same object on each call."""
    resp = HttpResponse(200, {}, b'{"a": [1, 2]}')
    first = resp.json()
    assert first == {"a": [1, 2]}
    assert resp.json() is first


def test_headers_case_insensitive() -> None:
    """header() and request_id look headers up case-insensitively."""
    resp = HttpResponse(200, {"x-request-id": "r1", "Retry-After": "3"}, b"")
    assert resp.request_id == "r1"
    assert resp.header("RETRY-AFTER") == "3"
    assert resp.header("missing") is None
    assert HttpResponse(200, {}, b"").request_id is None


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", b""), ("POST", b'{"a": 1}'), ("DELETE", b""), ("POST", b"")],
    ids=["get", "post", "delete", "post-empty"],
)
def test_lean_request_matches_what_a_session_prepares(method: str, body: bytes) -> None:
    """The request built for the adapter carries what ``Session.prepare_request`` would:
    the same method, URL, headers (session defaults, ours, Content-Length) and body."""
    transport = RequestsTransport()
    headers = {"X-Project-Id": "p", "User-Agent": "evs-export/0.1", "Content-Type": "a/b"}
    url = URL + "?limit=10&marker=x~y%2Fz&name=a%20b"
    ours = transport._prepare(method, url, headers, body)
    with requests.Session() as session:
        session.trust_env = False
        theirs = session.prepare_request(
            requests.Request(method, url, headers=headers, data=body or None)
        )
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert dict(ours.headers) == dict(theirs.headers)


def test_non_http_url_still_mapped() -> None:
    """A URL the lean path does not take (no http(s) scheme) fails as InvalidURL."""
    with pytest.raises(TransportError) as info:
        RequestsTransport().send("GET", "evs.example.com/v2", {}, b"", TIMEOUT)
    assert info.value.code == "InvalidURL"


@pytest.mark.parametrize(
    "url",
    [
        "https://evs.example.com/v2/p/volumes/v/action",
        "https://evs.example.com:8443/v2/p/cloudvolumes/detail?limit=10&marker=x~y%2Fz",
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080?a=b",
        "https://ims.example.com/v2/cloudimages?__imagetype=private&name=a%20b",
    ],
)
def test_request_target_as_requests_computes_it(url: str) -> None:
    """The adapter's request target equals ``PreparedRequest.path_url`` without a proxy."""
    from function.cloud.transport import _target

    prepared = requests.Request("GET", url).prepare()
    assert _target(url) == prepared.path_url


def test_origin_left_to_requests_when_unusual() -> None:
    """User info, fragments and other schemes take requests' own path."""
    from function.cloud.transport import _origin, _target

    assert _origin("https://u:p@evs.example.com/x") is None
    assert _origin("ftp://evs.example.com/x") is None
    assert _target("https://evs.example.com/x#frag") is None
    assert _origin("https://evs.example.com:443/x?y") == "https://evs.example.com:443"


def test_pool_kept_per_origin_until_closed() -> None:
    """One pool per origin is reused; once the adapter closes, a new open one is taken."""
    transport = RequestsTransport()
    adapter = transport._adapter
    first = transport._prepare("GET", URL, {}, b"")
    second = transport._prepare("POST", URL.replace("/action", "/other"), {}, b"{}")
    pool = adapter.get_connection_with_tls_context(first, True, {}, None)
    assert adapter.get_connection_with_tls_context(second, True, {}, None) is pool
    other = transport._prepare("GET", "https://ims.example.com/v2/cloudimages", {}, b"")
    assert adapter.get_connection_with_tls_context(other, True, {}, None) is not pool
    adapter.close()
    assert getattr(pool, "pool", "missing") is None
    fresh = adapter.get_connection_with_tls_context(first, True, {}, None)
    assert fresh is not pool
    assert getattr(fresh, "pool", None) is not None
