"""The retention rules of a timer policy, as pure functions over the images one policy made
of one volume (no requests, no clock: the run's time and time zone are passed in).

Rules (restic ``forget`` and AWS DLM/Backup alike; an image is kept when **any** rule keeps it):

* ``keep``: the N newest images;
* ``keep_days``: images younger than D days (one made exactly D days before the run is due);
* ``keep_daily`` / ``keep_weekly`` / ``keep_monthly`` / ``keep_yearly``: the newest image of
  each of the last N days / ISO weeks / months / years that have an image, in the policy's
  time zone (restic's definition: buckets without an image do not count).

An image's time is the trigger time of the run that made it. ``killed`` images are no backups:
they fill no slot, and a rule keeps one only inside its span (not older than the oldest image
the rule keeps once all its slots are used; while a rule has free slots it keeps them all).
Images still being made (``queued``, ``saving``) fill slots and are never deleted, and the
newest ``active`` image is never deleted, whatever the rules say. With no rule nothing is
deleted.

Orphans (the source volume is gone) follow their own rule instead: keep the newest M, delete
the rest once they are at least D days old.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

IN_PROGRESS = ("queued", "saving")
DELETABLE = ("active", "killed")
CALENDAR_RULES = ("keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
RULE_NAMES = ("keep", "keep_days", *CALENDAR_RULES)
NEWEST_ACTIVE = "newest_active"  # the safety, named like a rule in decisions
IN_PROGRESS_REASON = "in_progress"
ORPHANS = "orphans"

_DURATION = re.compile(r"^([0-9]{1,6})([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta | None:
    """``<integer><m|h|d>`` (e.g. ``26h``, ``8d``) as a timedelta; None when malformed."""
    match = _DURATION.match(text)
    if match is None:
        return None
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


@dataclass(frozen=True)
class Candidate:
    """One image as the rules see it: its ID, the time it stands for, its IMS status."""

    id: str
    time: datetime
    status: str | None

    def order(self) -> tuple[datetime, str]:
        return (self.time, self.id)


@dataclass(frozen=True)
class Rules:
    """The retention keys of one policy; None is "not set"."""

    keep: int | None = None
    keep_days: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None

    def names(self) -> tuple[str, ...]:
        """The rules that are set, in a fixed order."""
        return tuple(name for name in RULE_NAMES if getattr(self, name) is not None)

    def any(self) -> bool:
        return bool(self.names())


@dataclass(frozen=True)
class Orphans:
    """``orphans: {"keep": M, "after_days": D}``."""

    keep: int
    after_days: int


@dataclass(frozen=True)
class Decision:
    """What the rules make of one image: the rules keeping it, whether it goes, and (when it
    goes) the rules that no longer keep it."""

    image_id: str
    kept_by: tuple[str, ...]
    delete: bool
    not_kept_by: tuple[str, ...] = ()


def bucket_key(rule: str, when: datetime, zone: tzinfo) -> tuple[int, int, int]:
    """The calendar bucket of ``when`` (in ``zone``) for one calendar rule."""
    local = when.astimezone(zone)
    if rule == "keep_daily":
        return (local.year, local.month, local.day)
    if rule == "keep_weekly":
        iso = local.isocalendar()
        return (iso[0], iso[1], 0)
    if rule == "keep_monthly":
        return (local.year, local.month, 0)
    return (local.year, 0, 0)


def _bucketer(rule: str, zone: tzinfo) -> Callable[[Candidate], object]:
    def key(image: Candidate) -> object:
        return bucket_key(rule, image.time, zone)

    return key


def _slots(
    ranked: Sequence[Candidate], n: int, key: Callable[[Candidate], object]
) -> tuple[list[Candidate], bool]:
    """restic's walk: newest first, keep an image when its bucket differs from the last kept
    one, until ``n`` are kept. Returns those kept and whether all ``n`` slots are used."""
    kept: list[Candidate] = []
    last: object = None
    for image in ranked:
        if len(kept) >= n:
            break
        bucket = key(image)
        if kept and bucket == last:
            continue
        kept.append(image)
        last = bucket
    return kept, len(kept) >= n


def decide(
    images: Sequence[Candidate], rules: Rules, now: datetime, zone: tzinfo
) -> list[Decision]:
    """The decision for each image of one volume and policy, newest first."""
    everything = sorted(images, key=Candidate.order, reverse=True)
    ranked = [i for i in everything if i.status != "killed"]
    kept_by: dict[str, list[str]] = {i.id: [] for i in everything}
    spans: dict[str, Callable[[Candidate], bool]] = {}  # whether an image is in a rule's span

    def count_rule(name: str, n: int, key: Callable[[Candidate], object]) -> None:
        kept, full = _slots(ranked, n, key)
        for image in kept:
            kept_by[image.id].append(name)
        floor = kept[-1].order() if full and kept else None
        spans[name] = lambda i: floor is None or i.order() >= floor

    if rules.keep is not None:
        count_rule("keep", rules.keep, lambda i: i.id)
    if rules.keep_days is not None:
        cutoff = now - timedelta(days=rules.keep_days)
        for image in ranked:
            if image.time > cutoff:
                kept_by[image.id].append("keep_days")
        spans["keep_days"] = lambda i: i.time > cutoff
    for name in CALENDAR_RULES:
        n = getattr(rules, name)
        if n is not None:
            count_rule(name, n, _bucketer(name, zone))
    for image in everything:
        if image.status != "killed":
            continue
        kept_by[image.id].extend(name for name, inside in spans.items() if inside(image))

    newest_active = next((i for i in everything if i.status == "active"), None)
    decisions: list[Decision] = []
    configured = rules.names()
    for image in everything:
        reasons = [n for n in configured if n in kept_by[image.id]]
        if image.status in IN_PROGRESS:
            reasons.append(IN_PROGRESS_REASON)
        if newest_active is not None and image.id == newest_active.id:
            reasons.append(NEWEST_ACTIVE)
        delete = bool(configured) and not reasons and image.status in DELETABLE
        decisions.append(Decision(image.id, tuple(reasons), delete, configured if delete else ()))
    return decisions


def decide_orphans(images: Sequence[Candidate], rule: Orphans, now: datetime) -> list[Decision]:
    """The decision for each image of one vanished volume and policy, newest first: the M
    newest (not killed) stay; the rest go once at least ``after_days`` old. No newest-active
    safety: with M = 0 the user asked for every image to go."""
    everything = sorted(images, key=Candidate.order, reverse=True)
    newest = {i.id for i in [i for i in everything if i.status != "killed"][: rule.keep]}
    due = now - timedelta(days=rule.after_days)
    decisions: list[Decision] = []
    for image in everything:
        if image.id in newest:
            decisions.append(Decision(image.id, (ORPHANS,), False))
        elif image.status in IN_PROGRESS:
            decisions.append(Decision(image.id, (IN_PROGRESS_REASON,), False))
        elif image.time <= due and image.status in DELETABLE:
            decisions.append(Decision(image.id, (), True, (ORPHANS,)))
        else:
            decisions.append(Decision(image.id, ("orphans_after_days",), False))
    return decisions


def is_stale(newest: datetime | None, now: datetime, stale_after: timedelta) -> bool:
    """Whether a volume whose newest active image stands for ``newest`` is overdue."""
    return newest is None or now - newest > stale_after
