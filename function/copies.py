"""Disaster-recovery copies: a timer policy's ``copies`` replicate its active images to other
regions with IMS cross-region replication, and ``share_with`` shares them with other projects
of the home region (docs/disaster-recovery.md).

Each run, after reconcile, over the same tag listing of the function's images:

1. **follow**: the replications this policy started (copy state ``job`` or ``claimed``) are
   read; a finished one is tagged in the target and reported once (``evs.copy.completed`` or
   ``evs.copy.failed``);
2. **start**: per volume and target, the active images newer than the newest one already
   copied (a volume with no copy: its newest active image, no backfill) are copied, oldest
   first, while fewer than ``MAX_IN_FLIGHT`` replications of the account's function images
   are in flight; the rest wait for a later run. An encrypted image or one over the size
   limit gets one ``evs.copy.skipped`` and no request. The claim is recorded on the source
   image before the request, so a copy is started once across runs and redeliveries;
3. **target**: one tag listing per target gives the policy's copies there: ``keep`` removes
   the older ones per volume, the newest active one is the recovery point of the run summary,
   and ``rpo`` raises ``evs.rpo.breached``;
4. **share**: active, unencrypted images are shared with ``share_with`` once.

Copy state lives on the source image, one tag per target region (``function.tagbudget``):
``evs-export-copy-<region>`` = ``<state>[.<ref>]``:

=============  ===============================================================  ===========
state          meaning                                                          ref
=============  ===============================================================  ===========
``claimed``    the request is about to be sent, or its answer was lost           epoch s
``queued``     the request was refused before any work (limit); waits again      (none)
``job``        replication running; ``evs.copy.started`` was reported           job ID
``done``       the replica is active and tagged; completed reported             replica ID
``failed``     completed with failure; failed reported                          job ID/code
``skipped``    never requested (``encrypted``, ``too_large``); skipped reported  reason
=============  ===============================================================  ===========

Overlapping runs of one policy are not supported (two runs could both claim an image).
The rules are pure functions; ``run_copies`` makes the requests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from function.budget import Budget
from function.cloud.client import CloudClient, is_ambiguous
from function.cloud.ims import ImsClient
from function.cloud.imscopy import CopyJob, ImsCopyClient, find_replica, target_client
from function.concurrency import parallel_map
from function.errors import ApiError, ConfigError, ExportError, TransportError
from function.lifecycle import (
    DELETED,
    MARKER_KEY,
    MARKER_VALUE,
    POLICY_KEY,
    REPORTED_KEY,
    VOLUME_KEY,
    LifecycleResult,
    ManagedImage,
    _iso,
    by_volume,
    parse_resource,
    policy_value,
    tag_value,
)
from function.results import EventContext, cloud_event
from function.retention import parse_duration
from function.work import CopyTarget, Exports, PlanRequest, Selection

log = structlog.get_logger("evs_export.copies")

STARTED = "evs.copy.started"
COMPLETED = "evs.copy.completed"
FAILED = "evs.copy.failed"
SKIPPED = "evs.copy.skipped"
RPO_BREACHED = "evs.rpo.breached"

COPY_KEY_PREFIX = "evs-export-copy-"
COPY_MARKER = "copy"  # evs-export on a replica: never "managed" (not the target's own export)
SOURCE_KEY = "evs-export-source"
SOURCE_REGION_KEY = "evs-export-source-region"
SOURCE_TIME_KEY = "evs-export-source-time"

MAX_IN_FLIGHT = 5  # replications per account at a time (PLATFORM.md 10.8, ims_03_0628)
# The largest min_disk (GB) IMS replicates from or to a region (ims_03_0628); the smaller of
# the source's and the target's applies.
SIZE_LIMIT_GB = {"cn-north-4": 300, "cn-east-2": 300, "cn-east-3": 300, "cn-south-1": 300}
DEFAULT_SIZE_LIMIT_GB = 128
CLAIM_GRACE = timedelta(hours=1)  # a claim without a replica this long after: failed
SHARE_BATCH = 50  # images per sharing request
REFUSED_CODES = ("IMG.0060",)  # too many tasks: not started, waits for a later run
STATES = ("claimed", "queued", "job", "done", "failed", "skipped")
STARTED_STATES = ("claimed", "job", "done", "failed")
IN_FLIGHT_STATES = ("claimed", "job")
MAX_VALUE_CHARS = 43


# -- copy state (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class CopyState:
    """One target's copy state of a source image, as its tag holds it."""

    state: str
    ref: str = ""

    @classmethod
    def parse(cls, value: str | None) -> CopyState | None:
        if not value:
            return None
        state, _, ref = value.partition(".")
        return cls(state, ref) if state in STATES else None

    def value(self) -> str:
        """The tag value; a ref that would not fit IMS's 43 characters is left out (a job
        or replica is then found by name)."""
        full = f"{self.state}.{tag_value(self.ref)}" if self.ref else self.state
        return full if len(full) <= MAX_VALUE_CHARS else self.state


