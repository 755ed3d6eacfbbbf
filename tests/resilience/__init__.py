"""Scale and resilience proof: storms of faults, time budgets, hostile input, secrets.

Shared helpers: a fake cloud wired for the function, settings from an environment, a runtime
that never really sleeps, and a hook on the fake that sees every request it receives (to
count what is in flight, charge a time budget, or pick a fault for it).
"""

from __future__ import annotations

import io
import itertools
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from fakecloud import FakeCloud, Fault
from fakecloud.base import Request
from function import log
from function.runtime import Runtime
from tests.harness import base_env, fake_cloud
from tests.harness import timer_event as harness_timer_event
from tests.support import AK as AK
from tests.support import PROJECT as PROJECT
from tests.support import REGION as REGION
from tests.support import SK as SK
from tests.support import reset_logging as reset_logging

TIMER_TIME = "2025-03-01T02:00:00Z"
EXPORT_PATH = r"^/v2/[^/]+/volumes/(?P<volume>[^/]+)/action$"
INVOKE_PATH = r"/invocations-async$"

Chooser = Callable[[Request, int], Fault | None]


def env(**extra: str) -> dict[str, str]:
    """The environment of a deployment in cn-north-4 with static credentials."""
    return base_env(**{"MAX_CONCURRENCY": "8", "MAX_REQUESTS_PER_SECOND": "1000", **extra})


def volume_id(i: int, space: str = "volume") -> str:
    """A deterministic UUID for the ``i``-th test volume (or server)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"evs-export-resilience/{space}/{i}"))


def make_cloud(clock: Callable[[], datetime] | None = None) -> FakeCloud:
    return fake_cloud(clock)


def add_volumes(cloud: FakeCloud, n: int, tags: dict[str, str] | None = None) -> list[str]:
    """``n`` available volumes named ``vol-0000``..., carrying ``tags``."""
    ids = []
    for i in range(n):
        vid = volume_id(i)
        cloud.evs.add_volume(id=vid, name=f"vol-{i:04d}", size=10, tags=dict(tags or {}))
        ids.append(vid)
    return ids


def make_runtime(
    remaining_ms: Callable[[], int] | None = None,
    seed: int = 1,
    clock: Callable[[], datetime] | None = None,
) -> Runtime:
    """A runtime that never really sleeps, with seeded jitter and counted IDs."""
    counter = itertools.count(1)
    return Runtime(
        request_id=f"req-{seed:04d}",
        remaining_ms=remaining_ms or (lambda: 900_000),
        clock=clock or (lambda: datetime.now(timezone.utc)),
        sleep=lambda _s: None,
        new_id=lambda: f"ev-{next(counter)}",
        rng=random.Random(seed),
    )


def timer_event(policy: dict[str, Any]) -> dict[str, Any]:
    return harness_timer_event(policy, TIMER_TIME, name="nightly")


def request_key(req: Request) -> str:
    """Method, path and sorted query: what makes two requests "the same call"."""
    query = "&".join(f"{k}={v}" for k, v in sorted(req.query_pairs))
    return f"{req.method} {req.path}?{query}"


class Watch:
    """Hooks a FakeCloud's dispatch (both adapters call ``take_fault`` then ``process``):
    counts requests in flight inside the fake, calls ``on_request`` for each, and asks
    ``choose(request, n)`` (``n``: how often the same call was seen before) for a fault."""

    def __init__(
        self,
        cloud: FakeCloud,
        choose: Chooser | None = None,
        on_request: Callable[[Request], None] | None = None,
    ) -> None:
        self._take = cloud.take_fault
        self._process = cloud.process
        self.choose = choose
        self.on_request = on_request
        self.in_flight = 0
        self.peak = 0
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        setattr(cloud, "take_fault", self._take_fault)  # noqa: B010 - patch this instance only
        setattr(cloud, "process", self._process_request)  # noqa: B010

    def _take_fault(self, req: Request) -> Fault | None:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            key = request_key(req)
            n = self.seen[key]
            self.seen[key] += 1
        if self.on_request is not None:
            self.on_request(req)
        fault = self.choose(req, n) if self.choose is not None else None
        return fault if fault is not None else self._take(req)

    def _process_request(self, req: Request, fault: Fault | None = None) -> Any:
        try:
            return self._process(req, fault)
        finally:
            with self._lock:
                self.in_flight -= 1


def export_events(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-volume outcome events of a result (not life cycle reports)."""
    kinds = ("accepted", "rejected", "failed", "skipped", "deferred")
    return [e for e in result["results"] if e["type"] in {f"evs.export.{k}" for k in kinds}]


def by_type(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in result["results"] if e["type"] == f"evs.export.{kind}"]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Log lines of the test go to a buffer (and the logging state is reset afterwards)."""
    stream = io.StringIO()
    log.use_stream(stream)
    log.configure("INFO", stream)
    yield stream
    reset_logging()
