"""The life cycle of the images the function makes: provenance tags when an export is
accepted, then, on timer runs and ``{"action": "reconcile"}``, one listing of the function's
images by tag that serves both

* reconcile: each ``active`` image not yet reported becomes one ``evs.export.completed``
  event, each ``killed`` one ``evs.export.image_failed``; the report is recorded on the image
  itself (tag ``evs-export-reported``), so no other store is needed and no image is reported
  twice, and
* retention: a policy's rules (``keep``, ``keep_days``, calendar buckets; see
  ``function.retention``) decide, per volume, which of the images that policy made stay;
  older ``active`` and ``killed`` ones go, each an ``evs.image.deleted`` event naming the
  rules that no longer keep it. Images of volumes that no longer exist follow the policy's
  ``orphans`` rule, or, without one, are reported once (``evs.image.orphaned``, tag
  ``evs-export-orphaned``); ``stale_after`` raises ``evs.backup.stale`` for selected volumes
  whose newest active image is too old or missing.

The rules (what to report, what to delete) are pure functions over ``ManagedImage``; the
requests are made by ``run_tasks``, which stops writing when the time budget runs short
(what is left is picked up by the next run).
"""

from __future__ import annotations

import contextvars
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, TypeVar

import structlog

from function.cloud.client import SAFETY_MARGIN_MS, CloudClient
from function.cloud.evs import Accepted
from function.cloud.ims import ImsClient
from function.cloud.tags import parse_tags
from function.errors import ApiError, ExportError
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
from function.times import parse_iso
from function.work import ExportOrder, Outcome, Work

log = structlog.get_logger("evs_export.lifecycle")

MARKER_KEY = "evs-export"
MARKER_VALUE = "managed"
VOLUME_KEY = "evs-export-volume"
POLICY_KEY = "evs-export-policy"
TRIGGER_KEY = "evs-export-trigger"
STARTED_KEY = "evs-export-started"
REPORTED_KEY = "evs-export-reported"
ORPHANED_KEY = "evs-export-orphaned"
NO_POLICY = "none"

COMPLETED = "evs.export.completed"
IMAGE_FAILED = "evs.export.image_failed"
DELETED = "evs.image.deleted"
ORPHANED = "evs.image.orphaned"
STALE = "evs.backup.stale"
REPORT_KIND = {"active": "completed", "killed": "image_failed"}
REPORT_TYPE = {"completed": COMPLETED, "image_failed": IMAGE_FAILED}
IN_PROGRESS = ("queued", "saving")
DELETABLE = ("active", "killed")

MAX_KEY_CHARS = 36
MAX_VALUE_CHARS = 43
VOLUME_READS_MAX = 3  # up to this many volumes are read one by one; more, with one listing
WRITE_RESERVE_MS = 5000  # kept back after the last lifecycle write, for delivery and return
_VALUE_BAD = re.compile(r"[^A-Za-z0-9._-]")
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")

T = TypeVar("T")
R = TypeVar("R")


# -- provenance tags -----------------------------------------------------------------------


def tag_value(text: str) -> str:
    """A value IMS accepts: letters, digits, ``.``, ``_`` and ``-``, at most 43 characters.
    Longer text keeps a prefix and a short hash, so distinct long values stay distinct."""
    clean = _VALUE_BAD.sub("-", text)
    if len(clean) <= MAX_VALUE_CHARS:
        return clean
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{clean[: MAX_VALUE_CHARS - 9]}-{digest}"


def policy_value(policy: str | None) -> str:
    return tag_value(policy) if policy else NO_POLICY


def started_value(now: datetime, run_time: datetime | None) -> str:
    """The ``evs-export-started`` value: the export's start in epoch seconds, and for a policy
    run ``-`` and the run's trigger time (one tag for both, to leave room under IMS's 10)."""
    start = str(int(now.timestamp()))
    return start if run_time is None else f"{start}-{int(run_time.timestamp())}"


