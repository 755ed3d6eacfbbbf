"""The function's images as the life cycle sees them: ``ManagedImage`` from the tag listing
(whose detail holds only ``status``, PLATFORM.md 10.2), completed from the image listing or a
GET, and the images accepted in this run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from function.cloud.tags import parse_tags
from function.lifecycle.tags import (
    MARKER_KEY,
    MARKER_VALUE,
    ORPHANED_KEY,
    POLICY_KEY,
    REPORTED_KEY,
    STARTED_KEY,
    VOLUME_KEY,
    policy_value,
    started_value,
    tag_value,
)
from function.times import parse_iso
from function.work import Outcome


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
