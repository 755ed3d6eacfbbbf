"""Server mode end to end: ``python -m fakecloud`` in a subprocess on 127.0.0.1, and the
function driving it over real HTTP through its production transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from function.app import handle, invoke
from function.config import Settings
from tests.harness import (
    AK,
    FAULT_EXPORT_PATH,
    PROJECT,
    SEED_FILE,
    SK,
    VOLUME,
    VOLUME_IN_USE,
    export_event,
    fake_state,
    fakecloud_process,
    http_session,
    quick_runtime,
    reset_logging,
    seed_event,
)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts and ends with structlog, its context and the redactor reset."""
    reset_logging()
    yield
    reset_logging()


@pytest.fixture(scope="module")
def fakecloud_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a ``python -m fakecloud --port 0 --seed FILE`` subprocess."""
    with fakecloud_process(tmp_path_factory.mktemp("fakecloud-server")) as url:
        yield url


@pytest.fixture
def fake_url(fakecloud_url: str) -> str:
    """The server's URL after a reset and a fresh seed (control routes, unsigned)."""
    with http_session() as session:
        assert session.post(f"{fakecloud_url}/_fake/reset", timeout=5).status_code == 200
        seeded = session.post(f"{fakecloud_url}/_fake/seed", json=SEED_FILE, timeout=5)
        assert seeded.status_code == 200, seeded.text
    return fakecloud_url


def server_env(url: str) -> dict[str, str]:
    """Every endpoint pointed at the fake server; no REGION needed."""
    env = {"PROJECT_ID": PROJECT, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
    for service in ("EVS", "IMS", "ECS", "SMN", "FUNCTIONGRAPH"):
        env[f"{service}_ENDPOINT"] = url
    return env


def test_seed_example_over_http_is_accepted_and_the_image_exists(fake_url: str) -> None:
    """The seed's example against the HTTP fake is accepted, and its state shows the image."""
    result = invoke(seed_event(), None, env=server_env(fake_url))

    events = result["results"]
    assert len(events) == 1
    event = events[0]
    assert event["type"] == "evs.export.accepted", event
    data = event["data"]
    assert data["volume_id"] == VOLUME
    assert data["image_name"] == "sxmatch2"
    assert data["status"] == "uploading"
    assert data["size_gb"] == 40
    assert isinstance(data["request_id"], str) and data["request_id"]
    assert result["summary"] == {"accepted": 1, "rejected": 0, "failed": 0, "skipped": 0}

    with http_session() as session:
        state = fake_state(session, fake_url)
    images: list[dict[str, Any]] = [i for i in state["images"] if i["name"] == "sxmatch2"]
    assert [i["id"] for i in images] == [data["image_id"]]
    image = images[0]
    assert image["__data_origin"] == f"volume,{VOLUME}"
    assert image["disk_format"] == "vhd"
    assert image["container_format"] == "bare"
    assert image["min_disk"] == 40
    assert "evs-export.managed" in image["tags"]
    exports = [
        r
        for r in state["requests"]
        if r["method"] == "POST" and r["path"] == f"/v2/{PROJECT}/volumes/{VOLUME}/action"
    ]
    assert [r["status"] for r in exports] == [202]


def test_refusal_over_http_is_rejected_with_the_api_code(fake_url: str) -> None:
    """An in-use volume without force, over HTTP, ends rejected with EVS.5400 (400)."""
    event = export_event(VOLUME_IN_USE, image_name="server-mode-in-use")
    result = invoke(event, None, env=server_env(fake_url))

    out = result["results"][0]
    assert out["type"] == "evs.export.rejected"
    assert out["data"]["error"]["http_status"] == 400
    assert out["data"]["error"]["code"] == "EVS.5400"
    with http_session() as session:
        state = fake_state(session, fake_url)
    assert "server-mode-in-use" not in [i["name"] for i in state["images"]]


@pytest.mark.parametrize("when", ["after", "before"])
def test_connection_reset_over_tcp_ends_in_one_image(fake_url: str, when: str) -> None:
    """A TCP reset of the export, after or before the server processed it, ends in one
    image: recovered by the IMS lookup (after), or sent once more (before)."""
    fault = {"method": "POST", "path": FAULT_EXPORT_PATH, "reset": when, "times": 1}
    with http_session() as session:
        added = session.post(f"{fake_url}/_fake/faults", json=fault, timeout=5)
        assert added.status_code == 201, added.text
    event = export_event(VOLUME, image_name=f"server-reset-{when}", disk_format="qcow2")
    result = handle(event, Settings.from_env(server_env(fake_url)), quick_runtime())

    out = result["results"][0]
    assert out["type"] == "evs.export.accepted", out
    assert out["data"].get("recovered", False) is (when == "after")
    with http_session() as session:
        state = fake_state(session, fake_url)
    assert [i["id"] for i in state["images"]] == [out["data"]["image_id"]]
    exports = [
        (r["status"], r["fault"])
        for r in state["requests"]
        if r["method"] == "POST" and r["path"] == f"/v2/{PROJECT}/volumes/{VOLUME}/action"
    ]
    if when == "after":
        assert exports == [(202, "reset-after")]
    else:
        assert exports == [(0, "reset-before"), (202, None)]
