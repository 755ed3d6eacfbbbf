"""The signed client, its retries, budget and limits (function/cloud/client.py)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

from function.budget import SAFETY_MARGIN_MS
from function.cloud.client import (
    BACKOFF_CAP,
    RETRY_AFTER_CAP,
    CloudClient,
    Limiter,
    parse_retry_after,
)
from function.cloud.evs import EvsClient
from function.cloud.ims import ImsClient
from function.cloud.records import Accepted
from function.cloud.transport import HttpResponse
from function.config import Credentials
from function.errors import ApiError, BudgetExhausted, TransportError
from function.model import ACTION_KEY, UploadOptions
from tests.unit.fakes import (
    AK,
    IMAGE,
    PROJECT,
    SK,
    VOLUME,
    FakeTime,
    ScriptedTransport,
    make_runtime,
    make_settings,
    reference_authorization,
    response,
)

VOLUME_PATH = f"/v2/{PROJECT}/cloudvolumes/{VOLUME}"
EXPORT_PATH = f"/v2/{PROJECT}/volumes/{VOLUME}/action"
EXPORT_BODY = {ACTION_KEY: {"image_name": "img-1", "disk_format": "vhd"}}
EXPORT_UPLOAD = UploadOptions("img-1", disk_format="vhd")  # EXPORT_BODY, typed
BUSY = {"error": {"code": "EVS.5000", "message": "busy"}}
ACCEPTED_BODY = {
    ACTION_KEY: {
        "status": "uploading",
        "image_id": IMAGE,
        "image_name": "img-1",
        "size": 40,
        "disk_format": "vhd",
        "container_format": "bare",
        "id": VOLUME,
    }
}


def no_sleep(_seconds: float) -> None:
    """The limiter's sleep in tests that are not about the rate."""


def make_client(
    transport: ScriptedTransport | object,
    fake: FakeTime | None = None,
    limiter: Limiter | None = None,
    **overrides: object,
) -> CloudClient:
    """A client over ``transport`` whose limiter never waits (unless one is given)."""
    runtime = make_runtime(fake or FakeTime())
    return CloudClient(
        make_settings(**overrides),
        runtime,
        transport,  # type: ignore[arg-type]
        limiter or Limiter(8, 1e9, no_sleep),
    )


def status(
    code: int, headers: Mapping[str, str] | None = None, body: object = BUSY
) -> HttpResponse:
    return response(code, body, headers)


def read_timeout() -> TransportError:
    return TransportError("ReadTimeout", "no answer in time", maybe_sent=True)


# --- retries ---------------------------------------------------------------------------------


def test_two_503_then_success_after_three_sends() -> None:
    """Two 503 answers are retried with jittered backoff; the third attempt's 200 is returned."""
    transport = ScriptedTransport(status(503), status(503), response(200, {"volume": {}}))
    fake = FakeTime()
    resp = make_client(transport, fake).call("evs", "GET", VOLUME_PATH)
    assert resp.status == 200
    assert len(transport.sent) == 3
    assert len(fake.sleeps) == 2
    assert 0 <= fake.sleeps[0] <= 0.5
    assert 0 <= fake.sleeps[1] <= 1.0


def test_retry_after_seconds_honoured() -> None:
    """Retry-After: 2 makes the next attempt wait at least (here exactly) 2 seconds."""
    transport = ScriptedTransport(status(429, {"Retry-After": "2"}), response(200))
    fake = FakeTime()
    make_client(transport, fake).call("evs", "GET", VOLUME_PATH)
    assert fake.sleeps == [2.0]
    assert len(transport.sent) == 2


def test_retry_after_http_date_honoured() -> None:
    """A Retry-After HTTP-date five seconds after the clock waits five seconds."""
    transport = ScriptedTransport(
        status(503, {"Retry-After": "Wed, 01 Jan 2025 00:00:05 GMT"}), response(200)
    )
    fake = FakeTime()
    make_client(transport, fake).call("evs", "GET", VOLUME_PATH)
    assert fake.sleeps == [5.0]


