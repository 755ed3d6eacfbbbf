"""Interop: requests signed by huaweicloudsdkcore's Signer pass the fake's independent check.

Only the test imports the SDK; the fake itself never does.
"""

from __future__ import annotations

import json
import types
from typing import Any

import pytest
import requests

from tests.contract.conftest import AK, PROJECT, REGION, SK, Client

signer_module = pytest.importorskip("huaweicloudsdkcore.signer.signer")
sdk_request = pytest.importorskip("huaweicloudsdkcore.sdk_request")


def sdk_call(
    client: Client,
    method: str,
    service: str,
    path: str,
    query: list[tuple[str, Any]] | None = None,
    body: Any = None,
    token: str | None = None,
) -> requests.Response:
    """Sign with the SDK's Signer (PLATFORM.md 3.2) and send through the client's session."""
    base = client.base(service)
    schema, host = base.split("://", 1)
    headers = {
        "Content-Type": "application/json;charset=UTF-8",
        "X-Project-Id": PROJECT,
        "X-Sdk-Date": client.cloud.now().strftime("%Y%m%dT%H%M%SZ"),
    }
    if token:
        headers["X-Security-Token"] = token
    req = sdk_request.SdkRequest(
        method=method,
        schema=schema,
        host=host,
        resource_path=path,
        query_params=list(query or []),
        header_params=headers,
        body=json.dumps(body) if body is not None else "",
    )
    signer_module.Signer(types.SimpleNamespace(ak=AK, sk=SK)).sign(req)
    return client.session.request(
        method, req.url, data=req.body, headers=req.header_params, timeout=5
    )


def test_sdk_signed_export(client: Client) -> None:
    """An SDK-signed export POST is accepted (202)."""
    client.cloud.evs.add_volume("vol-1")
    body = {"os-volume_upload_image": {"image_name": "sdk img", "force": True}}
    response = sdk_call(client, "POST", "evs", f"/v2/{PROJECT}/volumes/vol-1/action", body=body)
    assert response.status_code == 202, response.text


def test_sdk_signed_query_and_urn(client: Client) -> None:
    """SDK-signed GETs with awkward query values and a URN path are accepted."""
    client.cloud.ims.add_image(name="a b/c~d")
    query = [("name", "a b/c~d"), ("limit", 10), ("__imagetype", "private")]
    response = sdk_call(client, "GET", "ims", "/v2/cloudimages", query=query)
    assert response.status_code == 200, response.text
    assert [i["name"] for i in response.json()["images"]] == ["a b/c~d"]
    topic = f"urn:smn:{REGION}:{PROJECT}:results"
    path = f"/v2/{PROJECT}/notifications/topics/{topic}/publish"
    response = sdk_call(client, "POST", "smn", path, body={"message": "hi"})
    assert response.status_code == 200, response.text


def test_sdk_signed_with_token(client: Client) -> None:
    """An SDK-signed request carrying X-Security-Token passes when the cloud expects it."""
    client.cloud.security_token = "TOKEN123"
    response = sdk_call(
        client, "GET", "evs", f"/v2/{PROJECT}/cloudvolumes/detail", token="TOKEN123"
    )
    assert response.status_code == 200, response.text
    response = sdk_call(client, "GET", "evs", f"/v2/{PROJECT}/cloudvolumes/detail")
    assert response.status_code == 401
