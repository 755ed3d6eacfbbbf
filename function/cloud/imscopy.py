"""IMS across regions: cross-region replication, its asynchronous jobs, sharing with other
projects (PLATFORM.md 10.8), and the signed client of a copy's target region and project."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from function.cloud.client import CloudClient
from function.cloud.ims import ImsClient, holds_name


def target_client(client: CloudClient, region: str, project_id: str) -> CloudClient:
    """A client of ``region``'s IMS in ``project_id``: ``IMS_ENDPOINT_<REGION>`` when set,
    else the public endpoint; same credentials, runtime, transport and limiter as ``client``
    (one rate for the whole invocation)."""
    settings = client.settings
    override = settings.ims_region_endpoints.get(region)
    endpoints = {"ims": override} if override else {}
    there = replace(settings, region=region, project_id=project_id, endpoints=endpoints)
    return CloudClient(there, client.runtime, client.transport, client.limiter)


@dataclass(frozen=True)
class CopyJob:
    """What ``GET /v1/{project_id}/jobs/{job_id}`` says of a replication."""

    job_id: str
    status: str  # INIT | RUNNING | SUCCESS | FAIL
    image_id: str | None  # the replica, once IMS names it
    error_code: str | None
    fail_reason: str | None


class ImsCopyClient:
    """The home region's replication and sharing calls (one signed client)."""

    def __init__(self, client: CloudClient) -> None:
        self.client = client

    def start_copy(
        self,
        image_id: str,
        *,
        name: str,
        region: str,
        project_name: str,
        agency_name: str,
        description: str,
    ) -> str:
        """``POST /v1/cloudimages/{id}/cross_region_copy`` (``ims:images:copy``): the job ID.
        Sent once, never retried here: the caller records a claim first and, after an
        ambiguous failure, looks for the replica by name instead of sending again."""
        body = {
            "name": name,
            "region": region,
            "project_name": project_name,
            "agency_name": agency_name,
            "description": description,
        }
        path = f"/v1/cloudimages/{image_id}/cross_region_copy"
        data = self.client.send("ims", "POST", path, body=body).json()
        job_id = data.get("job_id") if isinstance(data, dict) else None
        return job_id if isinstance(job_id, str) else ""

    def job(self, job_id: str) -> CopyJob:
        """``GET /v1/{project_id}/jobs/{job_id}`` (``ims:imageJobs:getPercentage``)."""
        path = f"/v1/{self.client.project_id}/jobs/{job_id}"
        data = self.client.call("ims", "GET", path).json()
        data = data if isinstance(data, dict) else {}
        entities = data.get("entities")
        entities = entities if isinstance(entities, dict) else {}
        replica = entities.get("image_id")
        return CopyJob(
            job_id=job_id,
            status=str(data.get("status") or ""),
            image_id=replica if isinstance(replica, str) and replica else None,
            error_code=_text(data.get("error_code")),
            fail_reason=_text(data.get("fail_reason")),
        )

    def share(self, image_ids: Sequence[str], projects: Sequence[str]) -> str:
        """``POST /v1/cloudimages/members`` (``ims:images:share``); idempotent (a project
        already a member stays one), so it is retried like any idempotent call."""
        body = {"images": list(image_ids), "projects": list(projects)}
        data = self.client.call("ims", "POST", "/v1/cloudimages/members", body=body).json()
        job_id = data.get("job_id") if isinstance(data, dict) else None
        return job_id if isinstance(job_id, str) else ""


def find_replica(target: ImsClient, name: str) -> dict[str, Any] | None:
    """The replica named ``name`` in the target region: the newest live one, else the newest
    ``killed`` one (a failed replication), else None."""
    listed = target.list_images(name=name, __imagetype="private")
    live = [i for i in listed if holds_name(i, name)]
    dead = [i for i in listed if i.get("name") == name and i.get("status") == "killed"]
    return max(live or dead, key=lambda i: str(i.get("created_at", "")), default=None)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