def test_retry_after_capped() -> None:
    """A very long Retry-After is capped at RETRY_AFTER_CAP seconds."""
    transport = ScriptedTransport(status(503, {"retry-after": "3600"}), response(200))
    fake = FakeTime()
    make_client(transport, fake).call("evs", "GET", VOLUME_PATH)
    assert fake.sleeps == [RETRY_AFTER_CAP]


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409])
def test_client_errors_not_retried(code: int) -> None:
    """A 4xx other than 429 is final: one send, no sleep, a rejected ApiError."""
    transport = ScriptedTransport(status(code))
    fake = FakeTime()
    with pytest.raises(ApiError) as info:
        make_client(transport, fake).call("evs", "GET", VOLUME_PATH)
    assert info.value.outcome == "rejected"
    assert info.value.http_status == code
    assert len(transport.sent) == 1
    assert fake.sleeps == []


def test_max_attempts_respected() -> None:
    """After max_attempts transient answers the last error is raised with outcome failed."""
    transport = ScriptedTransport(status(503), status(502), status(500))
    fake = FakeTime()
    with pytest.raises(ApiError) as info:
        make_client(transport, fake, max_attempts=3).call("evs", "GET", VOLUME_PATH)
    assert info.value.outcome == "failed"
    assert info.value.http_status == 500
    assert info.value.code == "EVS.5000"
    assert len(transport.sent) == 3
    assert len(fake.sleeps) == 2


def test_backoff_is_capped() -> None:
    """Jittered backoff never exceeds BACKOFF_CAP, however many attempts."""
    transport = ScriptedTransport(*[status(503) for _ in range(12)])
    fake = FakeTime()
    with pytest.raises(ApiError):
        make_client(transport, fake, max_attempts=12).call("evs", "GET", VOLUME_PATH)
    assert len(fake.sleeps) == 11
    assert all(0 <= s <= BACKOFF_CAP for s in fake.sleeps)


def test_small_budget_gives_up_without_sleeping() -> None:
    """When the budget cannot cover the wait, BudgetExhausted is raised before any sleep."""
    transport = ScriptedTransport(status(503, {"Retry-After": "2"}))
    fake = FakeTime(budget_ms=SAFETY_MARGIN_MS + 500)
    with pytest.raises(BudgetExhausted) as info:
        make_client(transport, fake).call("evs", "GET", VOLUME_PATH)
    assert fake.sleeps == []
    assert len(transport.sent) == 1
    assert info.value.outcome == "failed"
    assert info.value.code == "EVS.5000"
    assert info.value.http_status == 503


def test_budget_never_slept_past() -> None:
    """Retries stop while the time slept still leaves the safety margin of the budget."""
    transport = ScriptedTransport(*[status(503, {"Retry-After": "1"}) for _ in range(5)])
    fake = FakeTime(budget_ms=5000)
    with pytest.raises(BudgetExhausted):
        make_client(transport, fake).call("evs", "GET", VOLUME_PATH)
    assert fake.sleeps == [1.0, 1.0]
    assert sum(fake.sleeps) * 1000 <= 5000 - SAFETY_MARGIN_MS
    assert len(transport.sent) == 3


def test_budget_exhausted_after_transport_error_keeps_its_code() -> None:
    """BudgetExhausted after a timeout carries the timeout's code."""
    transport = ScriptedTransport(read_timeout())
    fake = FakeTime(budget_ms=SAFETY_MARGIN_MS)
    with pytest.raises(BudgetExhausted) as info:
        make_client(transport, fake).call("evs", "GET", VOLUME_PATH)
    assert info.value.code == "ReadTimeout"
    assert info.value.http_status is None


@pytest.mark.parametrize("remaining_ms", [4_000, 10_000, 60_000])
def test_attempt_timeouts_fit_the_remaining_budget(remaining_ms: int) -> None:
    """Connect plus read timeout of one attempt never exceed the time the invocation has left."""
    transport = ScriptedTransport(response(200))
    make_client(transport, FakeTime(budget_ms=remaining_ms)).send("evs", "GET", VOLUME_PATH)
    connect, read = transport.sent[0].timeout
    assert connect > 0
    assert read > 0
    assert connect + read <= remaining_ms / 1000


def test_default_timeouts_with_ample_budget() -> None:
    """With ample time the attempt uses the configured connect and read timeouts."""
    transport = ScriptedTransport(response(200))
    make_client(transport).send("evs", "GET", VOLUME_PATH)
    assert transport.sent[0].timeout == (5.0, 30.0)