def provenance_tags(order: ExportOrder, trigger: str, now: datetime) -> dict[str, str]:
    """The tags of an image made for ``order``: the marker, volume, policy, trigger, start
    (with the policy run's time), then the volume's tags ``copy_tags`` chose."""
    tags = {
        MARKER_KEY: MARKER_VALUE,
        VOLUME_KEY: tag_value(order.volume_id),
        POLICY_KEY: policy_value(order.policy),
        TRIGGER_KEY: tag_value(trigger),
        STARTED_KEY: started_value(now, order.run_time),
    }
    assert all(_KEY_RE.match(k) for k in tags)
    return {**order.image_tags, **tags}


def provenance_tagger(
    ims: ImsClient, trigger: str, clock: Callable[[], datetime]
) -> Callable[[ExportOrder, Accepted], Mapping[str, Any] | None]:
    """The exporter's ``after_accept`` hook: tag the new image. A failure never undoes nor
    hides the export: the accepted event carries ``tagging_error`` instead."""

    def after_accept(order: ExportOrder, accepted: Accepted) -> Mapping[str, Any] | None:
        tags = provenance_tags(order, trigger, clock())
        extra: dict[str, Any] = {"tags_dropped": list(order.tags_dropped)}
        if not order.tags_dropped:
            extra.clear()
        try:
            ims.tag_image(accepted.image_id, tags)
        except ExportError as exc:
            log.warning(
                "could not tag the new image",
                image_id=accepted.image_id,
                volume_id=order.volume_id,
                error=exc.as_dict(),
            )
            return {**extra, "tagging_error": {"code": exc.code, "message": exc.message}}
        except Exception as exc:  # a bug in tagging must not cost the accepted export
            log.exception("tagging crashed", image_id=accepted.image_id)
            return {
                **extra,
                "tagging_error": {
                    "code": "InternalError",
                    "message": f"unexpected {type(exc).__name__}",
                },
            }
        return extra or None

    return after_accept


# -- the listing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagedImage:
    """One image from the tag listing (or accepted in this run), with its provenance."""

    id: str
    name: str
    status: str | None
    created_at: datetime | None
    updated_at: datetime | None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def managed(self) -> bool:
        return self.tags.get(MARKER_KEY) == MARKER_VALUE

    @property
    def volume_id(self) -> str | None:
        return self.tags.get(VOLUME_KEY) or None

    @property
    def policy(self) -> str | None:
        """The policy tag as written (``none`` for exports outside a policy)."""
        return self.tags.get(POLICY_KEY) or None

    @property
    def reported(self) -> str | None:
        return self.tags.get(REPORTED_KEY) or None

    @property
    def orphan_reported(self) -> bool:
        return bool(self.tags.get(ORPHANED_KEY))

    @property
    def started(self) -> datetime | None:
        """When the export started (the first part of the started tag)."""
        return _epoch(self.tags.get(STARTED_KEY, "").partition("-")[0])

    @property
    def run_time(self) -> datetime | None:
        """The trigger time of the policy run that made the image (the started tag's second
        part; absent on images made outside a policy or before it was recorded)."""
        return _epoch(self.tags.get(STARTED_KEY, "").partition("-")[2])

    @property
    def made_at(self) -> datetime | None:
        """The image's time for every policy rule: its run's trigger time, else created_at."""
        return self.run_time or self.created_at

    def sort_key(self) -> tuple[datetime, datetime, str, str]:
        """Age order: created_at, then the started tag, then name and ID (deterministic)."""
        floor = datetime.min.replace(tzinfo=timezone.utc)
        return (self.created_at or floor, self.started or floor, self.name, self.id)


def _epoch(raw: str) -> datetime | None:
    if raw.isascii() and raw.isdigit() and len(raw) <= 12:
        return datetime.fromtimestamp(int(raw), timezone.utc)
    return None


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    return parse_iso(value)


