"""Small in-process fakes for unit tests: a fake clock, a runtime and settings, a reference
signer; the transports are ``function.testing``'s (re-exported here)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote, urlsplit

from function.config import Credentials, Settings
from function.runtime import Runtime
from function.testing import MockTransport as MockTransport
from function.testing import ScriptedTransport as ScriptedTransport
from function.testing import Sent as Sent
from function.testing import response as response
from tests.support import AK as AK
from tests.support import PROJECT as PROJECT
from tests.support import SK as SK

VOLUME = "16369c5d-384d-4e64-b37a-56d898769362"
VOLUME_2 = "26369c5d-384d-4e64-b37a-56d898769362"
IMAGE = "c5333daa-fbc8-4d1d-bf79-b0567bb45d15"
START = datetime(2025, 1, 1, tzinfo=timezone.utc)


@dataclass
class FakeTime:
    """A clock that only moves when the code under test sleeps; the budget shrinks with it."""

    now: datetime = START
    budget_ms: int = 900_000
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        self.budget_ms -= int(seconds * 1000)

    def remaining_ms(self) -> int:
        return self.budget_ms


def make_runtime(fake: FakeTime | None = None, request_id: str = "req-0001") -> Runtime:
    """A runtime with fixed time, no real sleeping, seeded randomness and counted IDs."""
    fake = fake or FakeTime()
    counter = itertools.count(1)
    return Runtime(
        request_id=request_id,
        function_name="evs-export",
        function_version="latest",
        remaining_ms=fake.remaining_ms,
        clock=fake.clock,
        sleep=fake.sleep,
        new_id=lambda: f"id-{next(counter)}",
        rng=random.Random(7),
    )


def make_settings(**overrides: object) -> Settings:
    """Settings for cn-north-4 with static credentials, overridable per test."""
    base: dict[str, object] = {
        "region": "cn-north-4",
        "project_id": PROJECT,
        "credentials": Credentials(AK, SK),
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def reference_authorization(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    ak: str,
    sk: str,
) -> str:
    """SDK-HMAC-SHA256 from PLATFORM §3.1, written with the standard library only.

    Every header without ``_`` is signed, except an ``Authorization`` already present.
    """
    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    parts = urlsplit(url)
    segments = [quote(unquote(s), safe="~") for s in parts.path.split("/")]
    uri = "/".join(segments)
    if not uri.endswith("/"):
        uri += "/"
    pairs: Sequence[tuple[str, str]] = sorted(
        (unquote(k), unquote(v))
        for k, _, v in (p.partition("=") for p in parts.query.split("&") if p)
    )
    query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)
    signed = sorted(k.lower() for k in headers if "_" not in k)
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    canonical_headers = "".join(f"{k}:{lower[k]}\n" for k in signed)
    canonical = "\n".join(
        [
            method.upper(),
            uri,
            query,
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        [
            "SDK-HMAC-SHA256",
            lower["x-sdk-date"],
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    signature = hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"SDK-HMAC-SHA256 Access={ak}, SignedHeaders={';'.join(signed)}, Signature={signature}"