# --- non-idempotent calls: check before sending again ----------------------------------------


@pytest.mark.parametrize(
    "first",
    [read_timeout(), status(500), status(502), status(504)],
    ids=["read-timeout", "500", "502", "504"],
)
def test_ambiguous_failure_checks_before_resend(first: HttpResponse | TransportError) -> None:
    """After an ambiguous failure before_resend runs before the request is sent again."""
    transport = ScriptedTransport(first, response(200, {"ok": True}))
    client = make_client(transport)
    seen_at: list[int] = []

    def lookup() -> HttpResponse | None:
        seen_at.append(len(transport.sent))
        return None

    resp = client.retrier.run(lambda: client.send("evs", "POST", EXPORT_PATH), lookup)
    assert resp.status == 200
    assert seen_at == [1]
    assert len(transport.sent) == 2


def test_before_resend_answer_stops_the_loop() -> None:
    """When before_resend finds the work done, its answer is returned and nothing is resent."""
    transport = ScriptedTransport(read_timeout())
    client = make_client(transport)
    found = response(202, {"found": True})
    result = client.retrier.run(lambda: client.send("evs", "POST", EXPORT_PATH), lambda: found)
    assert result is found
    assert len(transport.sent) == 1


@pytest.mark.parametrize(
    "first",
    [
        status(429),
        status(503),
        TransportError("ConnectionRefused", "refused", maybe_sent=False),
        TransportError("ConnectTimeout", "slow", maybe_sent=False),
    ],
    ids=["429", "503", "refused", "connect-timeout"],
)
def test_unambiguous_failures_resend_without_check(first: HttpResponse | TransportError) -> None:
    """429, 503 and failures before sending are resent without calling before_resend."""
    transport = ScriptedTransport(first, response(200))
    client = make_client(transport)
    calls: list[str] = []

    def lookup() -> HttpResponse | None:
        calls.append("lookup")
        return None

    resp = client.retrier.run(lambda: client.send("evs", "POST", EXPORT_PATH), lookup)
    assert resp.status == 200
    assert calls == []
    assert len(transport.sent) == 2


def test_export_after_read_timeout_recovers_image_without_resending() -> None:
    """A timed-out export whose image IMS already lists is reported accepted, POSTed once."""
    image = {
        "id": IMAGE,
        "name": "img-1",
        "status": "queued",
        "disk_format": "vhd",
        "container_format": "bare",
        "min_disk": 40,
        "created_at": "2025-01-01T00:00:01Z",
    }
    transport = ScriptedTransport(read_timeout(), response(200, {"images": [image]}))
    client = make_client(transport)
    ims = ImsClient(client)
    accepted = EvsClient(client).export(VOLUME, EXPORT_UPLOAD, ims.find_export)
    assert accepted == Accepted(
        image_id=IMAGE,
        image_name="img-1",
        status="uploading",
        disk_format="vhd",
        container_format="bare",
        size_gb=40,
        request_id=None,
        recovered=True,
    )
    methods = [(s.method, s.url.split("?")[0]) for s in transport.sent]
    assert methods == [
        ("POST", f"https://evs.cn-north-4.myhuaweicloud.com{EXPORT_PATH}"),
        ("GET", "https://ims.cn-north-4.myhuaweicloud.com/v2/cloudimages"),
    ]
    assert "name=img-1" in transport.sent[1].url
    assert "__imagetype=private" in transport.sent[1].url


def test_export_after_read_timeout_resends_when_image_absent() -> None:
    """When IMS shows no image after a timeout, the export is sent once more and accepted."""
    transport = ScriptedTransport(
        read_timeout(),
        response(200, {"images": []}),
        response(202, ACCEPTED_BODY, {"X-Request-Id": "req-9"}),
    )
    client = make_client(transport)
    accepted = EvsClient(client).export(VOLUME, EXPORT_UPLOAD, ImsClient(client).find_export)
    assert accepted.image_id == IMAGE
    assert accepted.request_id == "req-9"
    assert accepted.recovered is False
    assert [s.method for s in transport.sent] == ["POST", "GET", "POST"]
    assert transport.sent[0].body == transport.sent[2].body


# --- signing and error mapping ---------------------------------------------------------------


