"""IMS in a second region: replication jobs, sharing, seeds and endpoints (issue 12, item 7).

Sources: PLATFORM.md 10.8, ims_03_0628 (CopyImageCrossRegion), the huaweicloudsdkims 3.1.219
models named in fakecloud.ims.copy_models. Every contract test runs in-process and over 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from fakecloud import FakeCloud, mock_cloud, serve
from tests.contract.conftest import AK, PROJECT, REGION, SK, Client

ROOT = Path(__file__).resolve().parents[2]

TARGET, TARGET_PROJECT = "cn-east-3", "fedcba9876543210fedcba9876543210"
SMALL, SMALL_PROJECT = "ap-southeast-1", "11111111111111111111111111111111"
MEMBER = "22222222222222222222222222222222"


@dataclass
class Pair:
    """Clients for the home region and for the target region of the same cloud."""

    home: Client
    target: Client

    @property
    def cloud(self) -> FakeCloud:
        return self.home.cloud

    def copy(self, image_id: str, **body: Any) -> requests.Response:
        """POST /v1/cloudimages/{image_id}/cross_region_copy in the home region."""
        full = {"name": "replica", "region": TARGET, "project_name": TARGET}
        full["agency_name"] = "ims_admin_agency"
        full.update(body)
        payload = {k: v for k, v in full.items() if v is not None}
        path = f"/v1/cloudimages/{image_id}/cross_region_copy"
        return self.home.call("POST", path, service="ims", body=payload)

    def job(self, job_id: str, progress: bool = False) -> dict[str, Any]:
        """Read a home-region job (ShowJob, or ShowJobProgress with `progress`)."""
        path = f"/v1/cloudimages/job/{job_id}" if progress else f"/v1/{PROJECT}/jobs/{job_id}"
        response = self.home.call("GET", path, service="ims")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def target_images(self) -> list[dict[str, Any]]:
        """The target region's image listing, read with the target's project."""
        response = self.target.call(
            "GET", "/v2/cloudimages", service="ims", project_header=TARGET_PROJECT
        )
        assert response.status_code == 200, response.text
        images: list[dict[str, Any]] = response.json()["images"]
        return images


@pytest.fixture(params=["mock", "server"])
def pair(request: pytest.FixtureRequest, cloud: FakeCloud) -> Iterator[Pair]:
    """Home and target clients: the target is `ims.cn-east-3.myhuaweicloud.com` in-process,
    a second port bound to cn-east-3 over HTTP."""
    cloud.add_region(TARGET, TARGET_PROJECT)
    with requests.Session() as session:
        if request.param == "mock":
            with mock_cloud(cloud):
                target_url = f"https://ims.{TARGET}.myhuaweicloud.com"
                yield Pair(
                    Client(cloud, "mock", session), Client(cloud, "mock", session, target_url)
                )
        else:
            with serve(cloud) as home, serve(cloud, region=TARGET) as target:
                yield Pair(
                    Client(cloud, "server", session, home.url),
                    Client(cloud, "server", session, target.url),
                )


def test_each_region_has_its_own_project_and_images(pair: Pair) -> None:
    """The target lists only its images, owned by its project; the home project is refused there."""
    pair.cloud.ims.add_image(id="home-1", name="h")
    pair.cloud.ims_in(TARGET).add_image(id="east-1", name="e")
    assert [(i["id"], i["owner"]) for i in pair.target_images()] == [("east-1", TARGET_PROJECT)]
    assert [i["id"] for i in pair.home.images().json()["images"]] == ["home-1"]
    wrong = pair.target.call("GET", "/v2/cloudimages", service="ims", project_header=PROJECT)
    assert wrong.status_code == 400
    assert wrong.json()["error_code"] == "Common.0018"


def test_other_services_only_in_the_home_region(pair: Pair) -> None:
    """Outside the home region only IMS exists: an EVS path sent there is 404 APIGW.0101."""
    path = f"/v2/{TARGET_PROJECT}/cloudvolumes/detail"
    response = pair.target.call("GET", path, project_header=TARGET_PROJECT)
    assert response.status_code == 404
    assert response.json()["error_code"] == "APIGW.0101"


def test_copy_immediate(pair: Pair) -> None:
    """By default a replication job is SUCCESS at once and the replica is active in the target."""
    pair.cloud.ims.add_image(id="img-1", name="src", min_disk=40, tags={"a": "b"})
    response = pair.copy("img-1", name="copy-1", description="d")
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"job_id"}
    job = pair.job(response.json()["job_id"])
    assert job["status"] == "SUCCESS"
    assert set(job) == {
        "status",
        "job_id",
        "job_type",
        "begin_time",
        "end_time",
        "error_code",
        "fail_reason",
        "entities",
    }
    assert job["end_time"] and job["error_code"] is None
    replicas = pair.target_images()
    assert [(i["id"], i["name"], i["status"]) for i in replicas] == [
        (job["entities"]["image_id"], "copy-1", "active")
    ]
    assert replicas[0]["min_disk"] == 40
    assert replicas[0]["tags"] == []  # tags are not replicated [U]: the caller re-tags
    assert [i["status"] for i in pair.home.images().json()["images"]] == ["active"]
    state = pair.cloud.state()
    assert [i["name"] for i in state["regions"][TARGET]["images"]] == ["copy-1"]
    assert state["regions"][TARGET]["project_name"] == TARGET


def test_copy_after_polls(pair: Pair) -> None:
    """Polls mode (2): read 1 INIT (no replica), read 2 RUNNING (replica saving), 3 SUCCESS."""
    pair.cloud.set_copy_progress("polls", after=2)
    pair.cloud.ims.add_image(id="img-1")
    job_id = pair.copy("img-1").json()["job_id"]
    first = pair.job(job_id)
    assert (first["status"], first["end_time"]) == ("INIT", "")
    assert "image_id" not in first["entities"]
    assert pair.target_images() == []
    second = pair.job(job_id, progress=True)
    assert second["status"] == "RUNNING"
    assert [(i["id"], i["status"]) for i in pair.target_images()] == [
        (second["entities"]["image_id"], "saving")
    ]
    assert pair.job(job_id)["status"] == "SUCCESS"
    assert [i["status"] for i in pair.target_images()] == ["active"]


def test_copy_after_duration(pair: Pair, clock: Any) -> None:
    """In duration mode (60 s): INIT at once, RUNNING once time moves, SUCCESS after 60 s."""
    pair.cloud.set_copy_progress("duration", after=60)
    pair.cloud.ims.add_image(id="img-1")
    job_id = pair.copy("img-1").json()["job_id"]
    assert pair.job(job_id)["status"] == "INIT"
    clock.advance(1)
    assert pair.job(job_id)["status"] == "RUNNING"
    assert [i["status"] for i in pair.target_images()] == ["saving"]
    clock.advance(59)
    assert pair.job(job_id)["status"] == "SUCCESS"
    assert [i["status"] for i in pair.target_images()] == ["active"]


def test_copy_failure_by_name(pair: Pair) -> None:
    """A replica name set to FAIL ends its job FAIL with a code and reason; replica killed."""
    pair.cloud.jobs.set_outcome("doomed", "FAIL")
    pair.cloud.ims.add_image(id="img-1")
    ok = pair.job(pair.copy("img-1", name="fine").json()["job_id"])
    bad = pair.job(pair.copy("img-1", name="doomed").json()["job_id"])
    assert ok["status"] == "SUCCESS"
    assert (bad["status"], bad["error_code"]) == ("FAIL", "IMG.0061")
    assert bad["fail_reason"]
    statuses = {i["name"]: i["status"] for i in pair.target_images()}
    assert statuses == {"fine": "active", "doomed": "killed"}


def test_sixth_replication_in_flight_is_refused(pair: Pair) -> None:
    """Five replications may run at once (PLATFORM.md 10.8); the sixth is 400 IMG.0060 until
    one ends."""
    pair.cloud.set_copy_progress("polls", after=1)
    pair.cloud.ims.add_image(id="img-1")
    jobs = [pair.copy("img-1", name=f"r{n}") for n in range(5)]
    assert [r.status_code for r in jobs] == [200] * 5
    sixth = pair.copy("img-1", name="r5")
    assert sixth.status_code == 400
    assert sixth.json() == {
        "error_code": "IMG.0060",
        "error_msg": "The number of tasks exceeds the flow control limit.",
    }
    first = jobs[0].json()["job_id"]
    pair.job(first)
    assert pair.job(first)["status"] == "SUCCESS"
    assert pair.copy("img-1", name="r5").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": None}, "'name' is required"),
        ({"region": None}, "'region' is required"),
        ({"project_name": None}, "'project_name' is required"),
        ({"agency_name": None}, "'agency_name' is required"),
        ({"name": "x" * 129}, "'name' is required"),
        ({"description": "a<b"}, "'description' must not contain"),
        ({"bogus": 1}, "Unknown body keys"),
        ({"region": REGION, "project_name": REGION}, "cannot be the same as the source"),
        ({"region": "xx-nowhere-1", "project_name": "xx-nowhere-1"}, "is unknown"),
        ({"project_name": "other-project"}, "does not exist in region"),
    ],
    ids=[
        "no-name",
        "no-region",
        "no-project-name",
        "no-agency",
        "long-name",
        "description-chars",
        "unknown-key",
        "same-region",
        "unknown-region",
        "wrong-project-name",
    ],
)
def test_copy_body_refused(pair: Pair, body: dict[str, Any], message: str) -> None:
    """A body the SDK model or ims_03_0628 does not allow is 400 in IMS's body; nothing starts."""
    pair.cloud.ims.add_image(id="img-1")
    response = pair.copy("img-1", **body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "IMG.0001"
    assert message in response.json()["error_msg"]
    assert pair.cloud.jobs.jobs == {}
    assert pair.target_images() == []


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"status": "saving"}, "only active images"),
        ({"__system_encrypted": "1"}, "Encrypted images"),
        ({"min_disk": 301}, "at most 300 GB"),
        ({"disk_format": "iso"}, "ISO"),
        ({"__whole_image": "true"}, "'vault_id' is required"),
        ({"owner": "99999999999999999999999999999999"}, "your own private images"),
        ({"__imagetype": "shared"}, "your own private images"),
    ],
    ids=["not-active", "encrypted", "too-big", "iso", "whole-image", "not-owner", "shared"],
)
def test_copy_image_refused(pair: Pair, image: dict[str, Any], message: str) -> None:
    """Only own, active, unencrypted, non-ISO images within the size limit are replicated."""
    pair.cloud.ims.add_image(id="img-1", **image)
    response = pair.copy("img-1")
    assert response.status_code == 400
    assert message in response.json()["error_msg"]
    assert pair.cloud.jobs.jobs == {}