def copy_key(region: str) -> str:
    """The copy-state tag key of ``region`` (at most 36 characters: regions of at most 20)."""
    return f"{COPY_KEY_PREFIX}{region}"


def state_of(image: ManagedImage, region: str) -> CopyState | None:
    return CopyState.parse(image.tags.get(copy_key(region)))


def in_flight(images: Iterable[ManagedImage]) -> int:
    """Replications of the function's images in flight, any policy and target, by their tags."""
    return sum(
        1
        for image in images
        for key, value in image.tags.items()
        if key.startswith(COPY_KEY_PREFIX)
        and (s := CopyState.parse(value)) is not None
        and s.state in IN_FLIGHT_STATES
    )


def _made(image: ManagedImage) -> datetime:
    return image.made_at or datetime.min.replace(tzinfo=timezone.utc)


def pending(
    group: Sequence[ManagedImage], target: CopyTarget, states: Mapping[str, CopyState | None]
) -> list[ManagedImage]:
    """One volume's images to copy to ``target``, oldest first: the active ones newer than
    the newest one whose copy was started (a volume with none: its newest active image),
    not yet handled; failed ones again with ``retry_failed``. ``states``: by image ID."""
    active = sorted(
        (i for i in group if i.status == "active" and i.managed and i.made_at is not None),
        key=lambda i: (_made(i), i.id),
    )
    if not active:
        return []

    def state(image: ManagedImage) -> str | None:
        s = states.get(image.id)
        return s.state if s is not None else None

    def waiting(image: ManagedImage) -> bool:
        return state(image) in (None, "queued") or (
            target.retry_failed and state(image) == "failed"
        )

    started = [i for i in active if state(i) in STARTED_STATES]
    if not started:
        newest = active[-1]
        return [newest] if waiting(newest) else []
    frontier = max(_made(i) for i in started)
    retried = [i for i in started if target.retry_failed and state(i) == "failed"]
    newer = [i for i in active if _made(i) > frontier and waiting(i)]
    return sorted({i.id: i for i in [*retried, *newer]}.values(), key=lambda i: (_made(i), i.id))


def size_limit(source_region: str, target_region: str) -> int:
    """The largest ``min_disk`` (GB) a replication between the two regions may have."""
    return min(
        SIZE_LIMIT_GB.get(source_region, DEFAULT_SIZE_LIMIT_GB),
        SIZE_LIMIT_GB.get(target_region, DEFAULT_SIZE_LIMIT_GB),
    )


def skip_reason(detail: Mapping[str, Any], source_region: str, target_region: str) -> str | None:
    """Why IMS would refuse to replicate this image: ``encrypted`` (``__system_encrypted``
    is "1") or ``too_large`` (``min_disk`` over the limit); None when it may be copied."""
    if str(detail.get("__system_encrypted", "0")) == "1":
        return "encrypted"
    min_disk = detail.get("min_disk")
    if isinstance(min_disk, int) and min_disk > size_limit(source_region, target_region):
        return "too_large"
    return None