def test_send_signs_request() -> None:
    """Every request carries a valid SDK-HMAC-SHA256 Authorization and X-Project-Id."""
    transport = ScriptedTransport(response(202, ACCEPTED_BODY))
    client = make_client(transport)
    client.send("evs", "POST", EXPORT_PATH, body=EXPORT_BODY)
    sent = transport.sent[0]
    assert sent.url == f"https://evs.cn-north-4.myhuaweicloud.com{EXPORT_PATH}"
    assert sent.headers["X-Project-Id"] == PROJECT
    assert sent.headers["X-Sdk-Date"] == "20250101T000000Z"
    assert sent.headers["Authorization"].startswith(
        f"SDK-HMAC-SHA256 Access={AK}, "
        "SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, Signature="
    )
    assert sent.headers["Authorization"] == reference_authorization(
        sent.method, sent.url, sent.headers, sent.body, AK, SK
    )
    assert sent.body == (
        b'{"os-volume_upload_image": {"image_name": "img-1", "disk_format": "vhd"}}'
    )
    assert "X-Security-Token" not in sent.headers
    assert client.limiter.sent == 1


def test_send_adds_security_token() -> None:
    """Temporary credentials add a signed X-Security-Token."""
    transport = ScriptedTransport(response(200))
    creds = Credentials("TMPAK", "TMPSK", "TOKEN123")
    make_client(transport, credentials=creds).send("evs", "GET", VOLUME_PATH)
    sent = transport.sent[0]
    assert sent.headers["X-Security-Token"] == "TOKEN123"
    assert "x-security-token, Signature=" in sent.headers["Authorization"]
    assert sent.headers["Authorization"] == reference_authorization(
        "GET", sent.url, sent.headers, b"", "TMPAK", "TMPSK"
    )


def test_send_uses_endpoint_override() -> None:
    """An endpoint override (plain HTTP with a port) is where the request goes."""
    transport = ScriptedTransport(response(200))
    client = make_client(transport, endpoints={"evs": "http://127.0.0.1:8080"})
    client.send("evs", "GET", VOLUME_PATH)
    assert transport.sent[0].url == f"http://127.0.0.1:8080{VOLUME_PATH}"
    assert transport.sent[0].headers["Host"] == "127.0.0.1:8080"


@pytest.mark.parametrize("request_id_header", ["X-Request-Id", "x-request-id"])
def test_4xx_json_error_mapped_to_api_error(request_id_header: str) -> None:
    """A 4xx JSON error body becomes ApiError(code, message, status, request id)."""
    body = {"itemNotFound": {"message": "volume not found", "code": "EVS.2001"}}
    transport = ScriptedTransport(response(404, body, {request_id_header: "req-404"}))
    with pytest.raises(ApiError) as info:
        make_client(transport).send("evs", "GET", VOLUME_PATH)
    err = info.value
    assert (err.code, err.message, err.http_status, err.request_id) == (
        "EVS.2001",
        "volume not found",
        404,
        "req-404",
    )
    assert err.outcome == "rejected"
    assert err.as_dict() == {"code": "EVS.2001", "message": "volume not found", "http_status": 404}


def test_gateway_error_shape_mapped() -> None:
    """The gateway's {error_code, error_msg} shape is mapped too."""
    body = {"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information"}
    transport = ScriptedTransport(response(401, body))
    with pytest.raises(ApiError) as info:
        make_client(transport).send("evs", "GET", VOLUME_PATH)
    assert info.value.code == "APIGW.0301"
    assert info.value.request_id is None


def test_non_json_5xx_mapped_to_status_code() -> None:
    """A non-JSON 5xx body gives code str(status) and outcome failed."""
    transport = ScriptedTransport(response(502, b"<html>bad gateway</html>"))
    with pytest.raises(ApiError) as info:
        make_client(transport).send("evs", "GET", VOLUME_PATH)
    assert info.value.code == "502"
    assert info.value.outcome == "failed"


@pytest.mark.parametrize("value", [None, "", "soon", "1.5", "-3", "²", "Wed, 99 Foo 2025"])
def test_unusable_retry_after_ignored(value: str | None) -> None:
    """A Retry-After that is neither delta-seconds nor an HTTP-date is ignored, never raised."""
    assert parse_retry_after(value, make_runtime()) is None


