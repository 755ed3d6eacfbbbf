"""The pure rules: which finished images to report, which images retention deletes, which
volumes are stale, and the events each decision becomes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from function.lifecycle.images import ManagedImage
from function.lifecycle.tags import NO_POLICY, TRIGGER_KEY, policy_value
from function.results import EventContext, cloud_event
from function.retention import (
    Candidate,
    Decision,
    Orphans,
    Rules,
    decide,
    decide_orphans,
    is_stale,
    parse_duration,
)
from function.times import utc_z
from function.work import Exports

COMPLETED = "evs.export.completed"
IMAGE_FAILED = "evs.export.image_failed"
DELETED = "evs.image.deleted"
ORPHANED = "evs.image.orphaned"
STALE = "evs.backup.stale"
REPORT_KIND = {"active": "completed", "killed": "image_failed"}
REPORT_TYPE = {"completed": COMPLETED, "image_failed": IMAGE_FAILED}
IN_PROGRESS = ("queued", "saving")
DELETABLE = ("active", "killed")


def to_report(images: Iterable[ManagedImage]) -> list[tuple[ManagedImage, str]]:
    """Finished images not yet reported, oldest first, with their report kind."""
    due = [
        (image, REPORT_KIND[image.status])
        for image in images
        if image.managed and image.reported is None and image.status in REPORT_KIND
    ]
    return sorted(due, key=lambda pair: pair[0].sort_key())


def duration_s(image: ManagedImage) -> int | None:
    """Seconds from the export's start (its tag, else created_at) to the image's last update."""
    start = image.started or image.created_at
    if start is None or image.updated_at is None:
        return None
    return max(0, round((image.updated_at - start).total_seconds()))


def _policy_out(image: ManagedImage) -> str | None:
    return None if image.policy in (None, NO_POLICY) else image.policy


def report_event(ctx: EventContext, image: ManagedImage, kind: str) -> dict[str, Any]:
    """The ``evs.export.completed`` / ``evs.export.image_failed`` event of one image."""
    data: dict[str, Any] = {
        "volume_id": image.volume_id,
        "image_id": image.id,
        "image_name": image.name,
        "status": image.status,
        "policy": _policy_out(image),
        "duration_s": duration_s(image),
    }
    if image.tags.get(TRIGGER_KEY):
        data["export_trigger"] = image.tags[TRIGGER_KEY]
    return cloud_event(ctx, REPORT_TYPE[kind], image.volume_id, data)


@dataclass(frozen=True)
class KeepRule:
    """The life-cycle rules of one policy (its tag value): retention (``keep`` and the
    ``function.retention`` rules), orphans and stale alerts; nothing is deleted when
    ``dry_run``. ``now`` and ``zone`` are the run's trigger time and its time zone."""

    policy: str
    keep: int | None = None
    dry_run: bool = False
    rules: Rules | None = None  # None: keep only
    orphans: Orphans | None = None
    stale_after: str | None = None
    now: datetime | None = None
    name: str | None = None  # the policy as written

    @property
    def retention(self) -> Rules:
        return self.rules if self.rules is not None else Rules(keep=self.keep)

    @property
    def deletes(self) -> bool:
        """Whether any rule of this policy may delete images."""
        return self.retention.any() or self.orphans is not None


def keep_rules(work: Exports) -> list[KeepRule]:
    """One rule per policy of the work's plans that has any life-cycle key: ``keep`` alone,
    as before, and for timer policies every rule (orphan reports need no key)."""
    rules: dict[str, KeepRule] = {}
    for plan in work.plans:
        if not plan.policy:
            continue
        extra = plan.policy_rules
        if extra is None:
            if plan.keep is None:
                continue
            rule = KeepRule(policy_value(plan.policy), plan.keep, plan.dry_run)
        else:
            rule = KeepRule(
                policy_value(plan.policy),
                plan.keep,
                plan.dry_run,
                rules=extra.rules,
                orphans=extra.orphans,
                stale_after=extra.stale_after,
                now=plan.time,
                name=plan.policy,
            )
        rules[rule.policy] = rule
    return list(rules.values())


def _candidate(image: ManagedImage) -> Candidate:
    floor = datetime.min.replace(tzinfo=timezone.utc)
    return Candidate(image.id, image.made_at or floor, image.status)


def _deletable(image: ManagedImage, done: set[str]) -> bool:
    """Never deleted: an image without the marker, one still being made, one whose
    completion has not been reported (``done``: reported in this run)."""
    return (
        image.status in DELETABLE
        and image.managed
        and (image.reported is not None or image.id in done)
    )


