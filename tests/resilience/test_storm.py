"""Storms: hundreds of volumes through a fake cloud that throttles, fails, resets and lags."""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

import pytest

from fakecloud import Fault, mock_cloud
from fakecloud.base import Request
from function.app import handle
from function.cloud.client import CloudClient, Limiter
from function.cloud.transport import default_transport
from function.config import Settings
from function.errors import ApiError
from tests.resilience import (
    EXPORT_PATH,
    PROJECT,
    Watch,
    add_volumes,
    by_type,
    env,
    export_events,
    log_stream,  # noqa: F401 - a fixture
    make_cloud,
    make_runtime,
    timer_event,
)

pytestmark = pytest.mark.usefixtures("log_stream")

VOLUMES = 300
MAX_CONCURRENCY = 6
DOOMED_EVERY = 25  # every 25th volume's exports never get through: retries run out
FAULT_RATE = 0.35  # of the export attempts of the other volumes
OTHER_FAULT_RATE = 0.25  # of the first two tries of any other call
KINDS = ("429", "429-retry-after-0", "500", "503", "reset-before", "reset-after", "latency")
UNPROCESSED = ("429", "429-retry-after-0", "500", "503", "reset-before")
_EXPORT_RE = re.compile(EXPORT_PATH)


def fault(kind: str, rng: random.Random) -> Fault:
    """One fault of ``kind``; latencies are a few milliseconds."""
    if kind == "429":
        return Fault(status=429)
    if kind == "429-retry-after-0":
        return Fault(status=429, retry_after="0")
    if kind in ("500", "503"):
        return Fault(status=int(kind))
    if kind in ("reset-before", "reset-after"):
        return Fault(reset=kind.removeprefix("reset-"))
    return Fault(latency=rng.uniform(0.001, 0.004))


class StormChooser:
    """Seeded faults, decided per call and attempt (so thread timing does not change them):
    a doomed volume's exports always fail unprocessed; other exports fail at FAULT_RATE with
    any kind; any other call may fail on its first two tries only (the plan must survive)."""

    def __init__(self, seed: int, doomed: set[str]) -> None:
        self.seed = seed
        self.doomed = doomed

    def __call__(self, req: Request, n: int) -> Fault | None:
        rng = random.Random(f"{self.seed}|{req.method} {req.path}?{req.query_pairs}|{n}")
        m = _EXPORT_RE.match(req.path)
        if m is not None and req.method == "POST":
            if m.group("volume") in self.doomed:
                return fault(rng.choice(UNPROCESSED), rng)
            return fault(rng.choice(KINDS), rng) if rng.random() < FAULT_RATE else None
        if n < 2 and rng.random() < OTHER_FAULT_RATE:
            return fault(rng.choice(KINDS), rng)
        return None


def storm_event(shape: str, ids: list[str]) -> dict[str, Any]:
    if shape == "timer":
        policy = {
            "policy": "nightly",
            "select": {"tags": {"backup": "daily"}},
            "image_name": "{policy}-{volume_name}-{time:%Y%m%d}",
            "force": True,
        }
        return timer_event(policy)
    exports = [
        {"volume_id": v, "os-volume_upload_image": {"image_name": f"batch-{i:04d}", "force": True}}
        for i, v in enumerate(ids)
    ]
    return {"exports": exports}


