"""Throttling and fault bursts: a burst's victims wait their turn instead of failing, a
throttling window longer than an invocation ends with every volume exported once across the
continuation chain, and an export that may have made an image is looked up, never resent
blindly, in this invocation or the next."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from fakecloud import FakeCloud, Fault, mock_cloud
from fakecloud.base import Request
from fakecloud.core import RecordedRequest
from fakecloud.faults import storm
from function.app import handle
from function.cloud.client import CloudClient
from function.cloud.evs import EvsClient
from function.cloud.ims import ImsClient
from function.cloud.records import Accepted
from function.cloud.transport import default_transport
from function.config import Settings
from function.exporter import Exporter
from function.model import ACTION_KEY, UploadOptions
from function.triggers.continuation import KEY, MAX_HOPS
from function.work import ExportOrder
from tests.resilience import (
    EXPORT_PATH,
    Watch,
    add_volumes,
    by_type,
    env,
    export_events,
    log_stream,  # noqa: F401 - a fixture
    make_cloud,
    make_runtime,
)

pytestmark = pytest.mark.usefixtures("log_stream")

_EXPORT_RE = re.compile(EXPORT_PATH)


def is_export(req: Request | RecordedRequest) -> bool:
    """Whether a request (arriving, or recorded by the fake) is an export POST."""
    return req.method == "POST" and _EXPORT_RE.match(req.path) is not None


def batch(ids: list[str], prefix: str) -> dict[str, Any]:
    exports = [
        {"volume_id": v, "os-volume_upload_image": {"image_name": f"{prefix}-{i:04d}"}}
        for i, v in enumerate(ids)
    ]
    return {"exports": exports}


def storm_faults(seed: int) -> list[Fault]:
    """The issue's storm of 65 faults, in a seeded order (``fakecloud.faults.storm``)."""
    return storm(seed)


class Burst:
    """Answers the export POSTs numbered ``start`` to ``start + len(faults) - 1`` (in the
    order the fake receives them) with the faults, one each: a storm over consecutive
    requests, whichever volumes they belong to."""

    def __init__(self, faults: list[Fault], start: int) -> None:
        self.faults = faults
        self.start = start
        self.exports = 0
        self._lock = threading.Lock()

    def __call__(self, req: Request, _n: int) -> Fault | None:
        if not is_export(req):
            return None
        with self._lock:
            k = self.exports - self.start
            self.exports += 1
        return self.faults[k] if 0 <= k < len(self.faults) else None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_storm_victims_wait_their_turn(seed: int) -> None:
    """The issue's storm (65 faults: 20x429, 20x503, 10x500, 15 resets) over 300 volumes:
    every volume ends accepted, once, and the fake holds exactly 300 images, one per volume."""
    cloud = make_cloud()
    ids = add_volumes(cloud, 300)
    burst = Burst(storm_faults(seed), start=40)
    Watch(cloud, burst)
    settings = Settings.from_env(env(MAX_CONCURRENCY="8"))
    with mock_cloud(cloud):
        result = handle(batch(ids, "storm"), settings, make_runtime(seed=seed))

    faulted = [r for r in cloud.requests if r.fault and _EXPORT_RE.match(r.path)]
    assert len(faulted) == 65
    assert result["summary"] == {"accepted": 300, "rejected": 0, "failed": 0, "skipped": 0}
    assert Counter(e["subject"] for e in export_events(result)) == Counter(ids)
    images = list(cloud.ims._images.values())
    assert len(images) == 300
    assert Counter(i.source_volume_id for i in images) == Counter(ids)
    for event in by_type(result, "accepted"):
        assert cloud.ims._images[event["data"]["image_id"]].source_volume_id == event["subject"]


def test_victims_are_retried_after_the_others() -> None:
    """A volume whose first attempt meets a 503 is sent again only after every other volume
    of the batch has had its first attempt (back of the queue, not an immediate retry)."""
    cloud = make_cloud()
    ids = add_volumes(cloud, 20)
    victim = ids[0]
    cloud.faults.add(Fault(method="POST", path=rf"/volumes/{victim}/action$", status=503))
    settings = Settings.from_env(env(MAX_CONCURRENCY="1"))
    with mock_cloud(cloud):
        result = handle(batch(ids, "turn"), settings, make_runtime())

    assert result["summary"]["accepted"] == 20
    order = [r.path.split("/")[-2] for r in cloud.requests if is_export(r)]
    assert order[0] == victim and order[-1] == victim
    assert order[1:-1] == ids[1:]


