"""Mode adapters: the responses mock, the HTTP server's control routes, the CLI, concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
import responses

import fakecloud
from fakecloud import FakeCloud, mock_cloud, serve
from tests.contract.conftest import AK, PROJECT, SK, Client

ROOT = Path(__file__).resolve().parents[2]


@mock_cloud(ak=AK, sk=SK, project_id=PROJECT)
def test_decorator_form() -> None:
    """As a decorator, mock_cloud exposes its cloud through fakecloud.current()."""
    cloud = fakecloud.current()
    cloud.evs.add_volume("vol-1")
    with requests.Session() as session:
        response = Client(cloud, "mock", session).evs("GET", "cloudvolumes/vol-1")
    assert response.json()["volume"]["id"] == "vol-1"


def test_current_outside_mock() -> None:
    """current() outside any mock_cloud raises RuntimeError."""
    with pytest.raises(RuntimeError):
        fakecloud.current()


def test_base_urls_and_passthrough(cloud: FakeCloud) -> None:
    """Extra base URLs are served; other URLs get responses' ConnectionError."""
    with mock_cloud(cloud, base_urls=["http://fakecloud.test"]), requests.Session() as s:
        client = Client(cloud, "mock", s, "http://fakecloud.test")
        assert client.call("GET", "/v2/cloudimages", service="ims").status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            s.get("https://example.com/")
    assert cloud.requests[-1].service == "ims"


def test_shared_requests_mock(cloud: FakeCloud) -> None:
    """With requests_mock, the routes join an existing RequestsMock and leave it on exit."""
    with responses.RequestsMock() as rsps, requests.Session() as s:
        rsps.add(responses.POST, "https://hooks.example.com/result", status=204)
        with mock_cloud(cloud, requests_mock=rsps):
            assert Client(cloud, "mock", s).images().status_code == 200
            assert s.post("https://hooks.example.com/result").status_code == 204
        with pytest.raises(requests.exceptions.ConnectionError):
            Client(cloud, "mock", s).images()


def test_unknown_route(client: Client) -> None:
    """An unknown path or method is 404 APIGW.0101, before any signature check."""
    for method, path in (("GET", "/v3/nothing"), ("PUT", f"/v2/{PROJECT}/cloudvolumes/x")):
        response = client.call(method, path, sign_as=("AKOTHER", "x"))
        assert response.status_code == 404
        assert response.json()["error_code"] == "APIGW.0101"


def test_service_host_must_match(cloud: FakeCloud) -> None:
    """On the real endpoints an IMS path sent to the EVS host is 404 (wrong endpoint)."""
    with mock_cloud(cloud), requests.Session() as s:
        client = Client(cloud, "mock", s)
        assert client.call("GET", "/v2/cloudimages", service="evs").status_code == 404
        assert client.call("GET", "/v2/cloudimages", service="ims").status_code == 200


def test_concurrent_exports(client: Client) -> None:
    """Sixteen concurrent exports of sixteen volumes make sixteen images, none lost."""
    client.cloud.ims.set_progress("polls", after=1)
    for n in range(16):
        client.cloud.evs.add_volume(f"v{n}")
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda n: client.export(f"v{n}", f"img-{n}").status_code, range(16)))
    assert codes == [202] * 16
    assert sorted(i.name for i in client.cloud.ims.images.values()) == sorted(
        f"img-{n}" for n in range(16)
    )
    assert len(client.cloud.requests) == 16


def test_control_routes(cloud: FakeCloud) -> None:
    """Server control routes seed, inspect, inject faults, set progress and reset, unsigned."""
    with serve(cloud) as server, requests.Session() as s:
        seed = {
            "volumes": [
                {
                    "id": "vol-1",
                    "name": "d",
                    "status": "available",
                    "size": 5,
                    "bootable": False,
                    "tags": {},
                    "attachments": [],
                }
            ],
            "servers": [],
            "images": [],
        }
        assert s.post(f"{server.url}/_fake/seed", json=seed).status_code == 200
        progress = {"mode": "polls", "after": 2, "outcomes": {"doomed": "killed"}}
        assert s.post(f"{server.url}/_fake/progress", json=progress).json()["mode"] == "polls"
        fault = {"method": "POST", "path": "/action$", "status": 503, "retry_after": "1"}
        assert s.post(f"{server.url}/_fake/faults", json=fault).status_code == 201
        client = Client(cloud, "server", s, server.url)
        assert client.export("vol-1", "doomed").status_code == 503
        assert client.export("vol-1", "doomed").status_code == 202
        state = s.get(f"{server.url}/_fake/state").json()
        assert [v["status"] for v in state["volumes"]] == ["uploading"]
        assert [(i["name"], i["status"]) for i in state["images"]] == [("doomed", "queued")]
        assert [r["status"] for r in state["requests"] if r["service"] == "evs"] == [503, 202]
        assert state["progress"]["outcomes"] == {"doomed": "killed"}
        s.post(
            f"{server.url}/_fake/faults", json={"path": "cloudimages", "status": 429, "times": -1}
        )
        assert client.images().status_code == 429
        assert s.delete(f"{server.url}/_fake/faults").status_code == 200
        assert client.images().status_code == 200
        assert s.post(f"{server.url}/_fake/faults", json={"bogus": 1}).status_code == 400
        assert s.post(f"{server.url}/_fake/reset").status_code == 200
        state = s.get(f"{server.url}/_fake/state").json()
        assert (state["volumes"], state["images"], state["faults"]) == ([], [], [])
        assert s.get(f"{server.url}/_fake/nothing").status_code == 404


def test_cli_serves_seed(tmp_path: Path) -> None:
    """`python -m fakecloud --port 0 --seed FILE` prints its URL and answers signed requests."""
    seed = {
        "volumes": [
            {
                "id": "vol-1",
                "name": "d",
                "status": "available",
                "size": 5,
                "bootable": False,
                "tags": {},
                "attachments": [],
            }
        ]
    }
    (tmp_path / "seed.json").write_text(json.dumps(seed))
    env = {
        **os.environ,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("HUAWEICLOUD_SDK_SECURITY_TOKEN", None)
    cmd = [sys.executable, "-m", "fakecloud", "--port", "0", "--seed", str(tmp_path / "seed.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("fakecloud listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        real = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, clock=lambda: datetime.now(timezone.utc))
        with requests.Session() as s:
            response = Client(real, "server", s, url).evs("GET", "cloudvolumes/vol-1")
            assert response.status_code == 200
            assert response.json()["volume"]["size"] == 5
            bad = Client(real, "server", s, url).evs("GET", "cloudvolumes/vol-1", sign_as=(AK, "x"))
            assert bad.status_code == 401
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_cli_requires_credentials() -> None:
    """Without AK/SK/project the CLI exits with a usage error naming the variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUAWEICLOUD_SDK_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "fakecloud", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "HUAWEICLOUD_SDK_AK" in proc.stderr


def test_fake_imports_neither_function_nor_sdk() -> None:
    """Importing and running fakecloud loads no function, handler or huaweicloudsdk module."""
    code = (
        "import sys, fakecloud, fakecloud.__main__\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('function', 'handler', 'huaweicloudsdkcore', 'huaweicloudsdkevs')]\n"
        "print(bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_seed_rejects_unknown_keys(cloud: FakeCloud) -> None:
    """load_seed refuses a seed with keys other than volumes, servers and images."""
    with pytest.raises(ValueError, match="snapshots"):
        cloud.load_seed({"snapshots": []})
