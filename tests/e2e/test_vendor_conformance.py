"""Conformance with the vendor's own client: huaweicloudsdkevs 3.0.69, the last release with
``CinderExportToImage``, gets the documented answers from the fake cloud, and for the same
input the function sends the same request as the vendor client does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkevs.v2 import (
    CinderExportToImageOption,
    CinderExportToImageRequest,
    CinderExportToImageRequestBody,
    EvsClient,
)

from fakecloud import FakeCloud, RecordedRequest, serve
from function.app import invoke
from tests.harness import (
    ACTION_KEY,
    AK,
    CONFIG_VARS,
    PROJECT,
    SK,
    TOKEN,
    VOLUME,
    VOLUME_IN_USE,
    VOLUME_UNKNOWN,
    add_seed_volumes,
    export_event,
    export_posts,
    fakecloud_process,
    new_cloud,
    reset_logging,
    seed_options,
    signed_headers,
)

SDK_SIGNED = "content-type;host;user-agent;x-project-id;x-sdk-date"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """HOME in a temporary directory (the client builder writes ~/.huaweicloud), no proxy
    or credential variables, and structlog reset around each test."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    reset_logging()
    yield
    reset_logging()


@pytest.fixture(scope="module")
def fakecloud_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a ``python -m fakecloud --port 0 --seed FILE`` subprocess."""
    with fakecloud_process(tmp_path_factory.mktemp("fakecloud-vendor")) as url:
        yield url


def vendor_client(url: str, token: str | None = None) -> Any:
    """The vendor's EvsClient for AK/SK/PROJECT (and a security token) against ``url``."""
    config = HttpConfig.get_default_config()
    config.timeout = (5, 10)
    credentials = BasicCredentials(AK, SK, PROJECT)
    if token is not None:
        credentials = credentials.with_security_token(token)
    return (
        EvsClient.new_builder()
        .with_credentials(credentials)
        .with_endpoint(url)
        .with_http_config(config)
        .build()
    )


def vendor_request(volume_id: str, options: dict[str, Any]) -> Any:
    """The vendor's CinderExportToImageRequest for our wire options (``__os_type`` is the
    model's ``os_type``)."""
    kwargs = {("os_type" if k == "__os_type" else k): v for k, v in options.items()}
    option = CinderExportToImageOption(**kwargs)
    body = CinderExportToImageRequestBody(os_volume_upload_image=option)
    return CinderExportToImageRequest(volume_id=volume_id, body=body)


# -- the documented answers, over HTTP from `python -m fakecloud` --------------------------


def test_vendor_export_gets_202_with_the_documented_fields(fakecloud_url: str) -> None:
    """The vendor client's export is answered 202 with image_id, status uploading and size."""
    client = vendor_client(fakecloud_url)
    options = {**seed_options(), "image_name": "vendor-seed-example"}
    response = client.cinder_export_to_image(vendor_request(VOLUME, options))

    assert response.status_code == 202
    result = response.os_volume_upload_image
    assert isinstance(result.image_id, str) and len(result.image_id) == 36
    assert result.image_name == "vendor-seed-example"
    assert result.status == "uploading"
    assert result.size == 40
    assert result.id == VOLUME
    assert result.disk_format == "vhd"
    assert result.container_format == "bare"
    assert result.volume_type is not None and result.volume_type.name


def test_vendor_export_of_unknown_volume_raises_404(fakecloud_url: str) -> None:
    """For an unknown volume the vendor client raises ClientRequestException 404 EVS.5404."""
    client = vendor_client(fakecloud_url)
    with pytest.raises(ClientRequestException) as caught:
        client.cinder_export_to_image(vendor_request(VOLUME_UNKNOWN, {"image_name": "ghost"}))
    assert caught.value.status_code == 404
    assert caught.value.error_code == "EVS.5404"
    assert caught.value.request_id


def test_vendor_export_of_in_use_volume_without_force_raises_400(fakecloud_url: str) -> None:
    """For an in-use volume without force the vendor client raises 400 EVS.5400."""
    client = vendor_client(fakecloud_url)
    with pytest.raises(ClientRequestException) as caught:
        client.cinder_export_to_image(vendor_request(VOLUME_IN_USE, {"image_name": "in-use"}))
    assert caught.value.status_code == 400
    assert caught.value.error_code == "EVS.5400"


# -- the same request as the vendor client ------------------------------------------------

