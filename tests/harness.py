"""The one harness every tier shares, on the keys of ``tests.support``:
the seed's example, a fake FunctionGraph context, a cheap runtime, the fake cloud's request
log, and ``python -m fakecloud`` as a subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from fakecloud import FakeCloud, ManualClock, RecordedRequest
from function.runtime import Runtime
from tests.support import AK as AK
from tests.support import PROJECT as PROJECT
from tests.support import REGION as REGION
from tests.support import SK as SK
from tests.support import TOKEN as TOKEN
from tests.support import WRONG_SK as WRONG_SK
from tests.support import reset_logging as reset_logging

ROOT = Path(__file__).resolve().parents[1]
VOLUME = "16369c5d-384d-4e64-b37a-56d898769362"  # the seed's example volume
VOLUME_IN_USE = "0f4c7e2a-9b1d-4c3e-8a6f-2d5b7c9e1a34"
VOLUME_UNKNOWN = "7a2e9d41-5c83-4f6b-b1e0-93d8c4a5f267"
ACTION_KEY = "os-volume_upload_image"
SOURCE = f"urn:fss:{REGION}:{PROJECT}:function:default:evs-export:latest"
ZERO = {"accepted": 0, "rejected": 0, "failed": 0, "skipped": 0}
EXPORT_PATH = re.compile(r"^/v2/[^/]+/volumes/[^/]+/action$")
FAULT_EXPORT_PATH = r"/volumes/[^/]+/action$"  # not the image tags' .../tags/action
CONFIG_VARS = (
    "REGION",
    "PROJECT_ID",
    "RUNTIME_PROJECT_ID",
    "HUAWEICLOUD_SDK_PROJECT_ID",
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "EVS_ENDPOINT",
    "IMS_ENDPOINT",
    "ECS_ENDPOINT",
    "SMN_ENDPOINT",
    "FUNCTIONGRAPH_ENDPOINT",
    "FUNCTION_URN",
    "WEBHOOK_SECRETS",
    "SLACK_SIGNING_SECRET",
    "CHAT_ALLOWED_USERS",
    "CHAT_ALLOWED_CHANNELS",
    "RESULT_WEBHOOK_URL",
    "RESULT_WEBHOOK_SECRET",
    "RESULT_SMN_TOPIC_URN",
    "MAX_CONCURRENCY",
    "MAX_REQUESTS_PER_SECOND",
    "LOG_LEVEL",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
)


def seed_options() -> dict[str, Any]:
    """The seed document's example options, in its key order."""
    return {
        "image_name": "sxmatch2",
        "force": True,
        "container_format": "bare",
        "disk_format": "vhd",
        "__os_type": "linux",
    }


def seed_event(volume_id: str = VOLUME) -> dict[str, Any]:
    """The seed's example request plus the volume, as a direct event."""
    return {"volume_id": volume_id, ACTION_KEY: seed_options()}


def export_event(volume_id: str, **options: Any) -> dict[str, Any]:
    """A direct export of ``volume_id`` with ``options`` (image_name included)."""
    return {"volume_id": volume_id, ACTION_KEY: dict(options)}


