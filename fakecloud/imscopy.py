"""IMS across regions: cross-region replication, sharing (members) and the asynchronous jobs.

Sources: PLATFORM.md 10.8; IMS doc ims_03_0628 (CopyImageCrossRegion); SDK `huaweicloudsdkims`
3.1.219 models CopyImageCrossRegionRequestBody, CopyImageCrossRegionResponse, ShowJobResponse,
ShowJobProgressResponse, JobEntities, JobProgressEntities, JobEntitiesResult,
BatchAddMembersRequestBody, BatchAddMembersResponse. Where a fact is unconfirmed ([U]) the fake
takes the stricter reading.

Jobs move `INIT -> RUNNING -> SUCCESS | FAIL` like exports do (fakecloud.ims): `immediate`
(final when created), `polls` (the first read of the job sees INIT, reads 2..N see RUNNING, read
N+1 the outcome; reads are `GET /v1/{project_id}/jobs/{id}` and `GET /v1/cloudimages/job/{id}`)
or `duration` (RUNNING once the fake clock has moved, final after N seconds). The replica appears
in the target region when its job turns RUNNING, as `saving`; it becomes `active` when the job
succeeds and `killed` when it fails [U: what IMS leaves behind on failure]. `job_id` then
`entities.image_id` name it. The replica keeps the source's disk and container format, OS type
and `min_disk`, but not its tags [U: the stricter reading; a caller re-tags it]. In polls mode
only job reads count: reading the replica does not move the job.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fakecloud.base import BadJson, Reply, Request, Route, json_reply, parse_json, route, utc
from fakecloud.ims import Image, ImsBackend, backend, bad_param, ims_error, not_found

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

MODES = ("immediate", "polls", "duration")
OUTCOMES = ("SUCCESS", "FAIL")
FINAL = ("SUCCESS", "FAIL")
# PLATFORM.md 10.8 and ims_03_0628: "A maximum of five private images can be replicated at a
# time" per account ("单租户并发复制不能超过5个私有镜像").
MAX_COPIES_IN_FLIGHT = 5
# ims_03_0628 (zh): images over 300 GiB cannot be replicated from cn-south-1, cn-east-2,
# cn-east-3 and cn-north-4, over 128 GiB elsewhere. Which side's limit applies is [U]; the
# fake applies the smaller of the source's and the target's.
SIZE_LIMIT_GB = {"cn-south-1": 300, "cn-east-2": 300, "cn-east-3": 300, "cn-north-4": 300}
DEFAULT_SIZE_LIMIT_GB = 128
# PLATFORM.md 10.8 [S]: an image is shared with at most 256 projects.
MAX_MEMBERS = 256
COPY_JOB_TYPE = "imsCrossRegionCopyImageJob"  # [U] the job_type IMS reports
SHARE_JOB_TYPE = "imsBatchAddMembersJob"  # [U]
# [U] the code of a failed replication; PLATFORM.md 4.6 lists IMG.0061 "Unknown system error."
FAIL_CODE = "IMG.0061"
_COPY_KEYS = {"name", "description", "region", "project_name", "agency_name", "vault_id"}
_PROJECT_ID = re.compile(r"^[0-9a-f]{32}$")


def _time(dt: datetime) -> str:
    """A job time: UTC with milliseconds and `Z` (as in IMS job examples, e.g. ims_03_0905)."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc(dt).microsecond // 1000:03d}Z"


@dataclass
class Job:
    """One asynchronous IMS job, queried in the region and project it was submitted to."""

    id: str
    job_type: str
    region: str
    begin: datetime
    mode: str
    after: float
    outcome: str
    status: str = "INIT"
    end: datetime | None = None
    polls: int = 0
    # Replication only.
    source_image_id: str = ""
    image_name: str = ""
    target_region: str = ""
    description: str = ""
    replica_id: str | None = None
    # Sharing only: JobEntitiesResult items.
    results: list[dict[str, str]] = field(default_factory=list)