def test_size_limit_table(pair: Pair) -> None:
    """300 GB between the four large regions; 128 GB when either side is another region."""
    pair.cloud.add_region(SMALL, SMALL_PROJECT)
    pair.cloud.ims.add_image(id="big", min_disk=300)
    pair.cloud.ims.add_image(id="mid", min_disk=129)
    pair.cloud.ims.add_image(id="ok", min_disk=128)
    assert pair.copy("big").status_code == 200
    small = {"region": SMALL, "project_name": SMALL}
    refused = pair.copy("mid", **small)
    assert refused.status_code == 400
    assert "at most 128 GB" in refused.json()["error_msg"]
    assert pair.copy("ok", **small).status_code == 200


def test_whole_image_with_vault_and_missing_image(pair: Pair) -> None:
    """A full-ECS image replicates with a vault_id; an unknown image is 404 IMG.0027."""
    pair.cloud.ims.add_image(id="img-1", __whole_image="true")
    assert pair.copy("img-1", vault_id="vault-1").status_code == 200
    missing = pair.copy("nothing")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "IMG.0027"


def test_jobs_belong_to_their_region(pair: Pair) -> None:
    """A job is read in the region and project it was submitted to; elsewhere it is 404."""
    pair.cloud.ims.add_image(id="img-1")
    job_id = pair.copy("img-1").json()["job_id"]
    there = pair.target.call(
        "GET", f"/v1/{TARGET_PROJECT}/jobs/{job_id}", service="ims", project_header=TARGET_PROJECT
    )
    assert there.status_code == 404
    unknown = pair.home.call("GET", f"/v1/{PROJECT}/jobs/nope", service="ims")
    assert unknown.status_code == 404
    no_header = pair.home.call(
        "GET", f"/v1/cloudimages/job/{job_id}", service="ims", project_header=None
    )
    assert no_header.status_code == 401


