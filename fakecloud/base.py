"""Types shared by the fake's services: the parsed request, the reply, errors, time helpers."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

JSON_TYPE = "application/json;charset=UTF-8"


@dataclass
class Request:
    """One HTTP request as the gateway sees it (header names lower-cased)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The region the request is for: set by a region-bound server, else resolved by the core
    # from the host (`ims.{region}.myhuaweicloud.com`), else the cloud's home region.
    region: str | None = None

    @property
    def _split(self) -> SplitResult:
        return urlsplit(self.url)

    @property
    def scheme(self) -> str:
        return self._split.scheme or "http"

    @property
    def host(self) -> str:
        return self.headers.get("host") or self._split.netloc

    @property
    def raw_path(self) -> str:
        """The path exactly as sent (percent-encoded); the signature is computed over it."""
        return self._split.path or "/"

    @property
    def path(self) -> str:
        """The decoded path that routes and fault patterns match."""
        return unquote(self.raw_path)

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self._split.query, keep_blank_values=True)

    @property
    def query(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, value in self.query_pairs:
            out.setdefault(key, []).append(value)
        return out

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def arg(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    """What the fake answers; `reset` means the connection is dropped instead."""

    status: int
    headers: dict[str, str]
    body: bytes
    reset: str | None = None


class ApiError(Exception):
    """An error answer in a service's own body format."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


class BadJson(Exception):
    """The request body is not the JSON the route needs."""


Handler = Callable[["FakeCloud", Request, "re.Match[str]"], "Reply"]


class Route(NamedTuple):
    """One row of a service's route table: the request it matches, its handler, and the IAM
    action a policy must allow for it (PLATFORM.md 10.6; fakecloud.iam enforces it)."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    action: str


PROJECT = r"(?P<project>[^/]+)"


def route(method: str, pattern: str, handler: Handler, action: str) -> Route:
    """A route entry: method, anchored path regex (with `{project}` placeholders), handler and
    the IAM action it needs."""
    return Route(
        method, re.compile("^" + pattern.replace("{project}", PROJECT) + "$"), handler, action
    )


def json_reply(status: int, body: Any, request: Request, **headers: str) -> Reply:
    """A JSON reply carrying the request's X-Request-Id."""
    data = b"" if body is None else json.dumps(body).encode("utf-8")
    out = {"X-Request-Id": request.request_id}
    if body is not None:
        out["Content-Type"] = JSON_TYPE
    out.update(headers)
    return Reply(status, out, data)


def parse_json(request: Request) -> Any:
    """The decoded JSON body; raises BadJson when it is empty or not JSON."""
    if not request.body:
        raise BadJson("the request body is empty")
    try:
        return json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadJson(f"the request body is not valid JSON ({exc})") from exc


def utc(dt: datetime) -> datetime:
    """`dt` as an aware UTC datetime (naive values are taken as UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso_z(dt: datetime) -> str:
    """IMS time format: `YYYY-MM-DDTHH:MM:SSZ`."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(dt: datetime) -> str:
    """EVS time format: `YYYY-MM-DDTHH:MM:SS.ffffff` (UTC, no zone)."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_time(value: str) -> datetime:
    """Parse an ISO 8601 time (with `Z`, offset or none = UTC)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return utc(datetime.fromisoformat(text))


class ManualClock:
    """A clock for tests: call it for `now`, `advance()` it instead of sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start or datetime(2025, 1, 1, tzinfo=timezone.utc))

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward by `seconds` and return the new now."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, now: datetime) -> None:
        """Jump to `now`."""
        self._now = utc(now)
