"""IMS across regions (HTTP): CopyImageCrossRegion, ShowJob, ShowJobProgress, BatchAddMembers.

The state and the job transitions are in fakecloud.ims.copy_models, with their sources.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fakecloud.base import BadJson, Reply, Request, Route, json_reply, parse_json, route
from fakecloud.ims.copy_models import (
    MAX_COPIES_IN_FLIGHT,
    MAX_MEMBERS,
    SHARE_JOB_TYPE,
    is_encrypted,
    own_private,
    size_limit,
)
from fakecloud.ims.errors import bad_param, ims_error, not_found
from fakecloud.ims.routes import backend

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

_COPY_KEYS = {"name", "description", "region", "project_name", "agency_name", "vault_id"}
_PROJECT_ID = re.compile(r"^[0-9a-f]{32}$")


def _body(req: Request) -> dict[str, Any]:
    try:
        body = parse_json(req)
    except BadJson as exc:
        raise bad_param(str(exc)) from exc
    if not isinstance(body, dict):
        raise bad_param("The request body must be a JSON object.")
    return body


def _text(body: dict[str, Any], key: str, *, required: bool, high: int) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not 1 <= len(value) <= high:
        raise bad_param(f"'{key}' is required: a string of 1-{high} characters.")
    return value


def copy_cross_region(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /v1/cloudimages/{image_id}/cross_region_copy -> 200 {"job_id"} (ims_03_0628).

    Body keys are the SDK CopyImageCrossRegionRequestBody's: `name`, `region`, `project_name`
    and `agency_name` required (the model sets them unconditionally; the Kuala Lumpur copy of
    the doc marks agency_name mandatory), `description` (<= 1024, no CR/LF or angle brackets)
    and `vault_id` (required for a whole-ECS image) optional; other keys are refused [U].
    The 200 status is [U] (the SDK model gives only the body).
    """
    source = backend(cloud, req)
    image = source._images.get(m.group("image_id"))
    if image is None:
        raise not_found(m.group("image_id"))
    body = _body(req)
    unknown = sorted(set(body) - _COPY_KEYS)
    if unknown:
        raise bad_param(f"Unknown body keys {unknown!r}.")
    name = _text(body, "name", required=True, high=128)
    description = _text(body, "description", required=False, high=1024)
    if re.search(r"[\r\n<>]", description):
        raise bad_param("'description' must not contain carriage returns, '<' or '>'.")
    region = _text(body, "region", required=True, high=64)
    project_name = _text(body, "project_name", required=True, high=64)
    _text(body, "agency_name", required=True, high=64)
    vault_id = _text(body, "vault_id", required=False, high=64)
    if region == source.region:
        raise bad_param("The destination region cannot be the same as the source region.")
    target = cloud.regions.get(region)
    if target is None:
        raise bad_param(f"The destination region {region} is unknown.")  # [U] code
    if project_name != target.project_name:
        raise bad_param(f"The project {project_name} does not exist in region {region}.")
    if not own_private(source, image):
        raise bad_param("Only your own private images can be replicated.")
    if image.status != "active":
        raise bad_param(f"The image is {image.status}; only active images can be replicated.")
    if is_encrypted(image):
        raise bad_param("Encrypted images cannot be replicated across regions.")
    if image.disk_format == "iso":
        raise bad_param("Private images created from ISO files cannot be replicated.")
    if str(image.extra.get("__whole_image", "")).lower() == "true" and not vault_id:
        raise bad_param("'vault_id' is required to replicate a full-ECS image.")
    limit = min(size_limit(source.region), size_limit(region))
    if image.min_disk > limit:
        raise bad_param(
            f"The image is {image.min_disk} GB; at most {limit} GB can be replicated"
            f" from {source.region} to {region}."
        )
    if cloud.jobs.in_flight() >= MAX_COPIES_IN_FLIGHT:
        # [U] whether IMS answers this limit with IMG.0060; its documented text fits
        # (PLATFORM.md 4.6) and a caller should back off and retry, as for IMG.0060.
        raise ims_error(400, "IMG.0060", "The number of tasks exceeds the flow control limit.")
    job = cloud.jobs.start_copy(source, image, target, name, description)
    return json_reply(200, {"job_id": job.id}, req)