def replica_tags(source: ManagedImage, policy: str, source_region: str) -> dict[str, str]:
    """The tags of a copy in its target: marker ``copy``, volume, policy, source image and
    region, and the source image's time (what ``keep`` and the recovery point go by)."""
    tags = {
        MARKER_KEY: COPY_MARKER,
        VOLUME_KEY: tag_value(source.volume_id or ""),
        POLICY_KEY: policy,
        SOURCE_KEY: tag_value(source.id),
        SOURCE_REGION_KEY: tag_value(source_region),
    }
    if source.made_at is not None:
        tags[SOURCE_TIME_KEY] = str(int(source.made_at.timestamp()))
    return tags


@dataclass(frozen=True)
class Replica:
    """A copy in a target region, from that region's tag listing."""

    id: str
    status: str | None
    volume_id: str | None
    source_id: str | None
    source_time: datetime | None


def parse_replica(resource: Mapping[str, Any]) -> Replica | None:
    image = parse_resource(resource)
    if image is None or image.tags.get(MARKER_KEY) != COPY_MARKER:
        return None
    raw = image.tags.get(SOURCE_TIME_KEY, "")
    when = (
        datetime.fromtimestamp(int(raw), timezone.utc)
        if raw.isascii() and raw.isdigit() and len(raw) <= 12
        else None
    )
    return Replica(image.id, image.status, image.volume_id, image.tags.get(SOURCE_KEY), when)


def replica_deletions(replicas: Iterable[Replica], keep: int) -> list[Replica]:
    """Per volume, the copies beyond the ``keep`` newest by source time (``active`` or
    ``killed`` ones only; a copy without a source time is never deleted)."""
    floor = datetime.min.replace(tzinfo=timezone.utc)
    groups: dict[str, list[Replica]] = {}
    for replica in replicas:
        if replica.volume_id and replica.status != "deleted":
            groups.setdefault(replica.volume_id, []).append(replica)
    doomed: list[Replica] = []
    for group in groups.values():
        ranked = sorted(group, key=lambda r: (r.source_time or floor, r.id), reverse=True)
        doomed += [
            r
            for r in ranked[keep:]
            if r.status in ("active", "killed") and r.source_time is not None
        ]
    return sorted(doomed, key=lambda r: (r.source_time or floor, r.id))


def newest_copies(replicas: Iterable[Replica]) -> dict[str, Replica]:
    """Per volume, the newest active copy by source time."""
    newest: dict[str, Replica] = {}
    for r in replicas:
        if r.status != "active" or not r.volume_id or r.source_time is None:
            continue
        best = newest.get(r.volume_id)
        if best is None or (r.source_time, r.id) > (best.source_time or r.source_time, best.id):
            newest[r.volume_id] = r
    return newest


def rpo_breach(
    newest: Replica | None,
    uncopied: Sequence[ManagedImage],
    rpo: timedelta,
    now: datetime,
) -> dict[str, Any] | None:
    """Why a volume is in breach of ``rpo`` in a target, or None: the source image behind
    its newest active copy there is older than ``rpo``, or, with no copy, its oldest image
    not yet copied is."""
    if newest is not None and newest.source_time is not None:
        if now - newest.source_time <= rpo:
            return None
        return {
            "copy_image_id": newest.id,
            "source_image_id": newest.source_id,
            "recovery_point": _iso(newest.source_time),
            "age_s": int((now - newest.source_time).total_seconds()),
        }
    times = [i for i in uncopied if i.made_at is not None]
    if not times:
        return None
    oldest = min(times, key=lambda i: (_made(i), i.id))
    if now - _made(oldest) <= rpo:
        return None
    return {
        "copy_image_id": None,
        "source_image_id": None,
        "recovery_point": None,
        "oldest_uncopied_image_id": oldest.id,
        "oldest_uncopied_at": _iso(oldest.made_at),
        "age_s": int((now - _made(oldest)).total_seconds()),
    }


