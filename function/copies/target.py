"""The copies of a policy in a target region: ``keep`` per volume, the recovery point,
and ``rpo`` breaches (one event per volume and run)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from function.concurrency import parallel_map
from function.copies.rules import (
    COPY_MARKER,
    RPO_BREACHED,
    CopyState,
    PolicyCopies,
    Replica,
    newest_copies,
    parse_replica,
    replica_deletions,
    rpo_breach,
)
from function.errors import ExportError
from function.lifecycle import (
    DELETED,
    MARKER_KEY,
    POLICY_KEY,
)
from function.results import cloud_event
from function.retention import parse_duration
from function.times import utc_z
from function.work import CopyTarget, PlanRequest

if TYPE_CHECKING:
    from function.copies.runner import CopyRun


def in_target(run: CopyRun, plan: PlanRequest, target: CopyTarget) -> None:
    """The policy's copies in ``target``: ``keep``, the recovery point per volume, and
    ``rpo`` breaches (one event per volume and run)."""
    policy, name, groups = run.mine(plan)
    summary = run.summary.setdefault(name, PolicyCopies())
    there = run.target(target)
    try:
        path = f"/v2/{there.client.project_id}/images/resource_instances/action"
        listed = there.client.resources_by_tag(
            "ims", path, {MARKER_KEY: [COPY_MARKER], POLICY_KEY: [policy]}, string_paging=True
        )
    except ExportError as exc:
        run.error("target_listing", exc, region=target.region)
        summary.errors.append({"region": target.region, "error": exc.as_dict()})
        return
    replicas = [r for r in (parse_replica(x) for x in listed) if r is not None]
    if target.keep is not None and not plan.dry_run:
        doomed = replica_deletions(replicas, target.keep)

        def delete(replica: Replica) -> bool | ExportError | None:
            if not run.budget.covers():
                return None
            try:
                there.delete_image(replica.id)
            except ExportError as exc:
                return exc
            return True

        gone: set[str] = set()
        for replica, done in zip(
            doomed, parallel_map(delete, doomed, run.max_workers), strict=True
        ):
            if isinstance(done, ExportError):
                run.error("delete", done, image_id=replica.id, region=target.region)
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
                "made_at": utc_z(replica.source_time),
                "status": replica.status,
                "not_kept_by": ["keep"],
            }
            run.result.events.append(cloud_event(run.ctx, DELETED, replica.volume_id, data))
        replicas = [r for r in replicas if r.id not in gone]
    newest = newest_copies(replicas)
    now = plan.time
    selection = run.selections.get(plan.policy or "")
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
                "recovery_point": utc_z(best.source_time),
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
            and (run.state(i, target.region) or CopyState("")).state != "done"
        ]
        breach = rpo_breach(newest.get(volume_id), uncopied, limit, now)
        if breach is None:
            continue
        data = {"volume_id": volume_id, "policy": name, "region": target.region}
        data.update(breach, rpo=target.rpo)
        run.result.events.append(cloud_event(run.ctx, RPO_BREACHED, volume_id, data))
        summary.counts["rpo_breached"] += 1