class Jobs:
    """Every IMS job of the account, and how replications finish (like ImsBackend.set_progress)."""

    def __init__(self, cloud: FakeCloud) -> None:
        self._cloud = cloud
        self.jobs: dict[str, Job] = {}
        self.mode = "immediate"
        self.after = 0.0
        self.outcome = "SUCCESS"
        self.outcomes: dict[str, str] = {}

    def reset(self) -> None:
        """Forget every job; replications finish immediately and succeed again."""
        self.jobs.clear()
        self.mode, self.after, self.outcome = "immediate", 0.0, "SUCCESS"
        self.outcomes.clear()

    def set_progress(
        self, mode: str = "immediate", after: float = 0, outcome: str = "SUCCESS"
    ) -> None:
        """How later replications finish: `immediate`, after `after` job reads (`polls`) or
        after `after` seconds of the fake clock (`duration`), ending in `outcome`."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        if isinstance(after, bool) or not isinstance(after, int | float) or after < 0:
            raise ValueError("after must be a number >= 0")
        with self._cloud.lock:
            self.mode, self.after, self.outcome = mode, float(after), outcome

    def set_outcome(self, image_name: str, outcome: str) -> None:
        """Make replications to the replica name `image_name` end in `outcome`."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        with self._cloud.lock:
            self.outcomes[image_name] = outcome

    def progress(self) -> dict[str, Any]:
        """The replication progress settings, JSON-ready."""
        return {
            "mode": self.mode,
            "after": self.after,
            "outcome": self.outcome,
            "outcomes": dict(self.outcomes),
        }

    def in_flight(self) -> int:
        """Replications of the account not finished yet (any region)."""
        return sum(
            1 for j in self.jobs.values() if j.job_type == COPY_JOB_TYPE and j.status not in FINAL
        )

    def start_copy(
        self, source: ImsBackend, image: Image, target: ImsBackend, name: str, description: str
    ) -> Job:
        """A replication job of `image` to `target` as `name`, advanced as far as its mode says."""
        job = Job(
            id=uuid.uuid4().hex,
            job_type=COPY_JOB_TYPE,
            region=source.region,
            begin=self._cloud.now(),
            mode=self.mode,
            after=self.after,
            outcome=self.outcomes.get(name, self.outcome),
            source_image_id=image.id,
            image_name=name,
            target_region=target.region,
            description=description,
        )
        self.jobs[job.id] = job
        if job.mode == "immediate" or (job.mode == "duration" and job.after <= 0):
            self._finish(job)
        return job

    def add_done(
        self,
        region: str,
        job_type: str,
        results: list[dict[str, str]],
        job_id: str | None = None,
    ) -> Job:
        """A job that is already SUCCESS when submitted (sharing; `job_id` for tests)."""
        now = self._cloud.now()
        job = Job(job_id or uuid.uuid4().hex, job_type, region, now, "immediate", 0.0, "SUCCESS")
        job.status, job.end, job.results = "SUCCESS", now, results
        self.jobs[job.id] = job
        return job

    def _run(self, job: Job) -> None:
        """INIT -> RUNNING: the replica appears in the target region as `saving`."""
        if job.status != "INIT":
            return
        job.status = "RUNNING"
        source = self._cloud.ims_in(job.region)._images.get(job.source_image_id)
        fields: dict[str, Any] = {}
        if source is not None:
            fields = {
                "disk_format": source.disk_format,
                "container_format": source.container_format,
                "os_type": source.os_type,
                "min_disk": source.min_disk,
            }
        replica = self._cloud.ims_in(job.target_region).add_image(
            name=job.image_name, status="saving", **fields
        )
        if job.description:
            replica.extra["__description"] = job.description
        job.replica_id = replica.id

    def _finish(self, job: Job) -> None:
        if job.status in FINAL:
            return
        self._run(job)
        now = self._cloud.now()
        job.status, job.end = job.outcome, now
        replica = self._cloud.ims_in(job.target_region)._images.get(job.replica_id or "")
        if replica is not None:
            replica.status = "active" if job.outcome == "SUCCESS" else "killed"
            replica.updated_at = now

    def poll(self, job: Job) -> None:
        """Count one read of `job` (polls mode)."""
        if job.mode != "polls" or job.status in FINAL:
            return
        job.polls += 1
        if job.polls > job.after:
            self._finish(job)
        elif job.polls > 1:
            self._run(job)

    def sweep(self) -> None:
        """Apply the fake clock to jobs in duration mode."""
        with self._cloud.lock:
            now = self._cloud.now()
            for job in self.jobs.values():
                if job.mode != "duration" or job.status in FINAL:
                    continue
                elapsed = (now - job.begin).total_seconds()
                if elapsed >= job.after:
                    self._finish(job)
                elif elapsed > 0:
                    self._run(job)

    def job_dict(self, job: Job) -> dict[str, Any]:
        """The ShowJobResponse / ShowJobProgressResponse view of a job."""
        entities: dict[str, Any]
        if job.job_type == COPY_JOB_TYPE:
            entities = {
                "image_name": job.image_name,
                "process_percent": {"INIT": 0.0, "RUNNING": 50.0}.get(job.status, 100.0),
            }
            if job.replica_id is not None:
                entities["image_id"] = job.replica_id
        else:
            entities = {"results": [dict(r) for r in job.results]}
        failed = job.status == "FAIL"
        return {
            "status": job.status,
            "job_id": job.id,
            "job_type": job.job_type,
            "begin_time": _time(job.begin),
            "end_time": "" if job.end is None else _time(job.end),
            "error_code": FAIL_CODE if failed else None,
            "fail_reason": f"Replicating image {job.source_image_id} failed." if failed else None,
            "entities": entities,
        }


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


def is_encrypted(image: Image) -> bool:
    """`__system_encrypted` is "1" (IMS image attributes)."""
    return str(image.extra.get("__system_encrypted", "0")) == "1"


def _own_private(ims: ImsBackend, image: Image) -> bool:
    view = ims.image_dict(image)
    return view.get("owner") == ims.project_id and view.get("__imagetype") == "private"


def size_limit(region: str) -> int:
    """The largest `min_disk` (GB) a replication from or to `region` may have (ims_03_0628)."""
    return SIZE_LIMIT_GB.get(region, DEFAULT_SIZE_LIMIT_GB)


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
    if not _own_private(source, image):
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
        if not _own_private(ims, image):
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


ROUTES: list[Route] = [
    route("POST", r"/v1/cloudimages/members", add_members),
    route("POST", r"/v1/cloudimages/(?P<image_id>[^/]+)/cross_region_copy", copy_cross_region),
    route("GET", r"/v1/cloudimages/job/(?P<job_id>[^/]+)", show_job_progress),
    route("GET", r"/v1/{project}/jobs/(?P<job_id>[^/]+)", show_job),
]