def shared_value(projects: Sequence[str]) -> str:
    """The suffix recording, on the image's reported tag, that it was shared with exactly
    these projects (a hash of them, so a changed list shares again)."""
    digest = hashlib.sha256(",".join(sorted(projects)).encode()).hexdigest()[:8]
    return f"shared-{digest}"


def reported_with_share(reported: str, projects: Sequence[str]) -> str:
    """``evs-export-reported`` with the sharing recorded: ``completed.shared-<hash>``."""
    return f"{reported.partition('.')[0]}.{shared_value(projects)}"


def is_shared(image: ManagedImage, projects: Sequence[str]) -> bool:
    return (image.reported or "").partition(".")[2] == shared_value(projects)


# -- events (pure) -------------------------------------------------------------------------


def copy_event(
    ctx: EventContext,
    type_: str,
    image: ManagedImage,
    policy: str,
    region: str,
    **data: Any,
) -> dict[str, Any]:
    """An ``evs.copy.*`` event: subject = the source image ID."""
    body: dict[str, Any] = {
        "volume_id": image.volume_id,
        "policy": policy,
        "region": region,
        "source_image_id": image.id,
        "source_image_name": image.name or None,
        **data,
    }
    return cloud_event(ctx, type_, image.id, body)


# -- running it ----------------------------------------------------------------------------