def test_persistent_5xx_fails_after_max_attempts() -> None:
    """A volume whose every attempt meets a 503 ends failed after exactly max_attempts
    attempts, requeued in between; the others are accepted."""
    cloud = make_cloud()
    ids = add_volumes(cloud, 5)
    doomed = ids[2]
    cloud.faults.add(Fault(method="POST", path=rf"/volumes/{doomed}/action$", status=503, times=-1))
    settings = Settings.from_env(env(MAX_CONCURRENCY="2"))
    with mock_cloud(cloud):
        result = handle(batch(ids, "doomed"), settings, make_runtime())

    [failed] = by_type(result, "failed")
    assert failed["subject"] == doomed
    assert failed["data"]["error"]["http_status"] == 503
    assert result["summary"]["accepted"] == 4
    attempts = [r for r in cloud.requests if is_export(r) and doomed in r.path]
    assert len(attempts) == settings.max_attempts


def test_429s_do_not_spend_attempts() -> None:
    """A volume throttled more times than max_attempts is still exported: a 429 asks the
    function to slow down, it is not the volume failing."""
    cloud = make_cloud()
    [vid] = add_volumes(cloud, 1)
    settings = Settings.from_env(env())
    cloud.faults.add(
        Fault(
            method="POST",
            path=rf"/volumes/{vid}/action$",
            status=429,
            times=settings.max_attempts + 3,
        )
    )
    with mock_cloud(cloud):
        result = handle(batch([vid], "patient"), settings, make_runtime())
    assert result["summary"]["accepted"] == 1
    assert len([r for r in cloud.requests if is_export(r)]) == settings.max_attempts + 4


# --- ambiguity across requeues and continuations -------------------------------------------


def test_ambiguous_attempt_is_looked_up_before_resending() -> None:
    """After a reset once the export was sent, the requeued attempt first asks IMS: the image
    the lost answer was about is found, nothing is resent, one image."""
    cloud = make_cloud()
    ids = add_volumes(cloud, 3)
    cloud.faults.add(Fault(method="POST", path=rf"/volumes/{ids[1]}/action$", reset="after"))
    with mock_cloud(cloud):
        result = handle(batch(ids, "amb"), Settings.from_env(env()), make_runtime())
    assert result["summary"]["accepted"] == 3
    [event] = [e for e in by_type(result, "accepted") if e["subject"] == ids[1]]
    assert event["data"]["recovered"] is True
    assert len([r for r in cloud.requests if is_export(r) and ids[1] in r.path]) == 1
    assert Counter(i.source_volume_id for i in cloud.ims._images.values()) == Counter(ids)


class Clock:
    """Virtual time for a chain of invocations: sleeps and requests advance it; each
    invocation's budget counts down from its start."""

    def __init__(self, request_ms: float) -> None:
        self.now = 0.0
        self.request_s = request_ms / 1000
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)

    def charge(self, _req: Request) -> None:
        self.sleep(self.request_s)

    def budget(self, ms: int) -> Callable[[], int]:
        """An invocation's remaining time, counting down from now."""
        start = self.now
        return lambda: int(ms - (self.now - start) * 1000)


def run_chain(
    cloud: FakeCloud, clock: Clock, event: dict[str, Any], budget_ms: int, settings: Settings
) -> list[dict[str, Any]]:
    """Run ``event`` and every continuation it hands on, each with a fresh budget."""
    results: list[dict[str, Any]] = []
    while True:
        runtime = make_runtime(clock.budget(budget_ms), seed=len(results) + 1)
        runtime.sleep = clock.sleep
        runtime.monotonic = lambda: clock.now
        result = handle(event, settings, runtime)
        assert runtime.remaining_ms() > 0, "the invocation overran its budget"
        results.append(result)
        invocations = cloud.functiongraph.invocations
        if len(invocations) < len(results):
            return results
        assert len(results) <= MAX_HOPS
        event = invocations[-1]["body"]