SAME_INPUTS: list[tuple[str, dict[str, Any]]] = [
    ("seed-example", seed_options()),
    ("minimal", {"image_name": "x"}),
    ("disk-format-only", {"image_name": "disk only", "disk_format": "qcow2"}),
    ("windows-not-forced", {"__os_type": "windows", "image_name": "win.1", "force": False}),
    ("chinese-name", {"image_name": "数据盘 镜像_1.0", "container_format": "ovf"}),
]


def our_export(
    cloud: FakeCloud, url: str, options: dict[str, Any], token: str | None = None
) -> RecordedRequest:
    """The export request the function sends for ``options`` (via invoke, real HTTP)."""
    env = {"PROJECT_ID": PROJECT, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
    env.update(EVS_ENDPOINT=url, IMS_ENDPOINT=url)
    if token is not None:
        env["HUAWEICLOUD_SDK_SECURITY_TOKEN"] = token
    result = invoke(export_event(VOLUME, **options), None, env=env)
    assert [e["type"] for e in result["results"]] == ["evs.export.accepted"], result
    posts = export_posts(cloud.requests)
    assert len(posts) == 1
    return posts[0]


def vendor_export(
    cloud: FakeCloud, url: str, options: dict[str, Any], token: str | None = None
) -> RecordedRequest:
    """The export request the vendor client sends for ``options``."""
    client = vendor_client(url, token)
    response = client.cinder_export_to_image(vendor_request(VOLUME, options))
    assert response.status_code == 202
    posts = export_posts(cloud.requests)
    assert len(posts) == 1
    return posts[0]


@pytest.mark.parametrize(
    "options", [o for _, o in SAME_INPUTS], ids=[name for name, _ in SAME_INPUTS]
)
def test_function_sends_the_vendor_clients_request(options: dict[str, Any]) -> None:
    """For the same input, method, path, JSON body and signed headers equal the vendor's."""
    cloud = new_cloud()
    with serve(cloud) as server:
        ours = our_export(cloud, server.url, options)
        cloud.reset()
        add_seed_volumes(cloud)
        theirs = vendor_export(cloud, server.url, options)

    assert ours.status == theirs.status == 202
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert ours.path == f"/v2/{PROJECT}/volumes/{VOLUME}/action"
    assert ours.query == theirs.query == {}
    # Same JSON object, different key order: the vendor model serialises its attributes in
    # alphabetical order (os_type sorts as "os_type", sent as "__os_type"); the function
    # keeps the caller's order. Bodies are compared parsed, as objects.
    assert json.loads(ours.body) == json.loads(theirs.body) == {ACTION_KEY: options}
    assert ours.body == json.dumps({ACTION_KEY: options}).encode()
    vendor_order = sorted(options, key=lambda k: "os_type" if k == "__os_type" else k)
    assert list(json.loads(theirs.body)[ACTION_KEY]) == vendor_order
    # Both sign the same header set with SDK-HMAC-SHA256 and the same access key.
    ours_auth, theirs_auth = ours.headers["authorization"], theirs.headers["authorization"]
    assert signed_headers(ours_auth) == signed_headers(theirs_auth) == SDK_SIGNED
    assert ours_auth.split(",")[0] == theirs_auth.split(",")[0] == f"SDK-HMAC-SHA256 Access={AK}"
    for name in ("x-project-id", "host"):
        assert ours.headers[name] == theirs.headers[name], name
    # The vendor sends "application/json;charset=utf-8", the function
    # "application/json;charset=UTF-8": equal as media types (charset is case-insensitive).
    assert ours.headers["content-type"].lower() == theirs.headers["content-type"].lower()
    assert "x-security-token" not in ours.headers and "x-security-token" not in theirs.headers


def test_function_signs_the_security_token_like_the_vendor_client() -> None:
    """With temporary credentials both send X-Security-Token and sign the same header set."""
    cloud = new_cloud(security_token=TOKEN)
    with serve(cloud) as server:
        ours = our_export(cloud, server.url, seed_options(), TOKEN)
        cloud.reset()
        add_seed_volumes(cloud)
        theirs = vendor_export(cloud, server.url, seed_options(), TOKEN)

    assert ours.status == theirs.status == 202
    assert ours.headers["x-security-token"] == theirs.headers["x-security-token"] == TOKEN
    ours_signed = signed_headers(ours.headers["authorization"])
    assert ours_signed == signed_headers(theirs.headers["authorization"])
    assert ours_signed == f"{SDK_SIGNED};x-security-token"