@pytest.mark.parametrize(("shape", "seed"), [("timer", 20250301), ("batch", 7)])
def test_storm_each_volume_once(shape: str, seed: int) -> None:
    """300 volumes under a seeded mix of throttling, 5xx, resets and latency: one outcome
    each, never two images of a volume, every accepted image real, concurrency bounded."""
    cloud = make_cloud()
    ids = add_volumes(cloud, VOLUMES, {"backup": "daily"})
    doomed = set(ids[::DOOMED_EVERY])
    watch = Watch(cloud, StormChooser(seed, doomed))
    settings = Settings.from_env(env(MAX_CONCURRENCY=str(MAX_CONCURRENCY)))

    with mock_cloud(cloud):
        result = handle(storm_event(shape, ids), settings, make_runtime(seed=seed))

    outcomes = export_events(result)
    per_volume = Counter(e["subject"] for e in outcomes)
    assert set(per_volume) == set(ids)
    assert max(per_volume.values()) == 1, "a volume has more than one outcome"

    images = list(cloud.ims._images.values())
    made = Counter(i.source_volume_id for i in images)
    assert max(made.values()) == 1, "a volume was exported to two images"
    names = Counter(i.name for i in images)
    assert max(names.values()) == 1

    accepted = by_type(result, "accepted")
    for event in accepted:
        image = cloud.ims._images.get(event["data"]["image_id"])
        assert image is not None, event
        assert image.source_volume_id == event["subject"]
        assert image.name == event["data"]["image_name"]

    failed = by_type(result, "failed")
    assert doomed <= {e["subject"] for e in failed}
    for event in failed:
        assert event["data"]["error"]["code"], event
        assert made[event["subject"]] == 0, (
            f"volume {event['subject']} reported failed, but the fake holds its image"
        )
    assert len(accepted) + len(failed) == VOLUMES
    assert len(accepted) >= VOLUMES - len(doomed) - 5

    assert 2 <= watch.peak <= MAX_CONCURRENCY
    faults = Counter(r.fault for r in cloud.requests)
    assert faults["status"] > 50 and faults["reset-before"] > 10 and faults["reset-after"] > 10


def one_export(vid: str, name: str) -> dict[str, Any]:
    return {"volume_id": vid, "os-volume_upload_image": {"image_name": name}}


def test_answer_lost_every_time_makes_one_image() -> None:
    """Every export attempt is processed but its answer lost: the lookup after the first one
    finds the image, so there is one image and the volume is accepted (recovered)."""
    cloud = make_cloud()
    [vid] = add_volumes(cloud, 1)
    cloud.faults.add(Fault(method="POST", path=rf"/volumes/{vid}/action$", reset="after", times=-1))
    with mock_cloud(cloud):
        result = handle(one_export(vid, "lost-answers"), Settings.from_env(env()), make_runtime())
    [image] = cloud.ims._images.values()
    [event] = export_events(result)
    assert event["type"] == "evs.export.accepted"
    assert event["data"]["image_id"] == image.id
    assert event["data"]["recovered"] is True
    exports = [r for r in cloud.requests if r.method == "POST" and r.path.endswith("/action")]
    assert len([r for r in exports if "/volumes/" in r.path]) == 1


@pytest.mark.parametrize("why", ["retries exhausted", "budget exhausted"])
def test_ambiguous_last_attempt_is_looked_up(why: str) -> None:
    """When the export's last attempt (the last allowed, or the last the budget covers) was
    processed but its answer lost, the function looks for the image before giving up: the
    volume is not reported failed while the export it asked for makes an image."""
    cloud = make_cloud()
    [vid] = add_volumes(cloud, 1)
    path = rf"/volumes/{vid}/action$"
    budget = [21_000]
    if why == "retries exhausted":
        cloud.faults.add(Fault(method="POST", path=path, status=503, times=4))

    def charge(req: Request) -> None:
        # budget case: the listing costs 1 s, the export 17 s: no time for a retry after it
        budget[0] -= 17_000 if _EXPORT_RE.match(req.path) else 1_000

    cloud.faults.add(Fault(method="POST", path=path, reset="after", times=1))
    Watch(cloud, on_request=charge if why == "budget exhausted" else None)
    runtime = make_runtime(remaining_ms=lambda: budget[0])
    with mock_cloud(cloud):
        result = handle(one_export(vid, "last-try"), Settings.from_env(env()), runtime)

    [image] = cloud.ims._images.values()
    [event] = export_events(result)
    assert event["type"] != "evs.export.failed", (
        f"reported failed ({event['data'].get('error')}) while image {image.id} of the "
        "volume exists"
    )
    # out of time, handing the volume on (its next run finds the image) is as good
    allowed = {"evs.export.accepted"} | ({"evs.export.deferred"} if why.startswith("b") else set())
    assert event["type"] in allowed
    if event["type"] == "evs.export.accepted":
        assert event["data"]["image_id"] == image.id