def parse_resource(resource: Mapping[str, Any]) -> ManagedImage | None:
    """A ``resource_instances`` entry as a ManagedImage (None without an ID).

    The real entry's detail holds only ``status`` (PLATFORM.md 10.2; the docs spell the key
    ``resource_detail``, the SDK model ``resouce_detail``: both are read). The creation time
    then comes from the image's own ``evs-export-started`` tag, written with the marker."""
    detail = resource.get("resource_detail", resource.get("resouce_detail"))
    detail = detail if isinstance(detail, Mapping) else {}
    image_id = resource.get("resource_id") or detail.get("id")
    if not isinstance(image_id, str) or not image_id:
        return None
    raw_tags = resource.get("tags")
    tags = parse_tags(raw_tags) if isinstance(raw_tags, list) else {}
    name = resource.get("resource_name") or detail.get("name") or ""
    status = detail.get("status")
    image = ManagedImage(
        id=image_id,
        name=str(name),
        status=status if isinstance(status, str) else None,
        created_at=parse_time(detail.get("created_at")),
        updated_at=parse_time(detail.get("updated_at")),
        tags=tags,
    )
    if image.created_at is None and image.started is not None:
        return replace(image, created_at=image.started)
    return image


def incomplete(image: ManagedImage) -> bool:
    """Whether a managed image lacks what every life-cycle rule needs (status, name,
    creation time) beyond what the tag listing gave."""
    return image.managed and (image.status is None or not image.name or image.created_at is None)


def with_detail(image: ManagedImage, detail: Mapping[str, Any]) -> ManagedImage:
    """``image`` completed from ``GET /v2/images/{id}``: IMS's own status, name and times."""
    status = detail.get("status")
    return ManagedImage(
        id=image.id,
        name=str(detail.get("name") or "") or image.name,
        status=status if isinstance(status, str) else image.status,
        created_at=parse_time(detail.get("created_at")) or image.created_at,
        updated_at=parse_time(detail.get("updated_at")) or image.updated_at,
        tags=image.tags,
    )


def just_accepted(outcomes: Iterable[Outcome], now: datetime) -> list[ManagedImage]:
    """Images accepted in this run, as the listing would show them (for retention's count,
    also when tagging them failed; an untagged one is never deleted)."""
    images: list[ManagedImage] = []
    for outcome in outcomes:
        acc, order = outcome.accepted, outcome.order
        if outcome.kind != "accepted" or acc is None or order is None:
            continue
        tags = {
            VOLUME_KEY: tag_value(order.volume_id),
            POLICY_KEY: policy_value(order.policy),
            STARTED_KEY: started_value(now, order.run_time),
        }
        if "tagging_error" not in outcome.extra:
            tags[MARKER_KEY] = MARKER_VALUE
        images.append(ManagedImage(acc.image_id, acc.image_name, "queued", now, now, tags))
    return images


# -- reconcile (pure) ----------------------------------------------------------------------


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


# -- retention (pure) ----------------------------------------------------------------------


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


def keep_rules(work: Work) -> list[KeepRule]:
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
        "created_at": _iso(image.created_at),
        "status": image.status,
    }
    if image.run_time is not None:
        data["made_at"] = _iso(image.run_time)
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
        "created_at": _iso(image.made_at),
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
            "newest_created_at": _iso(made),
            "stale_after": rule.stale_after,
        }
        events.append(cloud_event(ctx, STALE, volume_id, data))
    return events


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# -- running it ----------------------------------------------------------------------------


@dataclass
class LifecycleResult:
    """Events to add to the invocation's results, notes, and the return value's sections."""

    events: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    per_policy: dict[str, dict[str, int]] = field(default_factory=dict)  # deleted, orphaned, stale
    copies: dict[str, dict[str, Any]] = field(default_factory=dict)  # per policy (function.copies)


class _Budget:
    """Whether the invocation's remaining time still covers one more write."""

    def __init__(self, remaining_ms: Callable[[], int]) -> None:
        self.remaining_ms = remaining_ms

    def covers(self) -> bool:
        return self.remaining_ms() > SAFETY_MARGIN_MS + WRITE_RESERVE_MS