def test_retry_after_date_in_the_past_is_zero() -> None:
    """A Retry-After date already past means no extra wait."""
    assert parse_retry_after("Tue, 31 Dec 2024 23:59:00 GMT", make_runtime()) == 0.0


# --- limits ----------------------------------------------------------------------------------


class ConcurrencyTransport:
    """Holds each request at a barrier of ``parties`` and counts requests in flight."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=5)
        self.lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.calls = 0

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: tuple[float, float],
    ) -> HttpResponse:
        with self.lock:
            self.current += 1
            self.calls += 1
            self.peak = max(self.peak, self.current)
        try:
            self.barrier.wait()
        finally:
            with self.lock:
                self.current -= 1
        return response(200)


def test_limiter_bounds_requests_in_flight() -> None:
    """With 12 threads and a limit of 3, exactly 3 requests are ever in flight at once."""
    transport = ConcurrencyTransport(parties=3)
    limiter = Limiter(3, 1e9, no_sleep)
    client = make_client(transport, limiter=limiter)
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda _: client.send("evs", "GET", VOLUME_PATH), range(12)))
    assert [r.status for r in results] == [200] * 12
    assert transport.calls == 12
    assert transport.peak == 3
    assert limiter.peak_in_flight == 3
    assert limiter.in_flight == 0


def test_limiter_spaces_requests_by_rate() -> None:
    """At 10 requests per second with 4 in flight, a burst of 4 goes at once and each request
    after it is told to wait 0.1 s more."""
    waits: list[float] = []
    limiter = Limiter(4, 10.0, waits.append, clock=lambda: 100.0)
    for _ in range(7):
        with limiter:
            pass
    assert waits == pytest.approx([0.1, 0.2, 0.3])
    assert limiter.sent == 7


def test_limiter_burst_refills_with_time() -> None:
    """After a pause as long as the burst takes to refill, requests go at once again."""
    waits: list[float] = []
    now = [100.0]
    limiter = Limiter(2, 10.0, waits.append, clock=lambda: now[0])
    for _ in range(2):
        with limiter:
            pass
    now[0] += 0.2
    for _ in range(2):
        with limiter:
            pass
    assert waits == []


def test_limiter_throttled_pauses_and_decreases_rate() -> None:
    """After a 429 every request waits out Retry-After and the rate drops by BETA, then
    recovers with time (see tests/unit/test_limiter.py for the model in full)."""
    waits: list[float] = []
    now = [100.0]
    limiter = Limiter(8, 10.0, waits.append, clock=lambda: now[0])
    limiter.throttled(2.0)
    assert limiter.rate == pytest.approx(10.0 * Limiter.BETA)
    assert limiter.throttles == 1
    with limiter:
        pass
    assert waits == [2.0]
    now[0] += 60.0
    limiter.succeeded(now[0] - 0.05)
    assert limiter.rate == 10.0


def test_429_through_client_throttles_shared_limiter() -> None:
    """A 429 answer slows the shared limiter once; the retried success keeps it at or above
    the decreased rate."""
    limiter = Limiter(8, 10.0, no_sleep)
    transport = ScriptedTransport(status(429, {"Retry-After": "1"}), response(200))
    make_client(transport, limiter=limiter).call("evs", "GET", VOLUME_PATH)
    assert limiter.throttles == 1
    assert limiter.decreases == 1
    assert 10.0 * Limiter.BETA <= limiter.rate < 10.0


def test_image_listing_pages_by_marker_without_next_link() -> None:
    """IMS listings carry no ``next`` (PLATFORM.md 10.1): a full page of 500 asks for the next
    page from its last image ID, and a short page ends the listing."""
    first = [{"id": f"id-{i}", "name": "x"} for i in range(500)]
    transport = ScriptedTransport(
        response(200, {"images": first}), response(200, {"images": [{"id": "last", "name": "x"}]})
    )
    ims = ImsClient(CloudClient(make_settings(), make_runtime(), transport))
    images = ims.list_images(name="x")
    assert len(images) == 501
    assert len(transport.sent) == 2
    query = parse_qs(urlsplit(transport.sent[1].url).query)
    assert query["marker"] == ["id-499"] and query["limit"] == ["500"]
