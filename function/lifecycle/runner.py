"""Running the life cycle: one listing of the function's images, then reconcile, retention,
orphans, stale alerts and copies, each write within the time budget (what is left is picked
up by the next run)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import structlog

from function.budget import LIFECYCLE_KEEP_MS, Budget
from function.cloud.client import CloudClient
from function.cloud.ims import ImsClient
from function.concurrency import parallel_map
from function.errors import ApiError, ExportError
from function.lifecycle.images import (
    ManagedImage,
    incomplete,
    just_accepted,
    parse_resource,
    with_detail,
)
from function.lifecycle.rules import (
    DELETABLE,
    IN_PROGRESS,
    REPORT_KIND,
    KeepRule,
    _candidate,
    _policy_out,
    by_volume,
    decisions_for,
    deleted_event,
    deletions,
    keep_rules,
    orphaned_event,
    report_event,
    stale_events,
    to_report,
)
from function.lifecycle.tags import MARKER_KEY, MARKER_VALUE, ORPHANED_KEY, REPORTED_KEY
from function.results import EventContext
from function.times import utc_z
from function.work import Exports, Outcome, Selection

log = structlog.get_logger("evs_export.lifecycle")

VOLUME_READS_MAX = 3  # up to this many volumes are read one by one; more, with one listing
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class LifecycleResult:
    """Events to add to the invocation's results, notes, and the return value's sections."""

    events: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    per_policy: dict[str, dict[str, int]] = field(default_factory=dict)  # deleted, orphaned, stale
    copies: dict[str, dict[str, Any]] = field(default_factory=dict)  # per policy (function.copies)


def run_tasks(
    work: Exports,
    outcomes: Sequence[Outcome],
    ctx: EventContext,
    connect: Callable[[], CloudClient],
    max_workers: int,
    selections: Mapping[str, Selection] | None = None,
) -> LifecycleResult:
    """Reconcile and/or retention (``work.tasks``) over one listing of the managed images."""
    result = LifecycleResult()
    rules = keep_rules(work) if "retention" in work.tasks else []
    if "reconcile" not in work.tasks and not rules:
        return result
    try:
        client = connect()
        if not client.runtime.budget.covers(keep_ms=LIFECYCLE_KEEP_MS):
            # The exports and the hand-off came first; the next run picks this up.
            raise ExportError(
                "BudgetExhausted", "not enough time left in this invocation; the next run does it"
            )
        ims = ImsClient(client)
        listed = ims.images_by_tag({MARKER_KEY: [MARKER_VALUE]})
    except ExportError as exc:
        log.error("could not list the function's images", error=exc.as_dict())
        result.notes.append(f"life cycle skipped: could not list images ({exc.message})")
        section = {"error": exc.as_dict()}
        if "reconcile" in work.tasks:
            result.sections["reconcile"] = section
        if any(rule.deletes for rule in rules):
            result.sections["retention"] = section
        return result
    budget = Budget(client.runtime.remaining_ms, keep_ms=LIFECYCLE_KEEP_MS)
    images = [i for i in (parse_resource(r) for r in listed) if i is not None]
    policies = {rule.policy for rule in rules}
    reconciling = "reconcile" in work.tasks

    def needs_detail(image: ManagedImage) -> bool:
        """A finished image to report needs its times (``duration_s``); one that retention
        ranks needs status, name and creation time."""
        if not image.managed:
            return False
        if reconciling and image.reported is None and image.status in (None, *REPORT_KIND):
            return incomplete(image) or image.updated_at is None
        return image.policy in policies and incomplete(image)

    details = ImageDetails(ims)
    images = _complete(details, images, needs_detail, budget, max_workers)
    known = {i.id for i in images}
    images += [i for i in just_accepted(outcomes, ctx.now()) if i.id not in known]

    reported: list[str] = []
    if "reconcile" in work.tasks:
        reported = _reconcile(ims, images, ctx, budget, max_workers, result)
    if any(plan.copies or plan.share_with for plan in work.plans):
        from function.copies import run_copies

        run_copies(
            work, images, client, ctx, budget, max_workers, result, details, reported, selections
        )
    if rules:
        vanished = _vanished(client, images, rules, selections or {}, budget)
        _retention(ims, images, rules, reported, vanished, ctx, budget, max_workers, result)
        _orphans(ims, images, rules, vanished, ctx, budget, max_workers, result)
        for rule in rules:
            selection = (selections or {}).get(rule.name or "")
            if rule.stale_after and selection is not None and rule.now is not None:
                stale = stale_events(ctx, images, rule, selection.exported, rule.now)
                result.events.extend(stale)
                _count(result, rule, "stale", len(stale))
    return result


def _count(result: LifecycleResult, rule: KeepRule, key: str, n: int) -> None:
    counts = result.per_policy.setdefault(rule.name or rule.policy, {})
    counts[key] = counts.get(key, 0) + n


def _vanished(
    client: CloudClient,
    images: list[ManagedImage],
    rules: list[KeepRule],
    selections: Mapping[str, Selection],
    budget: Budget,
) -> set[str]:
    """Source volumes of the policies' images that no longer exist. Volumes this run found
    are not asked about; a few are read one by one (404: gone), more with one listing. A
    volume whose existence cannot be read counts as existing (nothing is orphaned by doubt)."""
    from function.cloud.evs import EvsClient

    found: set[str] = set()
    for selection in selections.values():
        found |= selection.existing
    unknown = sorted(
        {v for rule in rules if rule.name for v in by_volume(images, rule.policy)} - found
    )
    if not unknown or not budget.covers():
        return set()
    evs = EvsClient(client)
    gone: set[str] = set()
    if len(unknown) <= VOLUME_READS_MAX:
        for volume_id in unknown:
            try:
                evs.get_volume(volume_id)
            except ApiError as exc:
                if exc.http_status == 404:
                    gone.add(volume_id)
                else:
                    log.warning("could not read a volume", volume_id=volume_id, error=exc.as_dict())
            except ExportError as exc:
                log.warning("could not read a volume", volume_id=volume_id, error=exc.as_dict())
        return gone
    try:
        existing = {v.id for v in evs.list_volumes()}
    except ExportError as exc:
        log.warning("could not list volumes; no orphans this run", error=exc.as_dict())
        return set()
    return {v for v in unknown if v not in existing}


class ImageDetails:
    """IMS's own view of the function's images, read at most once per run: one paged
    listing filtered by the marker tag (``GET /v2/cloudimages``, 500 a page) gives every
    managed image's times, size and encryption, which the tag query lacks (PLATFORM.md
    10.2); an image it misses (made since) gets one GET of its own. Shared by the life
    cycle and the copies."""

    def __init__(self, ims: ImsClient) -> None:
        self.ims = ims
        self._listed: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def listed(self) -> dict[str, dict[str, Any]]:
        """The listing by image ID (empty when it failed; the failure is logged)."""
        with self._lock:
            if self._listed is None:
                try:
                    found = self.ims.list_images(
                        __imagetype="private", tag=f"{MARKER_KEY}={MARKER_VALUE}"
                    )
                except ExportError as exc:
                    log.warning("could not list the managed images' details", error=exc.as_dict())
                    found = []
                self._listed = {str(d.get("id")): d for d in found}
            return self._listed

    def of(self, image_id: str) -> dict[str, Any]:
        """One image's view: from the listing, else one GET (ExportError when unreadable)."""
        listed = self.listed()
        if image_id not in listed:
            detail = self.ims.get_image(image_id)
            with self._lock:
                listed[image_id] = detail
        return listed[image_id]


