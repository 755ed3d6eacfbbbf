"""The pure rules of disaster-recovery copies: the copy state on a source image (one tag
per target region), which images are pending, what is skipped and why, the replicas' tags,
`keep` in the target, the recovery point, sharing records, and the events."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from function.lifecycle import (
    MARKER_KEY,
    POLICY_KEY,
    VOLUME_KEY,
    ManagedImage,
    parse_resource,
    tag_value,
)
from function.results import EventContext, cloud_event
from function.times import utc_z
from function.work import CopyTarget

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
            "recovery_point": utc_z(newest.source_time),
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
        "oldest_uncopied_at": utc_z(oldest.made_at),
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


@dataclass
class PolicyCopies:
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