def base_env(**overrides: str) -> dict[str, str]:
    """A complete configuration for the fake (default regional endpoints) on the one set of
    keys; an override of ``""`` removes a variable. Every tier builds its settings here."""
    env = {
        "REGION": REGION,
        "PROJECT_ID": PROJECT,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def fake_cloud(clock: Callable[[], datetime] | None = None, **kwargs: Any) -> FakeCloud:
    """An empty fake cloud that accepts the one set of keys (every tier's)."""
    return FakeCloud(ak=AK, sk=SK, project_id=PROJECT, region=REGION, clock=clock, **kwargs)


def new_cloud(**kwargs: Any) -> FakeCloud:
    """A fake cloud for AK/SK/PROJECT with the seed's volumes: one available (40 GB), one
    in use; ``VOLUME_UNKNOWN`` does not exist."""
    cloud = fake_cloud(**kwargs)
    add_seed_volumes(cloud)
    return cloud


def budget_runtime(clock: ManualClock, budget_s: float) -> Runtime:
    """An invocation of ``budget_s`` seconds on the fake's clock: its remaining time counts
    down with the clock, and sleeping advances the clock instead of waiting."""
    start = clock()

    def remaining() -> int:
        return int(budget_s * 1000 - (clock() - start).total_seconds() * 1000)

    def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return Runtime(clock=clock, sleep=sleep, remaining_ms=remaining)


def timer_event(
    policy: Mapping[str, Any], when: datetime | str, name: str = "nightly-timer"
) -> dict[str, Any]:
    """A TIMER event (PLATFORM §2.1) carrying ``policy`` as its ``user_event``."""
    time = when if isinstance(when, str) else when.isoformat().replace("+00:00", "Z")
    return {
        "version": "v1.0",
        "time": time,
        "trigger_type": "TIMER",
        "trigger_name": name,
        "user_event": json.dumps(dict(policy)),
    }


def add_seed_volumes(cloud: FakeCloud) -> None:
    cloud.evs.add_volume(VOLUME, name="app-data-archive", status="available", size=40)
    cloud.evs.add_volume(
        VOLUME_IN_USE,
        name="web-01-system",
        status="in-use",
        size=40,
        attachments=[{"server_id": "b6d1f0c2-3e4a-4f5b-9c8d-1a2b3c4d5e6f", "device": "/dev/vda"}],
    )


def export_posts(requests_seen: list[RecordedRequest]) -> list[RecordedRequest]:
    """The seed's export calls among the recorded requests."""
    return [r for r in requests_seen if r.method == "POST" and EXPORT_PATH.match(r.path)]


def image_names(cloud: FakeCloud) -> list[str]:
    return [str(i["name"]) for i in cloud.state()["images"]]


def signed_headers(authorization: str) -> str:
    """The ``SignedHeaders`` list of an SDK-HMAC-SHA256 Authorization value."""
    match = re.search(r"SignedHeaders=([^,\s]+)", authorization)
    assert match is not None, authorization
    return match.group(1)


def signature_of(authorization: str) -> str:
    match = re.search(r"Signature=([0-9a-fA-F]+)", authorization)
    assert match is not None, authorization
    return match.group(1)


def quick_runtime(request_id: str = "req-integration-0001") -> Runtime:
    """A runtime whose backoff and rate-limit waits cost nothing."""
    return Runtime(request_id=request_id, sleep=lambda _s: None)


class FakeContext:
    """The FunctionGraph context methods the function uses, with agency credentials."""

    def __init__(
        self,
        ak: str = AK,
        sk: str = SK,
        token: str | None = TOKEN,
        project_id: str = PROJECT,
        request_id: str = "fg-req-0001",
    ) -> None:
        self._ak, self._sk, self._token = ak, sk, token
        self._project_id, self._request_id = project_id, request_id

    def getSecurityAccessKey(self) -> str:
        return self._ak

    def getSecuritySecretKey(self) -> str:
        return self._sk

    def getSecurityToken(self) -> str:
        return self._token or ""

    def getProjectID(self) -> str:
        return self._project_id

    def getRequestID(self) -> str:
        return self._request_id

    def getFunctionName(self) -> str:
        return "evs-export"

    def getVersion(self) -> str:
        return "latest"

    def getRemainingTimeInMilliSeconds(self) -> int:
        return 300_000


def http_session() -> requests.Session:
    """A session that never uses a proxy (loopback only)."""
    session = requests.Session()
    session.trust_env = False
    return session


def fake_state(session: requests.Session, url: str) -> dict[str, Any]:
    """``GET /_fake/state`` of a fake cloud server."""
    resp = session.get(f"{url}/_fake/state", timeout=5)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert isinstance(data, dict)
    return data


SEED_FILE: dict[str, Any] = {
    "volumes": [
        {"id": VOLUME, "name": "app-data-archive", "status": "available", "size": 40},
        {
            "id": VOLUME_IN_USE,
            "name": "web-01-system",
            "status": "in-use",
            "size": 40,
            "bootable": True,
            "attachments": [
                {"server_id": "b6d1f0c2-3e4a-4f5b-9c8d-1a2b3c4d5e6f", "device": "/dev/vda"}
            ],
        },
    ],
    "servers": [],
    "images": [],
}


@contextmanager
def fakecloud_process(
    workdir: Path, seed: Mapping[str, Any] | None = None, timeout: float = 20.0
) -> Iterator[str]:
    """Run ``python -m fakecloud --port 0 --seed FILE`` and yield its base URL; the process
    is terminated (then killed if need be) on exit."""
    seed_path = workdir / "fakecloud-seed.json"
    seed_path.write_text(json.dumps(seed if seed is not None else SEED_FILE), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(
        HUAWEICLOUD_SDK_AK=AK,
        HUAWEICLOUD_SDK_SK=SK,
        HUAWEICLOUD_SDK_PROJECT_ID=PROJECT,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    with open(workdir / "fakecloud-stderr.txt", "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fakecloud", "--port", "0", "--seed", str(seed_path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        try:
            yield _listening_url(proc, timeout, workdir)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()


def _listening_url(proc: subprocess.Popen[bytes], timeout: float, workdir: Path) -> str:
    """The URL from the 'fakecloud listening on http://127.0.0.1:PORT' line."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffered = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffered:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                errors = (workdir / "fakecloud-stderr.txt").read_text(errors="replace")
                raise AssertionError(f"fakecloud did not start: {buffered!r} {errors}")
            if sel.select(timeout=left):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                buffered += chunk
    line = buffered.split(b"\n", 1)[0].decode()
    match = re.fullmatch(r"fakecloud listening on (http://127\.0\.0\.1:\d+)", line.strip())
    assert match is not None, line
    return match.group(1)