def _complete(
    details: ImageDetails,
    images: list[ManagedImage],
    wanted: Callable[[ManagedImage], bool],
    budget: Budget,
    max_workers: int,
) -> list[ManagedImage]:
    """Fill in what the tag listing lacks for the images this run works on (times, and a
    status or name where missing), from ``details``."""
    if not any(wanted(i) for i in images):
        return images
    listed = details.listed()

    def complete(image: ManagedImage) -> ManagedImage:
        if image.id in listed:
            return with_detail(image, listed[image.id])
        if not (wanted(image) and budget.covers()):
            return image
        try:
            return with_detail(image, details.of(image.id))
        except ExportError as exc:
            log.warning("could not read image", image_id=image.id, error=exc.as_dict())
            return image

    return parallel_map(complete, images, max_workers)


def _reconcile(
    ims: ImsClient,
    images: list[ManagedImage],
    ctx: EventContext,
    budget: Budget,
    max_workers: int,
    result: LifecycleResult,
) -> list[str]:
    """Report finished images: tag first, then the event, so a report is never repeated."""
    due = to_report(images)

    def report(pair: tuple[ManagedImage, str]) -> tuple[ManagedImage, str] | ExportError | None:
        image, kind = pair
        if not budget.covers():
            return None
        try:
            if image.updated_at is None:
                # The tag listing has no times (PLATFORM.md 10.2): the image's own GET gives
                # when it finished, for ``duration_s``.
                image = with_detail(image, ims.get_image(image.id))
            ims.tag_image(image.id, {REPORTED_KEY: kind})
        except ExportError as exc:
            log.warning("could not record a report", image_id=image.id, error=exc.as_dict())
            return exc
        return image, kind

    outcomes = parallel_map(report, due, max_workers)
    counts = {"completed": 0, "image_failed": 0, "not_recorded": 0, "deferred": 0}
    reported: list[str] = []
    for (image, kind), done in zip(due, outcomes, strict=True):
        if isinstance(done, tuple):
            image = done[0]
            result.events.append(report_event(ctx, image, kind))
            reported.append(image.id)
            counts[kind] += 1
        elif done is None:
            counts["deferred"] += 1
        else:
            counts["not_recorded"] += 1
    counts["in_progress"] = sum(1 for i in images if i.managed and i.status in IN_PROGRESS)
    if counts["deferred"]:
        result.notes.append(
            f"{counts['deferred']} finished image(s) left for the next reconcile (time budget)"
        )
    result.sections["reconcile"] = counts
    return reported