def run_tasks(
    work: Work,
    outcomes: Sequence[Outcome],
    ctx: EventContext,
    connect: Callable[[], CloudClient],
    max_workers: int,
) -> LifecycleResult:
    """Reconcile and/or retention (``work.tasks``) over one listing of the managed images."""
    result = LifecycleResult()
    rules = keep_rules(work) if "retention" in work.tasks else []
    if "reconcile" not in work.tasks and not rules:
        return result
    try:
        client = connect()
        if not _Budget(client.runtime.remaining_ms).covers():
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
    budget = _Budget(client.runtime.remaining_ms)
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

    images = _complete(ims, images, needs_detail, budget, max_workers)
    known = {i.id for i in images}
    images += [i for i in just_accepted(outcomes, ctx.now()) if i.id not in known]

    reported: list[str] = []
    if "reconcile" in work.tasks:
        reported = _reconcile(ims, images, ctx, budget, max_workers, result)
    if any(plan.copies or plan.share_with for plan in work.plans):
        from function.copies import run_copies

        run_copies(work, images, client, ctx, budget, max_workers, result, reported)
    if rules:
        vanished = _vanished(client, images, rules, work, budget)
        _retention(ims, images, rules, reported, vanished, ctx, budget, max_workers, result)
        _orphans(ims, images, rules, vanished, ctx, budget, max_workers, result)
        for rule in rules:
            selection = work.selections.get(rule.name or "")
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
    work: Work,
    budget: _Budget,
) -> set[str]:
    """Source volumes of the policies' images that no longer exist. Volumes this run found
    are not asked about; a few are read one by one (404: gone), more with one listing. A
    volume whose existence cannot be read counts as existing (nothing is orphaned by doubt)."""
    from function.cloud.evs import EvsClient

    found: set[str] = set()
    for selection in work.selections.values():
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
        existing = {str(v.get("id")) for v in evs.list_volumes()}
    except ExportError as exc:
        log.warning("could not list volumes; no orphans this run", error=exc.as_dict())
        return set()
    return {v for v in unknown if v not in existing}


def _complete(
    ims: ImsClient,
    images: list[ManagedImage],
    wanted: Callable[[ManagedImage], bool],
    budget: _Budget,
    max_workers: int,
) -> list[ManagedImage]:
    """Fill in what the tag listing lacks for the images this run works on (times, and a
    status or name where missing): the tag query's detail is only ``status`` (PLATFORM.md
    10.2), so one paged image listing filtered by the marker tag (``GET /v2/cloudimages``,
    500 a page) gives every managed image's times; an image it misses (made since) gets one
    GET of its own."""
    if not any(wanted(i) for i in images):
        return images
    try:
        listed = ims.list_images(__imagetype="private", tag=f"{MARKER_KEY}={MARKER_VALUE}")
    except ExportError as exc:
        log.warning("could not list the managed images' details", error=exc.as_dict())
        listed = []
    details = {str(d.get("id")): d for d in listed}

    def complete(image: ManagedImage) -> ManagedImage:
        if image.id in details:
            return with_detail(image, details[image.id])
        if not (wanted(image) and budget.covers()):
            return image
        try:
            return with_detail(image, ims.get_image(image.id))
        except ExportError as exc:
            log.warning("could not read image", image_id=image.id, error=exc.as_dict())
            return image

    return _parallel(complete, images, max_workers)


def _reconcile(
    ims: ImsClient,
    images: list[ManagedImage],
    ctx: EventContext,
    budget: _Budget,
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

    outcomes = _parallel(report, due, max_workers)
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
    budget: _Budget,
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
        doomed, _parallel(delete, doomed, max_workers), strict=True
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
                    "made_at": _iso(image.made_at),
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
    budget: _Budget,
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

    for (image, rule), done in zip(due, _parallel(mark, due, max_workers), strict=True):
        if done:
            result.events.append(orphaned_event(ctx, image))
            _count(result, rule, "orphaned", 1)


def _parallel(fn: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R]:
    """``fn`` over ``items`` in order, at most ``max_workers`` at a time (the client's limiter
    bounds the request rate); log keys follow the work into the threads."""
    if len(items) <= 1 or max_workers <= 1:
        return [fn(i) for i in items]
    base = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(lambda i: base.copy().run(fn, i), items))
