"""Fixtures for the fakecloud contract tests: a reference signer and a client for both modes."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest
import requests

from fakecloud import FakeCloud, ManualClock, mock_cloud, serve
from tests.support import AK as AK
from tests.support import PROJECT as PROJECT
from tests.support import REGION as REGION
from tests.support import SK as SK

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def sign(
    method: str,
    host: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    ak: str,
    sk: str,
) -> str:
    """Reference SDK-HMAC-SHA256 (PLATFORM.md 3.1): the Authorization value for a request."""
    lower = {k.lower(): v.strip() for k, v in {**headers, "Host": host}.items() if "_" not in k}
    signed = sorted(lower)
    uri = "/".join(quote(seg, safe="~") for seg in path.split("/"))
    uri = uri if uri.endswith("/") else uri + "/"
    canon_query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query))
    payload = hashlib.sha256(body).hexdigest()
    canonical = "\n".join(
        [
            method,
            uri,
            canon_query,
            "".join(f"{k}:{lower[k]}\n" for k in signed),
            ";".join(signed),
            payload,
        ]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"SDK-HMAC-SHA256\n{headers['X-Sdk-Date']}\n{digest}"
    sig = hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"SDK-HMAC-SHA256 Access={ak}, SignedHeaders={';'.join(signed)}, Signature={sig}"


class Client:
    """Sends signed requests to a FakeCloud, in-process (`mock`) or over HTTP (`server`)."""

    def __init__(self, cloud: FakeCloud, mode: str, session: requests.Session, url: str = ""):
        self.cloud, self.mode, self.session, self._url = cloud, mode, session, url

    def base(self, service: str) -> str:
        """The endpoint of `service` in this mode."""
        return self._url or f"https://{service}.{REGION}.myhuaweicloud.com"

    def call(
        self,
        method: str,
        path: str,
        *,
        service: str = "evs",
        body: Any = None,
        raw: bytes | None = None,
        query: list[tuple[str, str]] | None = None,
        sign_as: tuple[str, str] = (AK, SK),
        date: datetime | None = None,
        token: str | None = None,
        project_header: str | None = PROJECT,
        extra: Mapping[str, str] | None = None,
        signed_body: bytes | None = None,
        unsigned: Mapping[str, str] | None = None,
        timeout: float = 5,
    ) -> requests.Response:
        """Sign and send; `signed_body`/`unsigned` let tests break the signature on purpose."""
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        base = self.base(service)
        host = base.split("://", 1)[1]
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "X-Sdk-Date": (date or self.cloud.now()).strftime("%Y%m%dT%H%M%SZ"),
        }
        if project_header is not None:
            headers["X-Project-Id"] = project_header
        if token is not None:
            headers["X-Security-Token"] = token
        headers.update(extra or {})
        pairs = query or []
        headers["Authorization"] = sign(
            method,
            host,
            path,
            pairs,
            headers,
            data if signed_body is None else signed_body,
            *sign_as,
        )
        headers.update(unsigned or {})
        qs = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)
        url = f"{base}{quote(path, safe='/~')}" + (f"?{qs}" if qs else "")
        return self.session.request(method, url, data=data, headers=headers, timeout=timeout)

    def evs(self, method: str, tail: str, **kw: Any) -> requests.Response:
        """A request to /v2/{project}/<tail> on EVS."""
        return self.call(method, f"/v2/{PROJECT}/{tail}", service="evs", **kw)

    def export(self, volume_id: str, name: str = "img-1", **fields: Any) -> requests.Response:
        """The seed's export call."""
        body = {"os-volume_upload_image": {"image_name": name, **fields}}
        return self.evs("POST", f"volumes/{volume_id}/action", body=body)

    def image(self, image_id: str) -> requests.Response:
        """GET /v2/images/{id}."""
        return self.call("GET", f"/v2/images/{image_id}", service="ims")

    def images(self, *query: tuple[str, str]) -> requests.Response:
        """GET /v2/cloudimages?query."""
        return self.call("GET", "/v2/cloudimages", service="ims", query=list(query))


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at 2025-01-01T00:00:00Z."""
    return ManualClock(START)


@pytest.fixture
def cloud(clock: ManualClock) -> FakeCloud:
    """A fresh cloud on the manual clock."""
    return FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION, clock=clock)


@pytest.fixture(params=["mock", "server"])
def client(request: pytest.FixtureRequest, cloud: FakeCloud) -> Iterator[Client]:
    """A client against `cloud`, once in-process via responses and once over 127.0.0.1."""
    with requests.Session() as session:
        if request.param == "mock":
            with mock_cloud(cloud):
                yield Client(cloud, "mock", session)
        else:
            with serve(cloud) as server:
                yield Client(cloud, "server", session, server.url)