@dataclass
class _PolicyCopies:
    """What one policy's copies came to in this run (its run summary's ``copies``)."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("started", "completed", "failed", "skipped", "queued", "deleted", "rpo_breached"), 0
        )
    )
    regions: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.counts, "regions": self.regions}
        if self.errors:
            out["errors"] = self.errors
        return out


class CopyRun:
    """One invocation's copies and sharing over the listed images (``run_copies``)."""

    def __init__(
        self,
        work: Exports,
        images: list[ManagedImage],
        client: CloudClient,
        ctx: EventContext,
        budget: Budget,
        max_workers: int,
        result: LifecycleResult,
        selections: Mapping[str, Selection],
    ) -> None:
        self.work = work
        self.selections = selections
        self.images = images
        self.client = client
        self.ims = ImsClient(client)
        self.copy = ImsCopyClient(client)
        self.ctx = ctx
        self.budget = budget
        self.max_workers = max_workers
        self.result = result
        self.home = client.settings.region or ""
        self.states: dict[tuple[str, str], CopyState | None] = {}
        self.details: dict[str, dict[str, Any]] | None = None
        self.targets: dict[str, ImsClient] = {}
        self.summary: dict[str, _PolicyCopies] = {}
        self.section: dict[str, Any] = {"in_flight": 0, "errors": []}

    # helpers

    def state(self, image: ManagedImage, region: str) -> CopyState | None:
        key = (image.id, region)
        if key not in self.states:
            self.states[key] = state_of(image, region)
        return self.states[key]

    def target(self, target: CopyTarget) -> ImsClient:
        if target.region not in self.targets:
            self.targets[target.region] = ImsClient(
                target_client(self.client, target.region, target.project_id)
            )
        return self.targets[target.region]

    def record(self, image: ManagedImage, region: str, state: CopyState) -> bool:
        """Write a copy state on the source image; False (logged) when it could not be."""
        try:
            self.ims.tag_image(image.id, {copy_key(region): state.value()})
        except ExportError as exc:
            self.error("record", exc, image_id=image.id, region=region)
            return False
        self.states[(image.id, region)] = state
        return True

    def error(self, step: str, exc: ExportError, **where: Any) -> None:
        log.warning("copy step failed", step=step, error=exc.as_dict(), **where)
        self.section["errors"].append({"step": step, **where, "error": exc.as_dict()})

    def detail(self, image: ManagedImage) -> dict[str, Any] | None:
        """The image's IMS view (encryption, ``min_disk``): one listing of the managed images
        for the run, a GET for one it misses; None when unreadable."""
        if self.details is None:
            try:
                listed = self.ims.list_images(
                    __imagetype="private", tag=f"{MARKER_KEY}={MARKER_VALUE}"
                )
            except ExportError as exc:
                self.error("details", exc)
                listed = []
            self.details = {str(d.get("id")): d for d in listed}
        if image.id not in self.details:
            try:
                self.details[image.id] = self.ims.get_image(image.id)
            except ExportError as exc:
                self.error("details", exc, image_id=image.id)
                return None
        return self.details[image.id]

    def mine(self, plan: PlanRequest) -> tuple[str, str, dict[str, list[ManagedImage]]]:
        policy = policy_value(plan.policy)
        return policy, plan.policy or policy, by_volume(self.images, policy)

    # phases

    def follow(self, plan: PlanRequest, target: CopyTarget) -> None:
        """Read the replications this policy has in flight to ``target``; report the
        finished ones once (the state is recorded first, then the event)."""
        policy, name, groups = self.mine(plan)
        for group in groups.values():
            for image in group:
                state = self.state(image, target.region)
                if state is None or state.state not in IN_FLIGHT_STATES:
                    continue
                if not self.budget.covers():
                    return
                try:
                    self._follow_one(image, state, policy, name, target)
                except ExportError as exc:
                    self.error("follow", exc, image_id=image.id, region=target.region)

    def _follow_one(
        self,
        image: ManagedImage,
        state: CopyState,
        policy: str,
        name: str,
        target: CopyTarget,
    ) -> None:
        job: CopyJob | None = None
        job_id = state.ref if state.state == "job" and state.ref else None
        if job_id is not None:
            try:
                job = self.copy.job(job_id)
            except ApiError as exc:
                if exc.http_status != 404:
                    raise
        replica_id = job.image_id if job is not None else None
        status = {"SUCCESS": "active", "FAIL": "killed"}.get(job.status if job else "")
        if job is not None and status is None:
            return  # INIT or RUNNING: still in flight
        if replica_id is None and status != "killed":
            found = find_replica(self.target(target), image.name)
            if found is not None:
                replica_id = str(found.get("id"))
                status = status or str(found.get("status"))
        if job is None and status not in ("active", "killed"):
            if status is not None or not self._claim_expired(state):
                return  # still being made, or a lost answer not yet given up on
            status = "lost"
        summary = self.summary.setdefault(name, _PolicyCopies())
        if status == "active" and replica_id:
            self.target(target).tag_image(replica_id, replica_tags(image, policy, self.home))
            if self.record(image, target.region, CopyState("done", replica_id)):
                self.result.events.append(
                    copy_event(
                        self.ctx,
                        COMPLETED,
                        image,
                        name,
                        target.region,
                        target_image_id=replica_id,
                        job_id=job_id,
                    )
                )
                summary.counts["completed"] += 1
            return
        if status == "active":
            return  # succeeded, but the replica is not visible yet: the next run
        if status == "lost":
            error = {
                "code": "CopyNotFound",
                "message": f"no replica named {image.name!r} in {target.region} "
                f"{int(CLAIM_GRACE.total_seconds()) // 60} minutes after the request",
            }
        else:
            error = {
                "code": (job.error_code if job else None) or "CopyFailed",
                "message": (job.fail_reason if job else None) or "the replication failed",
            }
        if self.record(image, target.region, CopyState("failed", job_id or error["code"])):
            self.result.events.append(
                copy_event(
                    self.ctx,
                    FAILED,
                    image,
                    name,
                    target.region,
                    target_image_id=replica_id,
                    job_id=job_id,
                    error=error,
                )
            )
            summary.counts["failed"] += 1

    def _claim_expired(self, state: CopyState) -> bool:
        """Whether a copy without a job to read and without a replica is lost: a claim
        older than CLAIM_GRACE, or a job IMS no longer knows."""
        if state.state != "claimed":
            return True
        if not (state.ref.isascii() and state.ref.isdigit() and len(state.ref) <= 12):
            return True
        claimed = datetime.fromtimestamp(int(state.ref), timezone.utc)
        return self.ctx.now() - claimed > CLAIM_GRACE

    def flying(self) -> int:
        """Replications in flight by the images' copy states as this run now knows them."""
        return sum(
            1
            for image in self.images
            for key in image.tags
            if key.startswith(COPY_KEY_PREFIX)
            and (s := self.state(image, key.removeprefix(COPY_KEY_PREFIX))) is not None
            and s.state in IN_FLIGHT_STATES
        )

    def start(self, plans: Sequence[PlanRequest]) -> None:
        """Skip what IMS would refuse, then start the waiting copies oldest first while the
        account has room; the rest wait (``queued`` in the summary)."""
        flying = self.flying()
        waiting: list[tuple[ManagedImage, PlanRequest, CopyTarget]] = []
        for plan in plans:
            _policy, _name, groups = self.mine(plan)
            for target in plan.copies:
                for group in groups.values():
                    states = {i.id: self.state(i, target.region) for i in group}
                    waiting += [(i, plan, target) for i in pending(group, target, states)]
        waiting.sort(key=lambda w: (_made(w[0]), w[0].id, w[2].region))
        room = True
        for image, plan, target in waiting:
            _policy, name, _groups = self.mine(plan)
            summary = self.summary.setdefault(name, _PolicyCopies())
            if not self.budget.covers():
                summary.counts["queued"] += 1
                continue
            detail = self.detail(image)
            if detail is None:
                summary.counts["queued"] += 1
                continue
            reason = skip_reason(detail, self.home, target.region)
            if reason is not None:
                if self.record(image, target.region, CopyState("skipped", reason)):
                    extra: dict[str, Any] = {"reason": reason, "job_id": None}
                    if reason == "too_large":
                        extra.update(
                            min_disk=detail.get("min_disk"),
                            limit_gb=size_limit(self.home, target.region),
                        )
                    self.result.events.append(
                        copy_event(self.ctx, SKIPPED, image, name, target.region, **extra)
                    )
                    summary.counts["skipped"] += 1
                continue
            if not room or flying >= MAX_IN_FLIGHT:
                summary.counts["queued"] += 1
                continue
            outcome = self._start_one(image, name, target)
            if outcome == "started":
                flying += 1
                summary.counts["started"] += 1
            elif outcome == "refused":
                room = False
                summary.counts["queued"] += 1
            elif outcome == "ambiguous":
                flying += 1
            elif outcome == "not_claimed":
                summary.counts["queued"] += 1
        self.section["in_flight"] = flying

    def _start_one(self, image: ManagedImage, name: str, target: CopyTarget) -> str:
        """Claim, request, record the job, report: ``started``, ``refused`` (nothing began;
        waits), ``failed`` (reported), ``ambiguous`` (claim kept, found by name later) or
        ``not_claimed``."""
        claim = CopyState("claimed", str(int(self.ctx.now().timestamp())))
        if not self.record(image, target.region, claim):
            return "not_claimed"
        try:
            job_id = self.copy.start_copy(
                image.id,
                name=image.name,
                region=target.region,
                project_name=target.project_name,
                agency_name=target.agency_name,
                description=f"evs-export copy of {image.id} from {self.home}",
            )
        except (ApiError, TransportError) as exc:
            refused = isinstance(exc, ApiError) and (
                exc.code in REFUSED_CODES or exc.http_status in (429, 503)
            )
            if refused or (isinstance(exc, TransportError) and not exc.maybe_sent):
                self.record(image, target.region, CopyState("queued"))
                return "refused"
            if is_ambiguous(exc):
                self.error("start", exc, image_id=image.id, region=target.region)
                return "ambiguous"
            if self.record(image, target.region, CopyState("failed", exc.code)):
                self.result.events.append(
                    copy_event(
                        self.ctx,
                        FAILED,
                        image,
                        name,
                        target.region,
                        target_image_id=None,
                        job_id=None,
                        error=exc.as_dict(),
                    )
                )
                self.summary.setdefault(name, _PolicyCopies()).counts["failed"] += 1
            return "failed"
        # The request was made once: report it even if recording the job ID fails (the
        # claim then stands, and a later run finds the replica by name). A job ID that would
        # not fit the tag is not recorded either, for the same reason.
        running = CopyState("job", job_id)
        if running.value() != "job":
            self.record(image, target.region, running)
        self.result.events.append(
            copy_event(
                self.ctx,
                STARTED,
                image,
                name,
                target.region,
                target_image_id=None,
                job_id=job_id or None,
            )
        )
        return "started"

    def in_target(self, plan: PlanRequest, target: CopyTarget) -> None:
        """The policy's copies in ``target``: ``keep``, the recovery point per volume, and
        ``rpo`` breaches (one event per volume and run)."""
        policy, name, groups = self.mine(plan)
        summary = self.summary.setdefault(name, _PolicyCopies())
        there = self.target(target)
        try:
            path = f"/v2/{there.client.project_id}/images/resource_instances/action"
            listed = there.client.resources_by_tag(
                "ims", path, {MARKER_KEY: [COPY_MARKER], POLICY_KEY: [policy]}, string_paging=True
            )
        except ExportError as exc:
            self.error("target_listing", exc, region=target.region)
            summary.errors.append({"region": target.region, "error": exc.as_dict()})
            return
        replicas = [r for r in (parse_replica(x) for x in listed) if r is not None]
        if target.keep is not None and not plan.dry_run:
            doomed = replica_deletions(replicas, target.keep)

            def delete(replica: Replica) -> bool | ExportError | None:
                if not self.budget.covers():
                    return None
                try:
                    there.delete_image(replica.id)
                except ExportError as exc:
                    return exc
                return True

            gone: set[str] = set()
            for replica, done in zip(
                doomed, parallel_map(delete, doomed, self.max_workers), strict=True
            ):
                if isinstance(done, ExportError):
                    self.error("delete", done, image_id=replica.id, region=target.region)
                if done is not True:
                    continue
                gone.add(replica.id)
                summary.counts["deleted"] += 1
                data = {
                    "image_id": replica.id,
                    "volume_id": replica.volume_id,
                    "policy": name,
                    "region": target.region,
                    "source_image_id": replica.source_id,
                    "made_at": _iso(replica.source_time),
                    "status": replica.status,
                    "not_kept_by": ["keep"],
                }
                self.result.events.append(cloud_event(self.ctx, DELETED, replica.volume_id, data))
            replicas = [r for r in replicas if r.id not in gone]
        newest = newest_copies(replicas)
        now = plan.time
        selection = self.selections.get(plan.policy or "")
        volumes = sorted(set(groups) | set(newest) | set(selection.exported if selection else ()))
        ages: dict[str, Any] = {}
        for volume_id in volumes:
            best = newest.get(volume_id)
            ages[volume_id] = (
                None
                if best is None or best.source_time is None
                else {
                    "image_id": best.id,
                    "source_image_id": best.source_id,
                    "recovery_point": _iso(best.source_time),
                    "age_s": int((now - best.source_time).total_seconds()),
                }
            )
        summary.regions[target.region] = ages
        limit = parse_duration(target.rpo or "")
        if limit is None:
            return
        for volume_id in volumes:
            uncopied = [
                i
                for i in groups.get(volume_id, [])
                if i.status == "active"
                and i.managed
                and (self.state(i, target.region) or CopyState("")).state != "done"
            ]
            breach = rpo_breach(newest.get(volume_id), uncopied, limit, now)
            if breach is None:
                continue
            data = {"volume_id": volume_id, "policy": name, "region": target.region}
            data.update(breach, rpo=target.rpo)
            self.result.events.append(cloud_event(self.ctx, RPO_BREACHED, volume_id, data))
            summary.counts["rpo_breached"] += 1

    def share(self, plan: PlanRequest) -> None:
        """Share the policy's active, unencrypted images not yet shared with ``share_with``,
        then record it on each (``evs-export-reported`` = ``<kind>.shared-<hash>``)."""
        projects = list(plan.share_with)
        _policy, _name, groups = self.mine(plan)
        section = self.result.sections.setdefault("sharing", {"shared": 0, "not_shared": []})
        due = [
            i
            for group in groups.values()
            for i in group
            if i.status == "active" and i.managed and i.reported and not is_shared(i, projects)
        ]
        if not due or not self.budget.covers():
            return
        shareable: list[ManagedImage] = []
        for image in due:
            detail = self.detail(image)
            if detail is None:
                continue
            if str(detail.get("__system_encrypted", "0")) == "1":
                # Never shared; recorded as handled so it is not looked at every run.
                section["not_shared"].append({"image_id": image.id, "reason": "encrypted"})
                self._record_share(image, projects)
            else:
                shareable.append(image)
        for start in range(0, len(shareable), SHARE_BATCH):
            batch = shareable[start : start + SHARE_BATCH]
            if not self.budget.covers():
                return
            try:
                self.copy.share([i.id for i in batch], projects)
            except ExportError as exc:
                self.error("share", exc, images=len(batch))
                section["error"] = exc.as_dict()
                return
            section["shared"] += sum(1 for i in batch if self._record_share(i, projects))

    def _record_share(self, image: ManagedImage, projects: Sequence[str]) -> bool:
        value = reported_with_share(image.reported or "completed", projects)
        try:
            self.ims.tag_image(image.id, {REPORTED_KEY: value})
        except ExportError as exc:
            self.error("record_share", exc, image_id=image.id)
            return False
        return True


