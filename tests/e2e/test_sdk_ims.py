"""Vendor conformance: huaweicloudsdkims's ImsClient replicates and shares against the fake.

The vendor client signs with the real time, so the cloud's ManualClock starts at the real time
and only the replication's poll count moves the job. Only the test imports the SDK.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from fakecloud import FakeCloud, FakeCloudServer, ManualClock, serve
from tests.support import AK, PROJECT, REGION, SK

ims_v2 = pytest.importorskip("huaweicloudsdkims.v2")
credentials = pytest.importorskip("huaweicloudsdkcore.auth.credentials")
exceptions = pytest.importorskip("huaweicloudsdkcore.exceptions.exceptions")

TARGET, TARGET_PROJECT = "cn-east-3", "fedcba9876543210fedcba9876543210"
MEMBER = "22222222222222222222222222222222"


def ims_client(url: str, project_id: str) -> Any:
    """The vendor's ImsClient with BasicCredentials, pointed at a fake server on 127.0.0.1."""
    creds = credentials.BasicCredentials(AK, SK, project_id)
    return ims_v2.ImsClient.new_builder().with_credentials(creds).with_endpoint(url).build()


@pytest.fixture
def servers() -> Iterator[tuple[FakeCloud, FakeCloudServer, FakeCloudServer]]:
    """A cloud on a manual clock at the real time, its home server and a cn-east-3 server."""
    cloud = FakeCloud(
        ak=AK,
        sk=SK,
        project_id=PROJECT,
        region=REGION,
        clock=ManualClock(datetime.now(timezone.utc)),
    )
    cloud.add_region(TARGET, TARGET_PROJECT)
    with serve(cloud) as home, serve(cloud, region=TARGET) as target:
        yield cloud, home, target


def test_sdk_cross_region_copy(servers: tuple[FakeCloud, FakeCloudServer, FakeCloudServer]) -> None:
    """ImsClient copies an image to cn-east-3, polls its job to SUCCESS, lists the replica there."""
    cloud, home, target = servers
    cloud.set_copy_progress("polls", after=2)
    cloud.ims.add_image(id="img-1", name="src", min_disk=40)
    client = ims_client(home.url, PROJECT)
    body = ims_v2.CopyImageCrossRegionRequestBody(
        name="replica-1", region=TARGET, project_name=TARGET, agency_name="ims_admin_agency"
    )
    request = ims_v2.CopyImageCrossRegionRequest(image_id="img-1", body=body)
    job_id = client.copy_image_cross_region(request).job_id
    seen = []
    for _ in range(3):
        job = client.show_job_progress(ims_v2.ShowJobProgressRequest(job_id=job_id))
        seen.append(job.status)
    assert seen == ["INIT", "RUNNING", "SUCCESS"]
    replica_id = job.entities.image_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ShowJob is deprecated in the SDK
        legacy = client.show_job(ims_v2.ShowJobRequest(job_id=job_id))
    assert (legacy.status, legacy.entities.image_id) == ("SUCCESS", replica_id)
    there = ims_client(target.url, TARGET_PROJECT)
    listing = there.list_images(ims_v2.ListImagesRequest(name="replica-1"))
    assert [(i.id, i.status, i.owner) for i in listing.images] == [
        (replica_id, "active", TARGET_PROJECT)
    ]


def test_sdk_copy_refused(servers: tuple[FakeCloud, FakeCloudServer, FakeCloudServer]) -> None:
    """A refused replication reaches the SDK as ClientRequestException with IMS's code."""
    cloud, home, _ = servers
    cloud.ims.add_image(id="img-1", __system_encrypted="1")
    body = ims_v2.CopyImageCrossRegionRequestBody(
        name="r", region=TARGET, project_name=TARGET, agency_name="ims_admin_agency"
    )
    with pytest.raises(exceptions.ClientRequestException) as caught:
        ims_client(home.url, PROJECT).copy_image_cross_region(
            ims_v2.CopyImageCrossRegionRequest(image_id="img-1", body=body)
        )
    assert (caught.value.status_code, caught.value.error_code) == (400, "IMG.0001")


def test_sdk_share(servers: tuple[FakeCloud, FakeCloudServer, FakeCloudServer]) -> None:
    """ImsClient shares an image with a project; the job succeeds and the member is pending."""
    cloud, home, _ = servers
    cloud.ims.add_image(id="img-1")
    client = ims_client(home.url, PROJECT)
    body = ims_v2.BatchAddMembersRequestBody(images=["img-1"], projects=[MEMBER])
    job_id = client.batch_add_members(ims_v2.BatchAddMembersRequest(body=body)).job_id
    job = client.show_job_progress(ims_v2.ShowJobProgressRequest(job_id=job_id))
    assert job.status == "SUCCESS"
    assert cloud.state()["members"] == {"img-1": {MEMBER: "pending"}}
