"""function/exporter.py: the queue of export orders over the test transport
(``function.testing.MockTransport``): requeue after transient faults, attempts and
throttles counted apart, ambiguity remembered, and deferral when the budget runs out."""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import urlsplit

from function.cloud.client import CloudClient
from function.cloud.evs import EvsClient
from function.cloud.ims import ImsClient
from function.cloud.transport import HttpResponse
from function.errors import TransportError
from function.exporter import THROTTLES_PER_INVOCATION, Exporter
from function.model import ACTION_KEY, UploadOptions
from function.runtime import Runtime
from function.testing import MockTransport, Sent, response
from function.work import ExportOrder, Outcome
from tests.unit.fakes import IMAGE, START, VOLUME, VOLUME_2, FakeTime, make_runtime, make_settings

Answer = HttpResponse | TransportError


def accepted(req: Sent) -> HttpResponse:
    """The export's 202 for the volume and name of ``req``."""
    volume = urlsplit(req.url).path.split("/")[-2]
    name = json.loads(req.body)[ACTION_KEY]["image_name"]
    body = {
        ACTION_KEY: {
            "status": "uploading",
            "size": 40,
            "id": volume,
            "image_id": IMAGE,
            "image_name": name,
            "container_format": "bare",
            "disk_format": "vhd",
        }
    }
    return response(202, body, {"X-Request-Id": "req-202"})


class Cloud:
    """Per volume, a script of answers to its export (then 202s); IMS lists ``images``."""

    def __init__(self, scripts: dict[str, list[Answer]], images: list[dict[str, object]]) -> None:
        self.scripts = scripts
        self.images = images
        self.transport = MockTransport(self.route)

    def route(self, req: Sent) -> Answer:
        path = urlsplit(req.url).path
        if req.method == "GET" and path == "/v2/cloudimages":
            return response(200, {"images": self.images})
        volume = path.split("/")[-2]
        script = self.scripts.get(volume, [])
        return script.pop(0) if script else accepted(req)

    def exports(self) -> list[str]:
        """The volume of each export request, in the order sent."""
        return [
            urlsplit(s.url).path.split("/")[-2] for s in self.transport.sent if s.method == "POST"
        ]

    def lookups(self) -> int:
        return sum(1 for s in self.transport.sent if s.method == "GET")


def runtime(fake: FakeTime) -> Runtime:
    """A runtime whose monotonic clock is the fake's, so backoffs pass when it sleeps."""
    return dataclasses.replace(
        make_runtime(fake), monotonic=lambda: (fake.now - START).total_seconds()
    )


def exporter(cloud: Cloud, fake: FakeTime | None = None, max_attempts: int = 5) -> Exporter:
    rt = runtime(fake or FakeTime())
    client = CloudClient(make_settings(), rt, cloud.transport)
    return Exporter(EvsClient(client), ImsClient(client), 1, rt, max_attempts=max_attempts)


def order(volume: str, name: str) -> ExportOrder:
    return ExportOrder(volume, UploadOptions(name))


def kinds(outcomes: list[Outcome]) -> list[tuple[str, str | None]]:
    return [(o.kind, o.volume_id) for o in outcomes]


def fault(status: int, retry_after: str | None = None) -> HttpResponse:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return response(status, {"error": {"code": f"EVS.{status}", "message": "x"}}, headers)


def test_transient_fault_goes_to_the_back_of_the_queue() -> None:
    """A 503 sends its order behind the others; it is retried after them and accepted."""
    cloud = Cloud({VOLUME: [fault(503)]}, [])
    ex = exporter(cloud)
    outcomes = ex.run([order(VOLUME, "a"), order(VOLUME_2, "b")])
    assert kinds(outcomes) == [("accepted", VOLUME), ("accepted", VOLUME_2)]
    assert cloud.exports() == [VOLUME, VOLUME_2, VOLUME]
    assert ex.requeued == 1


def test_attempts_are_spent_by_faults_and_end_failed() -> None:
    """An order failing max_attempts times with 5xx ends failed after that many requests."""
    cloud = Cloud({VOLUME: [fault(500)] * 3}, [])
    [outcome] = exporter(cloud, max_attempts=3).run([order(VOLUME, "a")])
    assert outcome.kind == "failed"
    assert outcome.error is not None and outcome.error.http_status == 500
    assert cloud.exports() == [VOLUME] * 3


def test_throttling_spends_no_attempt() -> None:
    """429s do not count as attempts: three of them with max_attempts 2 still end accepted."""
    cloud = Cloud({VOLUME: [fault(429, "1")] * 3}, [])
    [outcome] = exporter(cloud, max_attempts=2).run([order(VOLUME, "a")])
    assert outcome.kind == "accepted"
    assert cloud.exports() == [VOLUME] * 4


def test_too_many_throttles_hand_the_order_on() -> None:
    """An order throttled THROTTLES_PER_INVOCATION times is deferred, its attempts kept."""
    cloud = Cloud({VOLUME: [fault(429)] * THROTTLES_PER_INVOCATION}, [])
    [outcome] = exporter(cloud).run([order(VOLUME, "a")])
    assert outcome.kind == "deferred"
    assert outcome.order is not None and outcome.order.attempts == 0
    assert len(cloud.exports()) == THROTTLES_PER_INVOCATION


def test_permanent_error_is_not_retried() -> None:
    """A 400 ends the order rejected after one request."""
    cloud = Cloud({VOLUME: [fault(400)]}, [])
    [outcome] = exporter(cloud).run([order(VOLUME, "a")])
    assert outcome.kind == "rejected"
    assert cloud.exports() == [VOLUME]


def test_after_an_ambiguous_failure_ims_is_asked_before_resending() -> None:
    """After a read timeout the retry first looks the image up by name; found, it is the
    accepted outcome (recovered) and no second export is sent."""
    timeout = TransportError("ReadTimeout", "no answer in time", maybe_sent=True)
    image = {"id": IMAGE, "name": "a", "status": "queued", "min_disk": 40}
    cloud = Cloud({VOLUME: [timeout]}, [image])
    [outcome] = exporter(cloud).run([order(VOLUME, "a")])
    assert outcome.kind == "accepted"
    assert outcome.accepted is not None and outcome.accepted.recovered
    assert cloud.exports() == [VOLUME]
    assert cloud.lookups() == 1


def test_unambiguous_failure_resends_without_looking() -> None:
    """A refused connection (never sent) is retried without an IMS lookup."""
    refused = TransportError("ConnectionRefused", "refused", maybe_sent=False)
    cloud = Cloud({VOLUME: [refused]}, [])
    [outcome] = exporter(cloud).run([order(VOLUME, "a")])
    assert outcome.kind == "accepted"
    assert cloud.exports() == [VOLUME, VOLUME]
    assert cloud.lookups() == 0


def test_no_budget_defers_every_order_without_a_request() -> None:
    """When the remaining time does not cover an export and the reserve, orders are deferred
    carrying their attempts and ambiguity, and nothing is sent."""
    cloud = Cloud({}, [])
    carried = dataclasses.replace(order(VOLUME, "a"), attempts=2, ambiguous=True)
    outcomes = exporter(cloud, FakeTime(budget_ms=100)).run([carried, order(VOLUME_2, "b")])
    assert kinds(outcomes) == [("deferred", VOLUME), ("deferred", VOLUME_2)]
    assert outcomes[0].order is not None
    assert (outcomes[0].order.attempts, outcomes[0].order.ambiguous) == (2, True)
    assert cloud.transport.sent == []