def share(pair: Pair, body: Any) -> requests.Response:
    """POST /v1/cloudimages/members in the home region."""
    return pair.home.call("POST", "/v1/cloudimages/members", service="ims", body=body)


def test_share_records_pending_members(pair: Pair) -> None:
    """Sharing answers a job that is SUCCESS with one result per image and project; the
    memberships show in the state dump as pending."""
    pair.cloud.ims.add_image(id="img-1")
    pair.cloud.ims.add_image(id="img-2")
    other = "3" * 32
    response = share(pair, {"images": ["img-1", "img-2"], "projects": [MEMBER, other]})
    assert response.status_code == 200, response.text
    job = pair.job(response.json()["job_id"])
    assert job["status"] == "SUCCESS"
    assert len(job["entities"]["results"]) == 4
    assert {"image_id": "img-1", "project_id": MEMBER, "status": "success"} in job["entities"][
        "results"
    ]
    members = pair.cloud.state()["members"]
    assert members == {
        "img-1": {MEMBER: "pending", other: "pending"},
        "img-2": {MEMBER: "pending", other: "pending"},
    }


@pytest.mark.parametrize(
    ("body", "image", "status", "message"),
    [
        ({"images": [], "projects": [MEMBER]}, {}, 400, "'images' must be"),
        ({"images": ["img-1"], "projects": []}, {}, 400, "'projects' must be"),
        ({"images": ["img-1"], "projects": [MEMBER, MEMBER]}, {}, 400, "unique"),
        ({"images": ["img-1"], "projects": ["not-a-project"]}, {}, 400, "Invalid project"),
        ({"images": ["img-1"], "projects": [PROJECT]}, {}, 400, "its own project"),
        ({"images": ["img-1"], "projects": [TARGET_PROJECT]}, {}, 400, "same-region only"),
        ({"images": ["img-1"], "projects": [MEMBER], "domains": ["d"]}, {}, 400, "not modelled"),
        ({"images": ["nope"], "projects": [MEMBER]}, {}, 404, "cannot be found"),
        ({"images": ["img-1"], "projects": [MEMBER]}, {"status": "queued"}, 400, "only active"),
        (
            {"images": ["img-1"], "projects": [MEMBER]},
            {"__system_encrypted": "1"},
            400,
            "encrypted",
        ),
        ({"images": ["img-1"], "projects": [MEMBER]}, {"__imagetype": "gold"}, 400, "own private"),
    ],
    ids=[
        "no-images",
        "no-projects",
        "duplicate",
        "bad-project-id",
        "own-project",
        "other-region",
        "domains",
        "missing-image",
        "not-active",
        "encrypted",
        "not-private",
    ],
)
def test_share_refused(
    pair: Pair, body: dict[str, Any], image: dict[str, Any], status: int, message: str
) -> None:
    """Sharing refuses bad bodies and images it may not share, recording nothing."""
    pair.cloud.ims.add_image(id="img-1", **image)
    response = share(pair, body)
    assert response.status_code == status
    assert message in response.json()["error_msg"]
    assert pair.cloud.state()["members"] == {}
    assert pair.cloud.jobs.jobs == {}


