"""Running the copies and sharing of one invocation (``run_copies``): the requests, in the
home and target regions, each within the time budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import structlog

from function.budget import Budget
from function.cloud.client import CloudClient, is_ambiguous
from function.cloud.ims import ImsClient
from function.cloud.imscopy import CopyJob, ImsCopyClient, find_replica, target_client
from function.copies.rules import (
    CLAIM_GRACE,
    COMPLETED,
    COPY_KEY_PREFIX,
    FAILED,
    IN_FLIGHT_STATES,
    MAX_IN_FLIGHT,
    REFUSED_CODES,
    SKIPPED,
    STARTED,
    CopyState,
    PolicyCopies,
    _made,
    copy_event,
    copy_key,
    pending,
    replica_tags,
    size_limit,
    skip_reason,
    state_of,
)
from function.copies.sharing import share
from function.copies.target import in_target
from function.errors import ApiError, ConfigError, ExportError, TransportError
from function.lifecycle import (
    REPORTED_KEY,
    LifecycleResult,
    ManagedImage,
    by_volume,
    policy_value,
)
from function.lifecycle.runner import ImageDetails
from function.results import EventContext
from function.work import CopyTarget, Exports, PlanRequest, Selection

log = structlog.get_logger("evs_export.copies")


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
        details: ImageDetails,
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
        self.details = details
        self.targets: dict[str, ImsClient] = {}
        self.summary: dict[str, PolicyCopies] = {}
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
        """The image's IMS view (encryption, ``min_disk``), from the run's one listing
        (``lifecycle.runner.ImageDetails``); None when unreadable."""
        try:
            return self.details.of(image.id)
        except ExportError as exc:
            self.error("details", exc, image_id=image.id)
            return None

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
        summary = self.summary.setdefault(name, PolicyCopies())
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
            summary = self.summary.setdefault(name, PolicyCopies())
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
                self.summary.setdefault(name, PolicyCopies()).counts["failed"] += 1
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


def run_copies(
    work: Exports,
    images: list[ManagedImage],
    client: CloudClient,
    ctx: EventContext,
    budget: Budget,
    max_workers: int,
    result: LifecycleResult,
    details: ImageDetails,
    reported: Sequence[str] = (),
    selections: Mapping[str, Selection] | None = None,
) -> None:
    """The copies and sharing of the work's timer policies (see the module's docstring).
    ``reported``: images reconcile reported in this run (their reported tag is now set).
    A bug here never costs the run's exports or reports: it becomes the ``copies`` section's
    error (what was recorded stays recorded; the next run goes on from there)."""
    try:
        plans = [p for p in work.plans if p.policy and (p.copies or p.share_with)]
        if not plans:
            return
        if client.settings.region is None:
            missing = ConfigError("REGION", "set REGION: copies need the function's own region")
            result.sections["copies"] = {"error": missing.as_dict()}
            return
        done = set(reported)
        images = [
            i
            if i.id not in done or i.reported
            else replace(
                i,
                tags={
                    **i.tags,
                    REPORTED_KEY: "completed" if i.status == "active" else "image_failed",
                },
            )
            for i in images
        ]
        run = CopyRun(
            work, images, client, ctx, budget, max_workers, result, details, selections or {}
        )
        for plan in plans:
            for target in plan.copies:
                run.follow(plan, target)
        if not any(p.dry_run for p in plans):
            run.start([p for p in plans if not p.dry_run])
        for plan in plans:
            for target in plan.copies:
                in_target(run, plan, target)
            if plan.share_with and not plan.dry_run:
                share(run, plan)
        section = run.section
        if not section["errors"]:
            del section["errors"]
        if any(p.copies for p in plans) or "errors" in section:
            result.sections["copies"] = section
        for name, summary in run.summary.items():
            result.copies[name] = summary.as_dict()
    except Exception as exc:
        log.exception("copies crashed")
        error = {"code": "InternalError", "message": f"unexpected {type(exc).__name__}"}
        result.sections["copies"] = {"error": error}
