"""The function's images as the life cycle sees them: ``ManagedImage`` from the tag listing
(whose detail holds only ``status``, PLATFORM.md 10.2), completed from the image listing or a
GET, and the images accepted in this run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from function.cloud.records import ImageRecord
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
from function.work import Outcome


@dataclass(frozen=True)
class ManagedImage(ImageRecord):
    """One image from the tag listing (or accepted in this run), read by its provenance
    tags."""

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


def parse_resource(resource: Mapping[str, Any]) -> ManagedImage | None:
    """A tag-query entry as a ManagedImage (None without an ID). The tag query gives no
    times (PLATFORM.md 10.2): the creation time then comes from the image's own
    ``evs-export-started`` tag, written with the marker."""
    image = ManagedImage.from_resource(resource)
    if image is not None and image.created_at is None and image.started is not None:
        return replace(image, created_at=image.started)
    return image


def incomplete(image: ManagedImage) -> bool:
    """Whether a managed image lacks what every life-cycle rule needs (status, name,
    creation time) beyond what the tag listing gave."""
    return image.managed and (image.status is None or not image.name or image.created_at is None)


def with_detail(image: ManagedImage, detail: Mapping[str, Any]) -> ManagedImage:
    """``image`` completed from IMS's own view of it (``ImageRecord.with_detail``)."""
    return image.with_detail(detail)


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