def test_share_at_most_256_projects(pair: Pair) -> None:
    """An image is shared with at most 256 projects, counting those it already has [S]."""
    pair.cloud.ims.add_image(id="img-1")
    first = [f"{n:032x}" for n in range(1, 256)]
    assert share(pair, {"images": ["img-1"], "projects": first}).status_code == 200
    over = share(pair, {"images": ["img-1"], "projects": [f"{n:032x}" for n in (300, 301)]})
    assert over.status_code == 400
    assert "at most 256" in over.json()["error_msg"]
    assert share(pair, {"images": ["img-1"], "projects": [f"{300:032x}"]}).status_code == 200
    assert len(pair.cloud.ims.images["img-1"].members) == 256


def test_seed_regions(cloud: FakeCloud) -> None:
    """A seed's `regions` adds regions with their project, name and images, shown by state()."""
    cloud.load_seed(
        {
            "images": [{"id": "home-1", "name": "h"}],
            "regions": {
                TARGET: {
                    "project_id": TARGET_PROJECT,
                    "images": [{"id": "east-1", "name": "e", "created_at": "2024-01-01T00:00:00Z"}],
                },
                SMALL: {"project_id": SMALL_PROJECT, "project_name": "ap-southeast-1_x"},
            },
        }
    )
    state = cloud.state()
    assert [i["id"] for i in state["images"]] == ["home-1"]
    east = state["regions"][TARGET]
    assert (east["project_id"], east["project_name"]) == (TARGET_PROJECT, TARGET)
    assert [(i["id"], i["owner"], i["created_at"]) for i in east["images"]] == [
        ("east-1", TARGET_PROJECT, "2024-01-01T00:00:00Z")
    ]
    assert state["regions"][SMALL]["project_name"] == "ap-southeast-1_x"
    assert state["project_name"] == REGION


