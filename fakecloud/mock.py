"""In-process mode: `responses` routes the service endpoints to a FakeCloud (like moto)."""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Sequence
from contextlib import ContextDecorator
from typing import Any
from urllib.parse import urlsplit

import requests
import responses

from fakecloud.base import Request
from fakecloud.core import SERVICES, FakeCloud

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
_STACK: list[FakeCloud] = []


def current() -> FakeCloud:
    """The cloud of the innermost active `mock_cloud`."""
    if not _STACK:
        raise RuntimeError("no mock_cloud is active")
    return _STACK[-1]


def endpoint_urls(region: str) -> list[str]:
    """The default endpoints of the home region the mock intercepts."""
    return [f"https://{service}.{region}.myhuaweicloud.com" for service in SERVICES]


# IMS in any region (PLATFORM.md 4.0: `https://ims.{region}.myhuaweicloud.com`); a region the
# cloud does not serve gets a ConnectionError, as an unknown host would.
_ANY_IMS = re.compile(r"^https://ims\.(?P<region>[a-z0-9-]+)\.myhuaweicloud\.com(?:[/?].*)?$")


def _url_pattern(base: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(base.rstrip("/")) + r"(?:[/?].*)?$")


def _read_timeout(prepared: requests.PreparedRequest) -> float | None:
    timeout = getattr(prepared, "req_kwargs", {}).get("timeout")
    if isinstance(timeout, tuple):
        timeout = timeout[1]
    return float(timeout) if isinstance(timeout, (int, float)) else None


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")  # what urllib3 2.x sends for a str body
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in body)


def make_callback(
    cloud: FakeCloud,
) -> Callable[[requests.PreparedRequest], tuple[int, dict[str, str], bytes]]:
    """The `responses` callback answering for `cloud`.

    A reset fault raises requests' ConnectionError; latency at or beyond the request's read
    timeout processes the request, then raises ReadTimeout (without sleeping).
    """

    def callback(prepared: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        url = prepared.url or ""
        other = _ANY_IMS.match(url)
        if other is not None and other.group("region") not in cloud.regions:
            raise requests.exceptions.ConnectionError(
                f"fakecloud serves no region {other.group('region')!r}", request=prepared
            )
        headers = {k.lower(): v for k, v in prepared.headers.items()}
        headers.setdefault("host", urlsplit(url).netloc)
        req = Request(
            str(prepared.method or "GET").upper(), url, headers, _body_bytes(prepared.body)
        )
        fault = cloud.take_fault(req)
        timed_out = False
        if fault is not None and fault.latency > 0:
            limit = _read_timeout(prepared)
            if limit is not None and fault.latency >= limit:
                timed_out = True
                advance = getattr(cloud.clock, "advance", None)
                if callable(advance):
                    advance(limit)
            else:
                cloud.wait(fault.latency)
        reply = cloud.process(req, fault)
        if reply.reset is not None:
            raise requests.exceptions.ConnectionError(
                f"Connection reset by fakecloud ({reply.reset} processing)", request=prepared
            )
        if timed_out:
            raise requests.exceptions.ReadTimeout(
                "Read timed out (fakecloud latency fault)", request=prepared
            )
        return reply.status, reply.headers, reply.body

    return callback


class mock_cloud(ContextDecorator):
    """Route the Huawei endpoints (and `base_urls`) to a FakeCloud while active.

    As a context manager it yields the cloud; as a decorator the test reaches it with
    `fakecloud.current()`. Unregistered URLs get `responses`' default ConnectionError.
    Pass `requests_mock` to add the routes to a RequestsMock you already run.
    """

    def __init__(
        self,
        cloud: FakeCloud | None = None,
        *,
        base_urls: Sequence[str] = (),
        requests_mock: responses.RequestsMock | None = None,
        **cloud_kwargs: Any,
    ) -> None:
        if cloud is not None and cloud_kwargs:
            raise TypeError("pass either a FakeCloud or FakeCloud keyword arguments")
        self._given = cloud
        self._base_urls = tuple(base_urls)
        self._external = requests_mock
        self._kwargs = cloud_kwargs
        self._active: list[tuple[FakeCloud, responses.RequestsMock, list[Any]]] = []

    @property
    def responses(self) -> responses.RequestsMock:
        """The RequestsMock of the innermost activation (to register other URLs)."""
        return self._active[-1][1]

    def __enter__(self) -> FakeCloud:
        cloud = self._given or FakeCloud(**self._kwargs)
        rsps = self._external or responses.RequestsMock(assert_all_requests_are_fired=False)
        callback = make_callback(cloud)
        added = []
        patterns = [_url_pattern(b) for b in [*endpoint_urls(cloud.region), *self._base_urls]]
        for pattern in [*patterns, _ANY_IMS]:
            for method in METHODS:
                added.append(
                    rsps.add_callback(method, pattern, callback=callback, content_type=None)
                )
        if self._external is None:
            rsps.start()
        self._active.append((cloud, rsps, added))
        _STACK.append(cloud)
        return cloud

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        cloud, rsps, added = self._active.pop()
        _STACK.remove(cloud)
        if self._external is None:
            rsps.stop()
            rsps.reset()
        else:
            for item in added:
                rsps.remove(item)
