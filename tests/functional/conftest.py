"""Functional tests: raw events through ``function.app`` against the in-process fake cloud
(``mock_cloud``), with loopback HTTP (127.0.0.1) let through for the webhook receiver."""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from fakecloud import FakeCloud, ManualClock, mock_cloud
from function import log as logging_setup
from function.app import handle
from function.config import Settings
from function.runtime import Runtime
from tests.harness import base_env as harness_env
from tests.harness import budget_runtime as budget_runtime
from tests.harness import fake_cloud
from tests.harness import timer_event as timer_event
from tests.support import PROJECT as PROJECT
from tests.support import REGION as REGION

START = datetime(2025, 3, 1, 1, 0, tzinfo=timezone.utc)
RESULT_SECRET = "whsec_" + base64.b64encode(b"integration-result-secret-0123").decode()
TOPIC = f"urn:smn:{REGION}:{PROJECT}:evs_export_results"
VOLUME_A = "16369c5d-384d-4e64-b37a-56d898769362"
VOLUME_B = "26369c5d-384d-4e64-b37a-56d898769362"
_LOOPBACK = re.compile(r"^http://127\.0\.0\.1:\d+/")


@dataclass
class Harness:
    """Runs events through the app with a fixed clock, no sleeping and captured logs."""

    cloud: FakeCloud
    clock: ManualClock
    env: dict[str, str]
    sleeps: list[float] = field(default_factory=list)
    stream: io.StringIO = field(default_factory=io.StringIO)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def run(self, event: object, **env: str) -> dict[str, Any]:
        settings = Settings.from_env({**self.env, **env})
        n = next(self._ids)
        runtime = Runtime(
            request_id=f"req-{n:04d}",
            remaining_ms=lambda: 600_000,
            clock=self.clock,
            sleep=self.sleeps.append,
        )
        logging_setup.configure(settings.log_level, self.stream)
        logging_setup.start_invocation(cold_start=False, request_id=runtime.request_id)
        return handle(event, settings, runtime)

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def requests(self, method: str, pattern: str) -> int:
        """How many requests the fake received matching ``method`` and path ``pattern``."""
        return sum(
            1 for r in self.cloud.requests if r.method == method and re.search(pattern, r.path)
        )


def base_env() -> dict[str, str]:
    return harness_env(MAX_REQUESTS_PER_SECOND="1000")


@pytest.fixture
def harness() -> Iterator[Harness]:
    """A fake cloud holding two available volumes, mocked in process; logging reset after."""
    clock = ManualClock(START)
    cloud = fake_cloud(clock)
    cloud.evs.add_volume(id=VOLUME_A, name="app-data", status="available", size=40)
    cloud.evs.add_volume(id=VOLUME_B, name="app-logs", status="available", size=20)
    mock = mock_cloud(cloud)
    with mock:
        mock.responses.add_passthru(_LOOPBACK)
        yield Harness(cloud, clock, base_env())
    logging_setup.reset()


def export_batch(*volumes: str, prefix: str = "img") -> dict[str, Any]:
    """A direct batch exporting each volume to ``{prefix}-{n}``."""
    return {
        "exports": [
            {"volume_id": v, "os-volume_upload_image": {"image_name": f"{prefix}-{n}"}}
            for n, v in enumerate(volumes, start=1)
        ]
    }