@pytest.mark.parametrize(
    "seed",
    [
        {"regions": []},
        {"regions": {TARGET: {"project_id": TARGET_PROJECT, "volumes": []}}},
        {"regions": {REGION: {"project_id": "x" * 32}}},
        {"regions": {TARGET: {}}},
        {"regions": {"Not A Region": {"project_id": TARGET_PROJECT}}},
        {"regions": {TARGET: {"project_id": PROJECT}}},
    ],
    ids=["not-object", "unknown-key", "home", "no-project", "bad-id", "home-project"],
)
def test_seed_regions_refused(cloud: FakeCloud, seed: dict[str, Any]) -> None:
    """A region entry the fake cannot serve exactly makes the seed fail."""
    with pytest.raises(ValueError):
        cloud.load_seed(seed)


def test_add_region_is_configuration(cloud: FakeCloud) -> None:
    """add_region is idempotent for a project, refuses another; reset() keeps and empties it."""
    backend = cloud.add_region(TARGET, TARGET_PROJECT)
    assert cloud.add_region(TARGET, TARGET_PROJECT) is backend
    with pytest.raises(ValueError):
        cloud.add_region(TARGET, SMALL_PROJECT)
    backend.add_image(id="east-1")
    cloud.reset()
    assert cloud.regions[TARGET] is backend
    assert backend.images == {}


def test_mock_unknown_region_is_unreachable(cloud: FakeCloud) -> None:
    """In-process, an IMS host of a region the cloud does not serve raises ConnectionError."""
    with mock_cloud(cloud), requests.Session() as s:
        client = Client(cloud, "mock", s, "https://ims.la-south-2.myhuaweicloud.com")
        with pytest.raises(requests.exceptions.ConnectionError):
            client.images()


def test_serve_unknown_region_refused(cloud: FakeCloud) -> None:
    """A region-bound server needs a region the cloud serves."""
    with pytest.raises(ValueError):
        serve(cloud, region=TARGET)


def test_control_routes(cloud: FakeCloud) -> None:
    """POST /_fake/regions adds a region; POST /_fake/copy_progress sets replication progress."""
    with serve(cloud) as server, requests.Session() as s:
        added = s.post(
            f"{server.url}/_fake/regions", json={"region": TARGET, "project_id": TARGET_PROJECT}
        )
        assert added.json() == {
            "region": TARGET,
            "project_id": TARGET_PROJECT,
            "project_name": TARGET,
        }
        progress = {"mode": "polls", "after": 3, "outcomes": {"doomed": "FAIL"}}
        answer = s.post(f"{server.url}/_fake/copy_progress", json=progress)
        assert answer.json() == {
            "mode": "polls",
            "after": 3.0,
            "outcome": "SUCCESS",
            "outcomes": {"doomed": "FAIL"},
        }
        bad = s.post(f"{server.url}/_fake/copy_progress", json={"outcome": "active"})
        assert bad.status_code == 400
        state = s.get(f"{server.url}/_fake/state").json()
        assert state["copy_progress"]["after"] == 3.0
        assert state["regions"][TARGET]["images"] == []
        s.post(f"{server.url}/_fake/reset")
        assert s.get(f"{server.url}/_fake/state").json()["copy_progress"]["mode"] == "immediate"


def test_cli_region_port(tmp_path: Path) -> None:
    """`python -m fakecloud --region-port cn-east-3=0` serves the seed's cn-east-3 IMS on a port."""
    seed = {"regions": {TARGET: {"project_id": TARGET_PROJECT, "images": [{"id": "east-1"}]}}}
    (tmp_path / "seed.json").write_text(json.dumps(seed))
    env = {
        **os.environ,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("HUAWEICLOUD_SDK_SECURITY_TOKEN", None)
    base = [sys.executable, "-m", "fakecloud", "--port", "0", "--seed", str(tmp_path / "seed.json")]
    bad = subprocess.run(
        [*base, "--region-port", "xx-none-1=0"], env=env, capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2
    assert "--region-port" in bad.stderr
    proc = subprocess.Popen(
        [*base, "--region-port", f"{TARGET}=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("fakecloud listening on http://127.0.0.1:")
        line = proc.stdout.readline().strip()
        assert line.startswith(f"fakecloud region {TARGET} listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        real = FakeCloud(ak=AK, sk=SK, project_id=PROJECT, clock=lambda: datetime.now(timezone.utc))
        with requests.Session() as s:
            client = Client(real, "server", s, url)
            response = client.call(
                "GET", "/v2/cloudimages", service="ims", project_header=TARGET_PROJECT
            )
            assert response.status_code == 200, response.text
            assert [i["id"] for i in response.json()["images"]] == ["east-1"]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