def test_throttling_window_longer_than_an_invocation() -> None:
    """A 5-minute window in which every export is answered 429, against 90-second
    invocations: each invocation hands the throttled volumes on (deferred, not failed), and
    after the window the chain exports every volume once, within the hop limit."""
    cloud = make_cloud()
    ids = add_volumes(cloud, 30)
    clock = Clock(request_ms=50)
    window_s = 300.0

    def throttle(req: Request, _n: int) -> Fault | None:
        return Fault(status=429) if is_export(req) and clock.now < window_s else None

    Watch(cloud, throttle, on_request=clock.charge)
    settings = Settings.from_env(env(MAX_CONCURRENCY="4", MAX_REQUESTS_PER_SECOND="10"))
    with mock_cloud(cloud):
        results = run_chain(cloud, clock, batch(ids, "window"), 90_000, settings)

    assert clock.now > window_s
    assert 2 < len(results) <= MAX_HOPS
    finals: Counter[str] = Counter()
    for result in results:
        assert not by_type(result, "failed") and not by_type(result, "rejected")
        finals.update(e["subject"] for e in by_type(result, "accepted"))
    assert finals == Counter(ids)
    for result in results[:-1]:
        assert by_type(result, "deferred")
    assert Counter(i.source_volume_id for i in cloud.ims._images.values()) == Counter(ids)
    throttled = [r for r in cloud.requests if is_export(r) and r.status == 429]
    assert len(throttled) > len(ids)


def test_ambiguity_travels_in_the_continuation() -> None:
    """An export whose answer was lost just before the budget ran out is handed on marked
    ambiguous with its attempt counted; the next invocation looks the image up instead of
    resending: one image, reported accepted (recovered)."""
    cloud = make_cloud()
    ids = add_volumes(cloud, 4)
    clock = Clock(request_ms=10)
    slow = ids[-1]  # the others go first

    def charge(req: Request) -> None:
        clock.charge(req)
        if is_export(req) and slow in req.path and not cloud.functiongraph.invocations:
            clock.sleep(25.0)  # the lost answer took most of the first budget

    cloud.faults.add(Fault(method="POST", path=rf"/volumes/{slow}/action$", reset="after"))
    Watch(cloud, on_request=charge)
    settings = Settings.from_env(env(MAX_CONCURRENCY="1"))
    with mock_cloud(cloud):
        results = run_chain(cloud, clock, batch(ids, "carry"), 30_000, settings)

    first, second = results
    [deferred] = by_type(first, "deferred")
    assert deferred["subject"] == slow
    [order] = cloud.functiongraph.invocations[0]["body"][KEY]["orders"]
    assert order["volume_id"] == slow
    assert order["ambiguous"] is True and order["attempts"] == 1
    [accepted] = by_type(second, "accepted")
    assert accepted["subject"] == slow and accepted["data"]["recovered"] is True
    assert not by_type(second, "skipped")
    assert len([r for r in cloud.requests if is_export(r) and slow in r.path]) == 1
    assert Counter(i.source_volume_id for i in cloud.ims._images.values()) == Counter(ids)


def test_a_bug_after_accept_rises_instead_of_hanging() -> None:
    """An unexpected exception in one worker is not requeued and does not leave the other
    workers waiting: it rises out of the exporter, as before the work queue."""
    cloud = make_cloud()
    ids = add_volumes(cloud, 6)
    settings = Settings.from_env(env(MAX_CONCURRENCY="3"))
    runtime = make_runtime()

    def boom(_order: ExportOrder, _accepted: Accepted) -> None:
        raise RuntimeError("a bug")

    orders = [ExportOrder(v, UploadOptions(f"bug-{i}")) for i, v in enumerate(ids)]
    with mock_cloud(cloud):
        client = CloudClient(settings, runtime, default_transport())
        exporter = Exporter(EvsClient(client), ImsClient(client), 3, runtime, after_accept=boom)
        with pytest.raises(RuntimeError, match="a bug"):
            exporter.run(orders)


def test_ambiguous_order_at_the_hop_limit_is_looked_up() -> None:
    """At the hop limit an ambiguous order the budget does not cover is not reported failed
    while the image its earlier attempt made exists: the last look finds it (accepted,
    recovered), and nothing is sent."""
    cloud = make_cloud()
    [vid] = add_volumes(cloud, 1)
    with mock_cloud(cloud):
        handle(batch([vid], "limit"), Settings.from_env(env()), make_runtime())
        [image] = cloud.ims._images.values()
        sent_before = len([r for r in cloud.requests if is_export(r)])
        event = {
            KEY: {
                "hop": MAX_HOPS,
                "trigger": "direct",
                "orders": [
                    {
                        "volume_id": vid,
                        "body": {ACTION_KEY: {"image_name": image.name}},
                        "attempts": 1,
                        "ambiguous": True,
                    }
                ],
            }
        }
        result = handle(event, Settings.from_env(env()), make_runtime(lambda: 2_500))

    [outcome] = export_events(result)
    assert outcome["type"] == "evs.export.accepted"
    assert outcome["data"]["image_id"] == image.id and outcome["data"]["recovered"] is True
    assert len([r for r in cloud.requests if is_export(r)]) == sent_before
    assert len(cloud.ims._images) == 1