def _retention(
    ims: ImsClient,
    images: list[ManagedImage],
    rules: list[KeepRule],
    reported: list[str],
    vanished: set[str],
    ctx: EventContext,
    budget: Budget,
    max_workers: int,
    result: LifecycleResult,
) -> None:
    rules = [rule for rule in rules if rule.deletes]
    if not rules:
        return
    section: dict[str, Any] = {"deleted": 0, "failed": []}
    doomed: list[tuple[ManagedImage, tuple[str, ...], KeepRule]] = []
    for rule in rules:
        chosen = deletions(images, rule, reported, vanished)
        if rule.dry_run:
            section.setdefault("dry_run", []).extend(i.id for i, _ in chosen)
            result.sections.setdefault("retention_rules", {})[rule.name or rule.policy] = (
                dry_run_report(images, rule, vanished)
            )
            continue
        doomed.extend((image, why, rule) for image, why in chosen)

    def delete(item: tuple[ManagedImage, tuple[str, ...], KeepRule]) -> ExportError | bool | None:
        if not budget.covers():
            return None
        try:
            ims.delete_image(item[0].id)
        except ExportError as exc:
            return exc
        return True

    deferred = 0
    for (image, why, rule), done in zip(
        doomed, parallel_map(delete, doomed, max_workers), strict=True
    ):
        if done is True:
            result.events.append(deleted_event(ctx, image, why))
            section["deleted"] += 1
            _count(result, rule, "deleted", 1)
        elif done is None:
            deferred += 1
        elif isinstance(done, ExportError):
            log.warning(
                "retention could not delete an image",
                image_id=image.id,
                volume_id=image.volume_id,
                error=done.as_dict(),
            )
            section["failed"].append(
                {
                    "image_id": image.id,
                    "image_name": image.name,
                    "volume_id": image.volume_id,
                    "policy": _policy_out(image),
                    "error": done.as_dict(),
                }
            )
    if deferred:
        section["deferred"] = deferred
        result.notes.append(f"{deferred} image deletion(s) left for the next run (time budget)")
    result.sections["retention"] = section


def dry_run_report(
    images: list[ManagedImage], rule: KeepRule, vanished: set[str]
) -> list[dict[str, Any]]:
    """What each rule would do with each image of the policy (a dry run's explanation):
    the rules keeping it, and whether it would go."""
    when = rule.now or datetime.now(timezone.utc)
    report: list[dict[str, Any]] = []
    for volume_id, group in sorted(by_volume(images, rule.policy).items()):
        index = {i.id: i for i in group}
        for decision in decisions_for(group, rule, volume_id in vanished, when):
            image = index[decision.image_id]
            report.append(
                {
                    "image_id": image.id,
                    "volume_id": volume_id,
                    "made_at": utc_z(image.made_at),
                    "kept_by": list(decision.kept_by),
                    "delete": decision.delete,
                    "not_kept_by": list(decision.not_kept_by),
                }
            )
    return report


def _orphans(
    ims: ImsClient,
    images: list[ManagedImage],
    rules: list[KeepRule],
    vanished: set[str],
    ctx: EventContext,
    budget: Budget,
    max_workers: int,
    result: LifecycleResult,
) -> None:
    """Report, once, each finished image of a policy without an ``orphans`` rule whose
    volume is gone: tag first (``evs-export-orphaned``), then the event."""
    due: list[tuple[ManagedImage, KeepRule]] = []
    for rule in rules:
        if rule.orphans is not None or not rule.name:
            continue
        for volume_id, group in sorted(by_volume(images, rule.policy).items()):
            if volume_id not in vanished:
                continue
            due.extend(
                (image, rule)
                for image in sorted(group, key=lambda i: _candidate(i).order())
                if image.managed and image.status in DELETABLE and not image.orphan_reported
            )

    def mark(item: tuple[ManagedImage, KeepRule]) -> bool | None:
        if item[1].dry_run or not budget.covers():
            return None  # a dry run writes nothing; the budget: the next run reports it
        try:
            ims.tag_image(item[0].id, {ORPHANED_KEY: "reported"})
        except ExportError as exc:
            log.warning("could not record an orphan", image_id=item[0].id, error=exc.as_dict())
            return False
        return True

    for (image, rule), done in zip(due, parallel_map(mark, due, max_workers), strict=True):
        if done:
            result.events.append(orphaned_event(ctx, image))
            _count(result, rule, "orphaned", 1)