def run_copies(
    work: Exports,
    images: list[ManagedImage],
    client: CloudClient,
    ctx: EventContext,
    budget: Budget,
    max_workers: int,
    result: LifecycleResult,
    reported: Sequence[str] = (),
    selections: Mapping[str, Selection] | None = None,
) -> None:
    """The copies and sharing of the work's timer policies (see the module's docstring).
    ``reported``: images reconcile reported in this run (their reported tag is now set).
    A bug here never costs the run's exports or reports: it becomes the ``copies`` section's
    error (what was recorded stays recorded; the next run goes on from there)."""
    try:
        _run_copies(
            work, images, client, ctx, budget, max_workers, result, reported, selections or {}
        )
    except Exception as exc:
        log.exception("copies crashed")
        error = {"code": "InternalError", "message": f"unexpected {type(exc).__name__}"}
        result.sections["copies"] = {"error": error}


def _run_copies(
    work: Exports,
    images: list[ManagedImage],
    client: CloudClient,
    ctx: EventContext,
    budget: Budget,
    max_workers: int,
    result: LifecycleResult,
    reported: Sequence[str],
    selections: Mapping[str, Selection],
) -> None:
    plans = [p for p in work.plans if p.policy and (p.copies or p.share_with)]
    if not plans:
        return
    if client.settings.region is None:
        error = ConfigError("REGION", "set REGION: copies need the function's own region")
        result.sections["copies"] = {"error": error.as_dict()}
        return
    done = set(reported)
    images = [
        i
        if i.id not in done or i.reported
        else ManagedImage(
            i.id,
            i.name,
            i.status,
            i.created_at,
            i.updated_at,
            {**i.tags, REPORTED_KEY: "completed" if i.status == "active" else "image_failed"},
        )
        for i in images
    ]
    run = CopyRun(work, images, client, ctx, budget, max_workers, result, selections)
    for plan in plans:
        for target in plan.copies:
            run.follow(plan, target)
    if not any(p.dry_run for p in plans):
        run.start([p for p in plans if not p.dry_run])
    for plan in plans:
        for target in plan.copies:
            run.in_target(plan, target)
        if plan.share_with and not plan.dry_run:
            run.share(plan)
    section = run.section
    if not section["errors"]:
        del section["errors"]
    if any(p.copies for p in plans) or "errors" in section:
        result.sections["copies"] = section
    for name, summary in run.summary.items():
        result.copies[name] = summary.as_dict()