def by_volume(images: Iterable[ManagedImage], policy: str) -> dict[str, list[ManagedImage]]:
    """The images ``policy`` made, per source volume (deleted ones left out)."""
    groups: dict[str, list[ManagedImage]] = {}
    for image in images:
        if image.policy == policy and image.volume_id and image.status != "deleted":
            groups.setdefault(image.volume_id, []).append(image)
    return groups


def decisions_for(
    group: Sequence[ManagedImage], rule: KeepRule, vanished: bool, now: datetime
) -> list[Decision]:
    """What the rules make of one volume's images (orphans: the orphan rule instead)."""
    candidates = [_candidate(i) for i in group]
    if vanished and rule.orphans is not None:
        return decide_orphans(candidates, rule.orphans, now)
    if vanished or not rule.retention.any():
        return []
    zone = now.tzinfo or timezone.utc
    return decide(candidates, rule.retention, now, zone)


def to_delete(
    images: Iterable[ManagedImage],
    rule: KeepRule,
    reported: Iterable[str] = (),
    vanished: Iterable[str] = (),
    now: datetime | None = None,
) -> list[ManagedImage]:
    """The images ``rule`` removes, oldest first (see ``deletions``)."""
    return [image for image, _ in deletions(images, rule, reported, vanished, now)]


def deletions(
    images: Iterable[ManagedImage],
    rule: KeepRule,
    reported: Iterable[str] = (),
    vanished: Iterable[str] = (),
    now: datetime | None = None,
) -> list[tuple[ManagedImage, tuple[str, ...]]]:
    """The images ``rule`` removes, oldest first, each with the rules that no longer keep
    it. Per volume, the images the policy made go through ``function.retention``; those of a
    ``vanished`` volume through the orphan rule when the policy has one (else none go)."""
    done, gone = set(reported), set(vanished)
    when = now or rule.now or datetime.now(timezone.utc)
    doomed: list[tuple[ManagedImage, tuple[str, ...]]] = []
    for volume_id, group in by_volume(images, rule.policy).items():
        index = {i.id: i for i in group}
        for decision in decisions_for(group, rule, volume_id in gone, when):
            image = index[decision.image_id]
            # An image whose time is unknown ranks oldest but is never deleted for it.
            if decision.delete and _deletable(image, done) and image.made_at is not None:
                doomed.append((image, decision.not_kept_by))
    return sorted(doomed, key=lambda pair: _candidate(pair[0]).order())


def deleted_event(
    ctx: EventContext, image: ManagedImage, not_kept_by: Sequence[str] = ()
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "image_id": image.id,
        "image_name": image.name,
        "volume_id": image.volume_id,
        "policy": _policy_out(image),
        "created_at": utc_z(image.created_at),
        "status": image.status,
    }
    if image.run_time is not None:
        data["made_at"] = utc_z(image.run_time)
    if not_kept_by:
        data["not_kept_by"] = list(not_kept_by)
    return cloud_event(ctx, DELETED, image.volume_id, data)


def orphaned_event(ctx: EventContext, image: ManagedImage) -> dict[str, Any]:
    """``evs.image.orphaned``: an image of a policy whose source volume no longer exists."""
    data: dict[str, Any] = {
        "image_id": image.id,
        "image_name": image.name,
        "volume_id": image.volume_id,
        "policy": _policy_out(image),
        "created_at": utc_z(image.made_at),
        "status": image.status,
    }
    return cloud_event(ctx, ORPHANED, image.id, data)


def newest_active(group: Iterable[ManagedImage]) -> ManagedImage | None:
    active = [i for i in group if i.status == "active" and i.made_at is not None]
    return max(active, key=lambda i: (i.made_at, i.id), default=None)


def stale_events(
    ctx: EventContext,
    images: Iterable[ManagedImage],
    rule: KeepRule,
    volume_ids: Iterable[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """One ``evs.backup.stale`` per volume whose newest active image of the policy is older
    than ``stale_after``, or missing."""
    limit = parse_duration(rule.stale_after or "")
    if limit is None:
        return []
    groups = by_volume(images, rule.policy)
    events: list[dict[str, Any]] = []
    for volume_id in volume_ids:
        newest = newest_active(groups.get(volume_id, []))
        made = newest.made_at if newest is not None else None
        if not is_stale(made, now, limit):
            continue
        data = {
            "volume_id": volume_id,
            "policy": rule.name or rule.policy,
            "newest_image_id": newest.id if newest is not None else None,
            "newest_created_at": utc_z(made),
            "stale_after": rule.stale_after,
        }
        events.append(cloud_event(ctx, STALE, volume_id, data))
    return events