def test_retry_after_is_honoured() -> None:
    """A 429 with ``Retry-After: 3`` makes the function wait at least 3 s before the retry."""
    cloud = make_cloud()
    [vid] = add_volumes(cloud, 1)
    cloud.faults.add(Fault(method="POST", path=r"/volumes/.*/action$", status=429, retry_after="3"))
    sleeps: list[float] = []
    clock = [0.0]  # time passes only in the waits

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    runtime = make_runtime()
    runtime.sleep = sleep
    runtime.monotonic = lambda: clock[0]
    with mock_cloud(cloud):
        result = handle(one_export(vid, "patient"), Settings.from_env(env()), runtime)
    assert result["summary"]["accepted"] == 1
    assert max(sleeps) >= 3.0


def _limiters(monkeypatch: pytest.MonkeyPatch) -> list[Limiter]:
    made: list[Limiter] = []
    original = Limiter.__init__

    def init(self: Limiter, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Limiter, "__init__", init)
    return made


def test_sustained_throttling_slows_the_shared_limiter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch whose exports are each throttled twice: the one limiter all threads share
    counts every 429, its rate drops below the configured one, in-flight stays bounded."""
    made = _limiters(monkeypatch)
    cloud = make_cloud()
    ids = add_volumes(cloud, 40)
    export_re = re.compile(EXPORT_PATH)

    def throttle(req: Request, n: int) -> Fault | None:
        return Fault(status=429) if export_re.match(req.path) and n < 2 else None

    watch = Watch(cloud, throttle)
    settings = Settings.from_env(env(MAX_CONCURRENCY="4", MAX_REQUESTS_PER_SECOND="50"))
    event = {"exports": [one_export(v, f"throttled-{i}") for i, v in enumerate(ids)]}
    with mock_cloud(cloud):
        result = handle(event, settings, make_runtime())

    assert result["summary"]["accepted"] == 40
    [limiter] = made
    assert limiter.throttles == 80
    assert limiter.rate < limiter.max_rate == 50
    assert limiter.peak_in_flight <= 4 and watch.peak <= 4
    assert limiter.sent == len(cloud.requests)


def test_limiter_backs_off_and_recovers() -> None:
    """CloudClient over the fake: 429s answered one after another (each a fresh signal) cut
    the shared limiter's rate, never below its floor (a tenth of the configured rate), and
    pause it for Retry-After; once the 429s stop, successes win the rate back over time."""
    cloud = make_cloud()
    settings = Settings.from_env(env(MAX_REQUESTS_PER_SECOND="10"))
    sleeps: list[float] = []
    clock = [0.0]  # time passes only in the waits

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    runtime = make_runtime()
    runtime.sleep = sleep
    runtime.monotonic = lambda: clock[0]
    client = CloudClient(settings, runtime, default_transport())
    path = f"/v2/{PROJECT}/cloudvolumes/detail"
    cloud.faults.add(Fault(path=r"cloudvolumes", status=429, retry_after="2", times=-1))
    with mock_cloud(cloud):
        with pytest.raises(ApiError) as caught:
            client.call("evs", "GET", path)
        assert caught.value.http_status == 429
        limiter = client.limiter
        assert limiter.throttles == limiter.decreases == settings.max_attempts
        assert limiter.floor == 1.0 <= limiter.rate < limiter.max_rate
        # the retrier waits out Retry-After before each of the retries
        assert sum(1 for s in sleeps if s >= 2.0) >= settings.max_attempts - 1
        cloud.faults.clear()
        rates = []
        for _ in range(30):
            client.call("evs", "GET", path)
            rates.append(limiter.rate)
    assert rates == sorted(rates) and rates[0] < limiter.max_rate == rates[-1]
