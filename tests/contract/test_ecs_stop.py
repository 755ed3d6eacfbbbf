"""ECS stops are asynchronous (PLATFORM.md 10.4): ACTIVE, SHUTOFF on the fake clock or never."""

from __future__ import annotations

import pytest
import requests

from fakecloud import FakeCloud, ManualClock, serve
from tests.contract.conftest import PROJECT, Client


def status(client: Client, server_id: str = "srv-1") -> str:
    """The server's status as GET /v1/{project}/cloudservers/{id} reports it."""
    response = client.call("GET", f"/v1/{PROJECT}/cloudservers/{server_id}", service="ecs")
    assert response.status_code == 200, response.text
    return str(response.json()["server"]["status"])


def test_stop_completes_after_delay(client: Client, clock: ManualClock) -> None:
    """A stop with after=5 reads ACTIVE until 5 s of the fake clock have passed, then SHUTOFF."""
    client.cloud.ecs.add_server("srv-1")
    client.cloud.ecs.stop_server("srv-1", after=5)
    assert status(client) == "ACTIVE"
    clock.advance(4.9)
    assert status(client) == "ACTIVE"
    clock.advance(0.1)
    assert status(client) == "SHUTOFF"
    clock.advance(3600)
    assert status(client) == "SHUTOFF"


def test_stop_at_once(client: Client) -> None:
    """A stop with after=0 reads SHUTOFF at once."""
    client.cloud.ecs.add_server("srv-1")
    client.cloud.ecs.stop_server("srv-1", after=0)
    assert status(client) == "SHUTOFF"


def test_failed_stop_stays_active(client: Client, clock: ManualClock) -> None:
    """A stop with after=None fails: the server stays ACTIVE however long one waits."""
    client.cloud.ecs.add_server("srv-1")
    client.cloud.ecs.stop_server("srv-1", after=None)
    clock.advance(86400 * 30)
    assert status(client) == "ACTIVE"


def test_seeded_stopping_server(client: Client, clock: ManualClock) -> None:
    """A seed's `stops_after` starts the stop at seeding time; null or absent is not stopping."""
    client.cloud.load_seed(
        {
            "servers": [
                {"id": "srv-1", "name": "web", "stops_after": 5},
                {"id": "srv-2", "stops_after": None},
                {"id": "srv-3"},
            ]
        }
    )
    assert [status(client, s) for s in ("srv-1", "srv-2", "srv-3")] == ["ACTIVE"] * 3
    clock.advance(5)
    assert [status(client, s) for s in ("srv-1", "srv-2", "srv-3")] == [
        "SHUTOFF",
        "ACTIVE",
        "ACTIVE",
    ]
    assert [s["status"] for s in client.cloud.state()["servers"]] == [
        "SHUTOFF",
        "ACTIVE",
        "ACTIVE",
    ]


def test_stop_refusals(cloud: FakeCloud) -> None:
    """Stopping an unknown, non-ACTIVE or negatively delayed server, or seeding one, is refused."""
    cloud.ecs.add_server("off", status="SHUTOFF")
    cloud.ecs.add_server("on")
    with pytest.raises(KeyError):
        cloud.ecs.stop_server("nope", after=1)
    with pytest.raises(ValueError, match="not ACTIVE"):
        cloud.ecs.stop_server("off", after=1)
    with pytest.raises(ValueError, match=">= 0"):
        cloud.ecs.stop_server("on", after=-1)
    with pytest.raises(ValueError, match="only an ACTIVE server"):
        cloud.load_seed({"servers": [{"id": "x", "status": "SHUTOFF", "stops_after": 5}]})
    for bad in (-1, "5", True):
        with pytest.raises(ValueError, match="stops_after"):
            cloud.load_seed({"servers": [{"id": "y", "stops_after": bad}]})
    assert set(cloud.ecs.servers) == {"off", "on"}


def test_stop_control_route(cloud: FakeCloud, clock: ManualClock) -> None:
    """Server mode: POST /_fake/servers/{id}/stop {"after": s|null} starts a stop, unsigned."""
    cloud.ecs.add_server("srv-1")
    cloud.ecs.add_server("srv-2")
    with serve(cloud) as server, requests.Session() as s:
        client = Client(cloud, "server", s, server.url)
        answer = s.post(f"{server.url}/_fake/servers/srv-1/stop", json={"after": 10})
        assert answer.status_code == 200
        assert answer.json()["server"]["status"] == "ACTIVE"
        assert s.post(f"{server.url}/_fake/servers/srv-2/stop", json={"after": None}).ok
        s.post(f"{server.url}/_fake/clock", json={"advance": 10})
        assert (status(client, "srv-1"), status(client, "srv-2")) == ("SHUTOFF", "ACTIVE")
        for body in ({}, {"after": "5"}, {"after": True}, {"after": 1, "x": 2}):
            assert s.post(f"{server.url}/_fake/servers/srv-2/stop", json=body).status_code == 400
        assert s.post(f"{server.url}/_fake/servers/nope/stop", json={"after": 1}).status_code == 400