def _job(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    job = cloud.jobs.jobs.get(m.group("job_id"))
    if job is None or job.region != backend(cloud, req).region:
        raise ims_error(404, "IMG.0001", f"The job {m.group('job_id')} cannot be found.")  # [U]
    cloud.jobs.poll(job)
    return json_reply(200, cloud.jobs.job_dict(job), req)


def show_job(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /v1/{project_id}/jobs/{job_id} (ShowJob, ims_03_0905; deprecated in the SDK)."""
    return _job(cloud, req, m)


def show_job_progress(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /v1/cloudimages/job/{job_id} (ShowJobProgress, ims_03_0911): the same job view."""
    return _job(cloud, req, m)


def _ids(body: dict[str, Any], key: str) -> list[str]:
    values = body.get(key)
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) and v for v in values)
        or len(set(values)) != len(values)
    ):
        raise bad_param(f"'{key}' must be a non-empty list of unique IDs.")
    return values


def add_members(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /v1/cloudimages/members {"images": [...], "projects": [...]} -> 200 {"job_id"}.

    SDK BatchAddMembersRequestBody / BatchAddMembersResponse; IAM ims:images:share [C]. Only
    own private, active, unencrypted images of this region; members are project IDs (32 hex
    characters [S]), not the owner's own project, not a project of the account in another
    region (sharing is same-region only, PLATFORM.md 10.8 [S]), at most MAX_MEMBERS per image
    [S]. Every image is checked before any is shared [U: IMS may report per image in the job].
    `domains` and `organizations` are not modelled and refused. The job is SUCCESS at once
    and each membership starts `pending` (the member has not accepted yet).
    """
    ims = backend(cloud, req)
    body = _body(req)
    unknown = sorted(set(body) - {"images", "projects"})
    if unknown:
        raise bad_param(f"Body keys {unknown!r} are not modelled (only images and projects).")
    image_ids, projects = _ids(body, "images"), _ids(body, "projects")
    for project in projects:
        if not _PROJECT_ID.match(project):
            raise bad_param(f"Invalid project ID {project!r}.")
        if project == ims.project_id:
            raise bad_param("An image cannot be shared with its own project.")
        if any(b.project_id == project for b in cloud.regions.values()):
            raise bad_param(f"Project {project} is in another region; sharing is same-region only.")
    images = []
    for image_id in image_ids:
        image = ims._images.get(image_id)
        if image is None:
            raise not_found(image_id)
        if not own_private(ims, image):
            raise bad_param(f"Image {image_id}: only your own private images can be shared.")
        if image.status != "active":
            raise bad_param(f"Image {image_id} is {image.status}; only active ones can be shared.")
        if is_encrypted(image):
            raise bad_param(f"Image {image_id} is encrypted and cannot be shared.")
        if len(set(image.members) | set(projects)) > MAX_MEMBERS:
            raise bad_param(f"Image {image_id} can be shared with at most {MAX_MEMBERS} projects.")
        images.append(image)
    results = []
    for image in images:
        for project in projects:
            image.members.setdefault(project, "pending")
            results.append({"image_id": image.id, "project_id": project, "status": "success"})
    job = cloud.jobs.add_done(ims.region, SHARE_JOB_TYPE, results)
    return json_reply(200, {"job_id": job.id}, req)


# Method, path, handler and the IAM action each needs (PLATFORM.md 10.6).
ROUTES: list[Route] = [
    route(
        "POST",
        r"/v1/cloudimages/members",
        add_members,
        "ims:images:share",  # [C] IMS action table, POST /v1/cloudimages/members
    ),
    route(
        "POST",
        r"/v1/cloudimages/(?P<image_id>[^/]+)/cross_region_copy",
        copy_cross_region,
        "ims:images:copy",  # [C] ims_03_0628, PLATFORM.md 10.8
    ),
    # [C] for GET /v1/cloudimages/job/{job_id} (IMS API actions, "Asynchronous Job"). The older
    # GET /v1/{project_id}/jobs/{job_id} has no action documented [U]; the fake asks for the
    # same one, the only IMS job action there is.
    route(
        "GET",
        r"/v1/cloudimages/job/(?P<job_id>[^/]+)",
        show_job_progress,
        "ims:imageJobs:getPercentage",
    ),
    route("GET", r"/v1/{project}/jobs/(?P<job_id>[^/]+)", show_job, "ims:imageJobs:getPercentage"),
]
