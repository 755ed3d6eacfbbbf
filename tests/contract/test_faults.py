"""Injected faults: statuses with Retry-After, throttling, resets before and after processing."""

from __future__ import annotations

import pytest
import requests

from fakecloud import FakeCloud, Fault, ManualClock, mock_cloud
from tests.contract.conftest import AK, PROJECT, SK, Client


def test_503_with_retry_after(client: Client) -> None:
    """A 503 fault answers once with Retry-After and the EVS body; the retry succeeds."""
    client.cloud.evs.add_volume("vol-1")
    client.cloud.faults.add(
        Fault(method="POST", path=r"/volumes/.*/action", status=503, retry_after="2")
    )
    first = client.export("vol-1")
    assert first.status_code == 503
    assert first.headers["Retry-After"] == "2"
    assert first.json() == {"error": {"code": "EVS.5503", "message": "Service unavailable."}}
    assert client.cloud.ims.images == {}
    assert client.export("vol-1").status_code == 202
    assert [r.status for r in client.cloud.requests] == [503, 202]
    assert client.cloud.requests[0].fault == "status"


def test_429_default_body(client: Client) -> None:
    """A 429 fault answers with PLATFORM.md 10.5's APIGW.0308 body and no Retry-After."""
    client.cloud.faults.add(Fault(path="cloudimages", status=429, times=2))
    for _ in range(2):
        response = client.images()
        assert response.status_code == 429
        assert response.json() == {
            "error_code": "APIGW.0308",
            "error_msg": "The throttling threshold has been reached: policy user over ratelimit,"
            " limit:200,time:5 minute",
        }
        assert "Retry-After" not in response.headers
    assert client.images().status_code == 200


def test_429_retry_after_only_when_set(client: Client) -> None:
    """A 429 fault sends Retry-After only when the fault sets one."""
    client.cloud.faults.add(Fault(path="cloudimages", status=429, retry_after="120"))
    response = client.images()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "120"
    assert response.json()["error_code"] == "APIGW.0308"


def test_fault_applies_before_auth(client: Client) -> None:
    """A status fault answers even a badly signed request (it stands for the gateway)."""
    client.cloud.faults.add(Fault(status=500, body={"error_code": "X.1", "error_msg": "boom"}))
    response = client.call("GET", "/v2/cloudimages", service="ims", sign_as=("AKOTHER", "x"))
    assert response.status_code == 500
    assert response.json() == {"error_code": "X.1", "error_msg": "boom"}


def test_fault_method_and_path_filters(client: Client) -> None:
    """A fault only hits requests whose method and path match; forever with times=-1."""
    client.cloud.evs.add_volume("vol-1")
    client.cloud.faults.add(Fault(method="GET", path=r"/cloudvolumes/vol-1$", status=502, times=-1))
    assert client.export("vol-1").status_code == 202
    for _ in range(3):
        assert client.evs("GET", "cloudvolumes/vol-1").status_code == 502
    client.cloud.faults.clear()
    assert client.evs("GET", "cloudvolumes/vol-1").status_code == 200


def test_reset_before_changes_nothing(client: Client) -> None:
    """A reset before processing raises ConnectionError and makes no image."""
    client.cloud.evs.add_volume("vol-1")
    client.cloud.faults.add(Fault(method="POST", path="/action$", reset="before"))
    with pytest.raises(requests.exceptions.ConnectionError):
        client.export("vol-1")
    assert client.cloud.ims.images == {}
    assert client.cloud.evs.volumes["vol-1"].status == "available"
    assert client.cloud.requests[-1].fault == "reset-before"
    assert client.export("vol-1").status_code == 202


def test_reset_after_changes_state(client: Client) -> None:
    """A reset after processing raises ConnectionError but the image exists."""
    client.cloud.ims.set_progress("polls", after=2)
    client.cloud.evs.add_volume("vol-1")
    client.cloud.faults.add(Fault(method="POST", path="/action$", reset="after"))
    with pytest.raises(requests.exceptions.ConnectionError):
        client.export("vol-1", "img-after")
    [image] = client.cloud.ims.images.values()
    assert image.name == "img-after"
    assert client.cloud.evs.volumes["vol-1"].status == "uploading"
    record = client.cloud.requests[-1]
    assert (record.status, record.fault) == (202, "reset-after")
    listed = client.images(("name", "img-after")).json()["images"]
    assert [i["id"] for i in listed] == [image.id]


def test_invalid_fault_rejected() -> None:
    """A fault with both a status and a reset, or a bad reset value, is refused."""
    with pytest.raises(ValueError):
        Fault(status=503, reset="before")
    with pytest.raises(ValueError):
        Fault(reset="during")


def test_latency_beyond_timeout_times_out_in_process(clock: ManualClock) -> None:
    """In process, latency past the read timeout processes the request then raises ReadTimeout."""
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, clock=clock)
    with mock_cloud(cloud), requests.Session() as session:
        c = Client(cloud, "mock", session)
        cloud.evs.add_volume("vol-1")
        cloud.faults.add(Fault(method="POST", latency=30))
        with pytest.raises(requests.exceptions.ReadTimeout):
            c.call(
                "POST",
                f"/v2/{PROJECT}/volumes/vol-1/action",
                body={"os-volume_upload_image": {"image_name": "slow"}},
                timeout=5,
            )
        assert [i.name for i in cloud.ims.images.values()] == ["slow"]
        assert cloud.now().second == 5  # the clock advanced by the timeout, nobody slept
        cloud.faults.add(Fault(method="GET", latency=2))
        assert c.evs("GET", "cloudvolumes/vol-1", timeout=5).status_code == 200
        assert cloud.now().second == 7
        assert cloud.requests[-1].fault == "latency"


def test_handle_raises_on_reset(cloud: FakeCloud) -> None:
    """FakeCloud.handle raises ConnectionReset for a reset fault."""
    from fakecloud import ConnectionReset

    cloud.faults.add(Fault(reset="before"))
    with pytest.raises(ConnectionReset):
        cloud.handle("GET", "https://ims.cn-north-4.myhuaweicloud.com/v2/cloudimages", {}, b"")
    status, headers, _ = cloud.handle(
        "GET", "https://ims.cn-north-4.myhuaweicloud.com/v2/cloudimages", {}, b""
    )
    assert status == 401
    assert "X-Request-Id" in headers


def test_storm_is_issue_nines_65_faults_in_a_seeded_order() -> None:
    """fakecloud.faults.storm gives 20 x 429, 20 x 503, 10 x 500 and 15 resets (8 after
    processing), shuffled the same way for the same seed."""
    from collections import Counter

    from fakecloud.faults import storm

    faults = storm(7)
    kinds = Counter(f.status or f.reset for f in faults)
    assert kinds == Counter({429: 20, 503: 20, 500: 10, "after": 8, "before": 7})
    assert [f.status or f.reset for f in storm(7)] == [f.status or f.reset for f in faults]
    assert [f.status or f.reset for f in storm(8)] != [f.status or f.reset for f in faults]
