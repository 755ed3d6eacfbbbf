"""IMS across regions (state): replication, sharing (members) and the asynchronous jobs.

Sources: PLATFORM.md 10.8; IMS doc ims_03_0628 (CopyImageCrossRegion); SDK `huaweicloudsdkims`
3.1.219 models CopyImageCrossRegionRequestBody, CopyImageCrossRegionResponse, ShowJobResponse,
ShowJobProgressResponse, JobEntities, JobProgressEntities, JobEntitiesResult,
BatchAddMembersRequestBody, BatchAddMembersResponse. Where a fact is unconfirmed ([U]) the fake
takes the stricter reading.

Jobs move `INIT -> RUNNING -> SUCCESS | FAIL` like exports do (fakecloud.ims.models): `immediate`
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

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fakecloud.base import utc
from fakecloud.progress import FINISH, RUN, Schedule, Timeline, Transition

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud
    from fakecloud.ims.models import Image, ImsBackend

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


def _time(dt: datetime) -> str:
    """A job time: UTC with milliseconds and `Z` (as in IMS job examples, e.g. ims_03_0905)."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc(dt).microsecond // 1000:03d}Z"


@dataclass
class Job:
    """One asynchronous IMS job, queried in the region and project it was submitted to."""

    id: str
    job_type: str
    region: str
    timeline: Timeline
    status: str = "INIT"
    end: datetime | None = None
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
        self.schedule = Schedule(OUTCOMES, strict_after=True)

    def reset(self) -> None:
        """Forget every job; replications finish immediately and succeed again."""
        self.jobs.clear()
        self.schedule.reset()

    def set_progress(
        self, mode: str = "immediate", after: float = 0, outcome: str = "SUCCESS"
    ) -> None:
        """How later replications finish: `immediate`, after `after` job reads (`polls`) or
        after `after` seconds of the fake clock (`duration`), ending in `outcome`."""
        with self._cloud.lock:
            self.schedule.set(mode, after, outcome)

    def set_outcome(self, image_name: str, outcome: str) -> None:
        """Make replications to the replica name `image_name` end in `outcome`."""
        with self._cloud.lock:
            self.schedule.set_outcome(image_name, outcome)

    def progress(self) -> dict[str, Any]:
        """The replication progress settings, JSON-ready."""
        return self.schedule.to_dict()

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
            timeline=self.schedule.start(name, self._cloud.now()),
            source_image_id=image.id,
            image_name=name,
            target_region=target.region,
            description=description,
        )
        self.jobs[job.id] = job
        if job.timeline.final_at_start():
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
        timeline = Timeline("immediate", 0.0, "SUCCESS", now)
        job = Job(job_id or uuid.uuid4().hex, job_type, region, timeline)
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
        job.status, job.end = job.timeline.outcome, now
        replica = self._cloud.ims_in(job.target_region)._images.get(job.replica_id or "")
        if replica is not None:
            replica.status = "active" if job.timeline.outcome == "SUCCESS" else "killed"
            replica.updated_at = now

    def poll(self, job: Job) -> None:
        """Count one read of `job` (polls mode)."""
        if job.status not in FINAL:
            self._advance(job, job.timeline.poll())

    def sweep(self) -> None:
        """Apply the fake clock to jobs in duration mode."""
        with self._cloud.lock:
            now = self._cloud.now()
            for job in self.jobs.values():
                if job.status not in FINAL:
                    self._advance(job, job.timeline.at(now))

    def _advance(self, job: Job, transition: Transition) -> None:
        if transition == FINISH:
            self._finish(job)
        elif transition == RUN:
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
            "begin_time": _time(job.timeline.started),
            "end_time": "" if job.end is None else _time(job.end),
            "error_code": FAIL_CODE if failed else None,
            "fail_reason": f"Replicating image {job.source_image_id} failed." if failed else None,
            "entities": entities,
        }


def is_encrypted(image: Image) -> bool:
    """`__system_encrypted` is "1" (IMS image attributes)."""
    return str(image.extra.get("__system_encrypted", "0")) == "1"


def own_private(ims: ImsBackend, image: Image) -> bool:
    """The image is a private image owned by `ims`'s project (only those replicate or share)."""
    view = ims.image_dict(image)
    return view.get("owner") == ims.project_id and view.get("__imagetype") == "private"


def size_limit(region: str) -> int:
    """The largest `min_disk` (GB) a replication from or to `region` may have (ims_03_0628)."""
    return SIZE_LIMIT_GB.get(region, DEFAULT_SIZE_LIMIT_GB)
